#!/usr/bin/env python3
"""The README's promise that the quick start and then the test command pass on the same clone, checked as a user
meets it: `python3 tools/kit.py start --no-browser` in this clone, every notebook run in that kit's JupyterLab
environment and saved (as a user running them does), `bchooks stop`. `.ci/run` runs this before the test command.

    python3 tools/check_quickstart.py

Exits non-zero when any step fails. Leaves what a user would have: `bchooks.db` and `.bchooks/` (git-ignored).
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main():
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}  # a fresh terminal
    state_path = ROOT / ".bchooks" / "run" / "state.json"
    start = subprocess.Popen([sys.executable, str(ROOT / "tools" / "kit.py"), "start", "--no-browser",
                              "--lab-port", str(free_port())], cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600  # (the first start installs .venv)
        while not (state_path.exists() and "jupyterlab" in json.loads(state_path.read_text()).get("pids", {})):
            if start.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"check_quickstart: the quick start did not come up (exit {start.poll()})")
            time.sleep(0.5)
        exports = subprocess.run([str(BIN / "bchooks"), "env"], cwd=ROOT, env=env, capture_output=True, text=True,
                                 check=True).stdout
        kit_env = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines()
                       if line.startswith("export BCHOOKS_") and "$(" not in line)
        kit_env["BCHOOKS_SECRET"] = (ROOT / ".bchooks" / "dev-secret").read_text().strip()
        notebooks = sorted((ROOT / ".bchooks" / "notebooks").glob("*.ipynb"))
        if len(notebooks) != len(list((ROOT / "notebooks").glob("*.ipynb"))):
            sys.exit("check_quickstart: the kit did not make working copies of the notebooks")
        for path in notebooks:
            result = subprocess.run([str(BIN / "python"), "-c", RUN_ONE, str(path)], cwd=path.parent,
                                    env={**env, **kit_env}, capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                sys.exit(f"check_quickstart: {path.name} failed in the kit:\n{result.stderr[-3000:]}")
            print(f"check_quickstart: ran and saved {path.relative_to(ROOT)}", flush=True)
    finally:
        subprocess.run([str(BIN / "bchooks"), "stop"], cwd=ROOT, env=env, timeout=180)
        try:
            start.wait(timeout=120)
        except subprocess.TimeoutExpired:
            start.kill()
            start.wait()
    if start.returncode != 0:
        sys.exit(f"check_quickstart: bchooks dev exited with {start.returncode}")
    print("check_quickstart: the quick start works; the committed notebooks are untouched", flush=True)


RUN_ONE = """
import sys, nbformat
from nbclient import NotebookClient
path = sys.argv[1]
notebook = nbformat.read(path, as_version=4)
NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
nbformat.write(notebook, path)
"""

if __name__ == "__main__":
    main()
