"""The quick start's whole kit in one folder (`bchooks dev`): sandbox, receiver and JupyterLab, one kit a folder.

`Kit(folder)` takes the folder's lock (a second kit there is refused, and never touches the first one's state),
stops whatever an earlier kit killed before its end left running, starts the sandbox and the receiver
(`stack.Stack`), and runs JupyterLab on **working copies** of the notebooks in `.bchooks/notebooks/`: running them
changes the copies, never the committed notebooks, so the test suite (which checks the committed ones) passes
after the quick start. A copy is made when missing and kept afterwards (delete it to get the committed version
again). JupyterLab starts with its news pop-up answered (no news fetched, no update checks), through an
`overrides.json` of the kit's own, so the user's Lab settings stay as they are.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .devsecret import ensure_dev_secret
from ..errors import ConfigError
from .stack import Stack, claim_folder, free_port, stop_recorded

RUN_DIR = Path(".bchooks") / "run"
WORKING_NOTEBOOKS = Path(".bchooks") / "notebooks"
LAB_SETTINGS = Path(".bchooks") / "lab-settings"
#: JupyterLab settings of the kit's Lab: the news question answered "no", no update checks
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def working_copies(source, target=WORKING_NOTEBOOKS):
    """Copy each notebook of `source` missing from `target`; returns (copied, kept) names."""
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for path in sorted(source.glob("*.ipynb")):
        if (target / path.name).exists():
            kept.append(path.name)
        else:
            shutil.copy2(path, target / path.name)
            copied.append(path.name)
    return copied, kept


def another_terminal() -> str:
    """How to use `bchooks` from another terminal: this kit's virtualenv activated (as the docs' examples assume)."""
    if sys.prefix == sys.base_prefix:  # (not in a virtualenv: `bchooks` is wherever pip put it)
        return "  from another terminal in this folder: `bchooks COMMAND` (e.g. `bchooks events`)"
    prefix = Path(sys.prefix)
    try:
        prefix = prefix.relative_to(Path.cwd())
    except ValueError:
        pass
    return (f"  from another terminal in this folder: `source {prefix}/bin/activate`, then `bchooks COMMAND` "
            f"(e.g. `bchooks events`)")


def lab_settings(folder=LAB_SETTINGS):
    """The kit's JupyterLab application settings folder, with `LAB_OVERRIDES` in its overrides.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=2))
    return folder


class Kit:
    def __init__(self, *, db, receiver_port, sandbox_port, lab_port=8888, notebooks="notebooks", lab=True,
                 browser=True, say=None, shops=1, history=0):
        self.notebooks = Path(notebooks)
        if lab and not self.notebooks.is_dir():
            raise ConfigError(f"no notebooks folder at {self.notebooks.resolve()}: run from the repository or pass "
                              "--notebooks")
        self.db, self.receiver_port, self.sandbox_port, self.lab_port = db, receiver_port, sandbox_port, lab_port
        self.lab, self.browser = lab, browser
        self.shops, self.history = shops, history
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self._stopping = threading.Event()
        self._lab_process = None

    def __repr__(self):
        return f"Kit(db={self.db!r}, lab={self.lab})"

    def run(self):
        """Start everything, wait until JupyterLab exits (or SIGTERM/SIGHUP, or Ctrl-C without Lab), stop
        everything; the exit status."""
        folder_lock = claim_folder(RUN_DIR)  # a second kit stops here, touching nothing
        try:
            leftover = stop_recorded(RUN_DIR)
            if leftover:
                self.say(f"bchooks dev: stopped what an earlier kit left running: {', '.join(leftover)}")
            secret, secret_path = ensure_dev_secret()
            stack = Stack(RUN_DIR, secret=secret, db=self.db, receiver_port=self.receiver_port,
                          sandbox_port=self.sandbox_port, shops=self.shops, history=self.history)
            self._handle_signals()
            stack.start()
            try:
                self.say(f"bchooks dev: development secret in {secret_path} (readable only by you)\n"
                         f"  receiver  {stack.receiver_url}  (store {stack.db})\n"
                         f"  sandbox   {stack.sandbox_url}  (token {stack.sandbox_token}; {stack.sandbox_shops()})\n"
                         f"  logs and process ids in {stack.run_dir}; stop with Ctrl-C or `bchooks stop`\n"
                         f"{another_terminal()}")
                if stack.moved:
                    self.say(f"bchooks dev: the sandbox moved from {stack.previous_sandbox_url} to "
                             f"{stack.sandbox_url}; pointed connected shop(s) {', '.join(stack.moved)} at it")
                if not self.lab:
                    while not self._stopping.wait(0.5):
                        pass
                    return 0
                return self._run_lab(stack)
            finally:
                stack.stop()
                self.say("bchooks dev: stopped JupyterLab, receiver and sandbox")
        finally:
            folder_lock.close()

    def _handle_signals(self):
        def stop(*_):
            self._stopping.set()
            if self._lab_process is not None and self._lab_process.poll() is None:
                self._lab_process.terminate()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, stop)
        # JupyterLab handles Ctrl-C itself (it asks, or stops on a second one)
        signal.signal(signal.SIGINT, lambda *_: self._stopping.set() if self._lab_process is None else None)

    def _run_lab(self, stack):
        copied, kept = working_copies(self.notebooks)
        self.say(f"  notebooks {WORKING_NOTEBOOKS.resolve()} (working copies of {self.notebooks}/"
                 + (f"; kept your copies of {', '.join(kept)}: delete one to get it afresh" if kept else "") + ")")
        lab_args = [sys.executable, "-m", "jupyter", "lab", "--ip=127.0.0.1", f"--port={free_port(self.lab_port)}",
                    f"--ServerApp.root_dir={WORKING_NOTEBOOKS.resolve()}", "--LabApp.news_url=None",
                    f"--LabApp.app_settings_dir={lab_settings().resolve()}"]
        if not self.browser:
            lab_args.append("--no-browser")
        if os.geteuid() == 0:
            lab_args.append("--allow-root")
        self._lab_process = subprocess.Popen(lab_args, env={**os.environ, **stack.env()})
        stack.add("jupyterlab", self._lab_process)
        if self._stopping.is_set():
            self._lab_process.terminate()
        return 0 if self._lab_process.wait() in (0, -signal.SIGTERM) else 1
