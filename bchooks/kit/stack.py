"""The local stack of the quick start: sandbox and receiver as background processes, in one run folder.

`Stack(run_dir, secret=..., db=...)` starts both on loopback (the preferred ports when free, else random ones),
waits until they answer, and writes `state.json` (ports, URLs, process ids, log files) into the run folder.
`stop()` ends them; `stop_recorded(run_dir)` ends a stack started by another process (`bchooks stop`).
`env()` is what clients, notebooks and JupyterLab need to talk to it.

The sandbox keeps its shops in `sandbox-state.json` of the run folder, so a restarted stack serves the same orders
and tokens; `ports.json` (kept after a stop) remembers its URL: a restart takes the same port when it can (a port
whose old connections wait in TIME-WAIT is free to it), else it points the connected shops that used the old URL
at the new one (`moved`).
"""

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from ..config import SANDBOX_CLIENT_ID, SANDBOX_PORT, SANDBOX_TOKEN, SETTINGS
from ..errors import BchooksError, KitRunning
from ..store import is_url
from ..secrecy import display_url

_DEFAULT_PORT = next(s.default for s in SETTINGS if s.field == "port")

STATE = "state.json"
SANDBOX_STATE = "sandbox-state.json"  # the sandbox's shops, webhooks and tokens (kept across restarts)
PORTS = "ports.json"  # the URLs the last stack of the folder had (kept after a stop)
LOCK = "kit.lock"  # held by the `bchooks dev` of the folder for as long as it runs


def settings_env(settings):
    """{BCHOOKS_* variable: value} of settings given by `Config` field."""
    return {setting.env: str(settings[setting.field]) for setting in SETTINGS if setting.field in settings}


def claim_folder(run_dir):
    """Take the folder's kit lock, held until the returned handle is closed (one kit per folder), or raise
    `KitRunning` naming the kit that holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        state = _read_state(run_dir) or {}
        where = f"receiver {state['receiver_url']}, sandbox {state['sandbox_url']}" if "sandbox_url" in state else \
            "starting"
        raise KitRunning(f"bchooks dev is already running in this folder (pid {state.get('supervisor', '?')}, "
                         f"{where}): use it, or stop it first with `bchooks stop`") from None
    return handle


def _read_state(run_dir):
    try:
        return json.loads((Path(run_dir) / STATE).read_text())
    except (OSError, ValueError):
        return None


def running_kit(run_dir):
    """The recorded state of the kit running in `run_dir` (its `bchooks dev` holds the folder's lock), else None."""
    run_dir = Path(run_dir)
    state = _read_state(run_dir)
    if not state or not (run_dir / LOCK).exists():
        return None
    with open(run_dir / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return state  # held: its kit runs
    return None


def free_port(preferred=0, host="127.0.0.1", *, reuse=False, also=()):
    """The first of `preferred`, then `also`, that nothing listens on, else a free port the OS picks. `reuse`: for a
    server that binds with SO_REUSEADDR (the sandbox), to which a port whose old connections wait in TIME-WAIT is
    free too."""
    for port in [p for p in (preferred, *also) if p] + [0]:
        with socket.socket() as sock:
            if reuse:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise BchooksError("no free port on 127.0.0.1")


def _recorded_sandbox(run_dir):
    """(URL, port) of the sandbox the folder's last stack ran, else (None, 0)."""
    try:
        url = json.loads((Path(run_dir) / PORTS).read_text())["sandbox_url"]
        return url, int(urlsplit(url).port or 0)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None, 0


def repoint_shops(shops_path, old_url, new_url):
    """Point the shops of `shops_path` that use `old_url` at `new_url`; their account ids."""
    from dataclasses import replace

    from ..shops import ShopBook
    book = ShopBook(shops_path, replace=True)  # (the same shops, at the sandbox's new address)
    moved = [shop for shop in book.shops() if shop.api_url.rstrip("/") == old_url.rstrip("/")]
    for shop in moved:
        book.add(replace(shop, api_url=new_url))
    return [shop.account_id for shop in moved]


def _write_json(path, document):
    """Replace `path` whole (a reader never sees half of it: `bchooks dev`'s files are read while it runs)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, indent=2))
    os.replace(temporary, path)


def wait_healthy(url, process, deadline=30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            return False
        try:
            if requests.get(url, timeout=1).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return False


def running(pid):
    """Whether `pid` is a live process (a zombie waiting for its parent counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def end_child(process, timeout=30.0, sig=signal.SIGTERM):
    """Ask a child process (`subprocess.Popen`) to stop with `sig`; kill it after `timeout` s. Its exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def stop_process(pid, timeout=20.0):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished:
                return
        except ChildProcessError:  # not our child: poll for its end
            if not running(pid):
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Stack:
    def __init__(self, run_dir, *, secret, db, receiver_port=_DEFAULT_PORT, sandbox_port=SANDBOX_PORT, sandbox_args=(),
                 sandbox_token=SANDBOX_TOKEN, shops=1, history=0):
        """`shops`, `history`: the sandbox's shops and the orders of each one's year of history, for shops it makes
        (those already in the run folder's sandbox state are kept as they are)."""
        self.run_dir = Path(run_dir).resolve()
        self._secret = secret
        self._db = db if is_url(db) else str(Path(db).resolve())  # (a PostgreSQL URL as given)
        self.db = display_url(self._db) if is_url(self._db) else self._db  # (what is shown and recorded)
        self.receiver_port = free_port(receiver_port)
        self.previous_sandbox_url, previous_port = _recorded_sandbox(self.run_dir)
        self.sandbox_port = free_port(sandbox_port, reuse=True, also=[previous_port])
        if self.sandbox_port == self.receiver_port:
            self.sandbox_port = free_port(reuse=True)
        self.sandbox_args = ["--shops", str(shops), "--history", str(history), *sandbox_args]
        self.sandbox_token = sandbox_token
        self.processes = {}
        self.moved = []  # the connected shops pointed at this sandbox's new URL

    def __repr__(self):
        return f"Stack({str(self.run_dir)!r}, receiver={self.receiver_url!r}, sandbox={self.sandbox_url!r})"

    @property
    def receiver_url(self):
        return f"http://127.0.0.1:{self.receiver_port}/webhook"

    @property
    def sandbox_url(self):
        return f"http://127.0.0.1:{self.sandbox_port}"

    def settings(self, *, with_password=False):
        """The settings (by `Config` field) that point at this stack, its secret aside: what `state.json` records
        for the commands run beside it, and what `env()` exports (only the kit's own processes get a database URL's
        password: `state.json` and what is printed never hold it; give it to other commands as PGPASSWORD)."""
        return {"db": self._db if with_password else self.db, "port": str(self.receiver_port),
                "receiver_url": self.receiver_url, "api_url": self.sandbox_url,
                "token": self.sandbox_token, "sandbox_token": self.sandbox_token,
                "shops": str(self.run_dir.parent / "shops.json"),  # (the kit's shops: the sandbox's)
                "client_id": SANDBOX_CLIENT_ID, "authorize_url": f"{self.sandbox_url}/oauth/authorize"}

    def sandbox_shops(self):
        """The sandbox's shops in a few words: `shop 1234567 sandbox-shop USD 300 orders, ...`."""
        try:
            accounts = requests.get(self.sandbox_url + "/sandbox/healthz", timeout=5).json()["accounts"]
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return "its shops did not say"
        return f"shop{'s' if len(accounts) > 1 else ''} " + ", ".join(
            f"{a['id']} {a['subdomain']} {a['currency']} {a['orders']} orders" for a in accounts)

    def env(self):
        """BCHOOKS_* variables pointing at this stack (the secret included: never print this)."""
        return {"BCHOOKS_SECRET": self._secret, **settings_env(self.settings(with_password=True))}

    def _spawn(self, name, args, health):
        log = open(self.run_dir / f"{name}.log", "ab")
        env = {**os.environ, **self.env()}
        process = subprocess.Popen([sys.executable, "-m", "bchooks", *args], env=env, stdout=log, stderr=log,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.processes[name] = process
        if not wait_healthy(health, process):
            self.stop()
            tail = (self.run_dir / f"{name}.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise BchooksError(f"the {name} did not start: {tail[0] if tail else 'no output'} "
                               f"(log: {self.run_dir / f'{name}.log'})")

    def start(self):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._spawn("sandbox", ["sandbox", "--port", str(self.sandbox_port), "--state",
                                str(self.run_dir / SANDBOX_STATE), *self.sandbox_args],
                    self.sandbox_url + "/sandbox/healthz")
        if self.previous_sandbox_url and self.previous_sandbox_url != self.sandbox_url:
            try:
                self.moved = repoint_shops(self.settings()["shops"], self.previous_sandbox_url, self.sandbox_url)
            except BchooksError:  # (an unreadable shops file: said by the caller, nothing left running)
                self.stop()
                raise
        _write_json(self.run_dir / PORTS, {"sandbox_url": self.sandbox_url})
        store = [] if is_url(self._db) else ["--db", self._db]  # (a URL goes by the environment, never into ps)
        self._spawn("receiver", ["serve", "--port", str(self.receiver_port), *store],
                    f"http://127.0.0.1:{self.receiver_port}/healthz")
        state = {"supervisor": os.getpid(), "receiver_url": self.receiver_url, "sandbox_url": self.sandbox_url,
                 "sandbox_token": self.sandbox_token, "db": self.db, "settings": self.settings(),
                 "pids": {name: p.pid for name, p in self.processes.items()},
                 "logs": {name: str(self.run_dir / f"{name}.log") for name in self.processes}}
        _write_json(self.run_dir / STATE, state)
        return self

    def add(self, name, process):
        """Record another process of the stack (JupyterLab) so that `bchooks stop` ends it too."""
        self.processes[name] = process
        path = self.run_dir / STATE
        state = json.loads(path.read_text())
        state["pids"][name] = process.pid
        _write_json(path, state)

    def stop(self):
        for name in reversed(list(self.processes)):
            end_child(self.processes.pop(name))
        state = _read_state(self.run_dir)
        if state is not None and state.get("supervisor") == os.getpid():  # never another kit's state
            (self.run_dir / STATE).unlink(missing_ok=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def stop_recorded(run_dir):
    """Stop the processes a stack recorded in `run_dir`; returns their names (empty when none ran)."""
    path = Path(run_dir) / STATE
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    names = list(state.get("pids", {}))
    supervisor = state.get("supervisor")
    if supervisor and supervisor != os.getpid():
        stop_process(supervisor, timeout=45)  # `bchooks dev` stops its own processes on SIGTERM
    for name in reversed(names):
        stop_process(state["pids"][name])
    path.unlink(missing_ok=True)
    return names
