#!/usr/bin/env python3
"""The README's two quick-start commands: install into .venv, then run the kit or its test suite.

    python3 tools/kit.py start [ARGS] # install, then `bchooks dev ARGS`: sandbox, receiver and JupyterLab
    python3 tools/kit.py test [ARGS]  # install, then the whole test suite (ARGS go to pytest)

Needs only Python 3 (with its venv module). Installs again only when requirements.txt or pyproject.toml change.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".bchooks-installed"


def fingerprint():
    digest = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def install():
    if STAMP.exists() and STAMP.read_text() == fingerprint():
        return
    if not (BIN / "python").exists():
        print("kit: creating .venv", file=sys.stderr)
        try:
            venv.create(VENV, with_pip=True)
        except Exception as error:  # e.g. Debian's python3 without python3-venv
            sys.exit(f"kit: cannot create a virtual environment ({error}); on Debian/Ubuntu: "
                     "apt-get install python3-venv")
    print("kit: installing requirements.txt into .venv (a few minutes the first time; each package is named as it "
          "comes)", file=sys.stderr, flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    if subprocess.call([*pip, "-r", str(ROOT / "requirements.txt"), "-e", str(ROOT)]) != 0:
        sys.exit("kit: pip install failed (see above)")
    STAMP.write_text(fingerprint())


def main(argv):
    if not argv or argv[0] not in ("start", "test", "install"):
        sys.exit("usage: python3 tools/kit.py start|test|install [ARGS]")
    install()
    command, rest = argv[0], argv[1:]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    if command == "install":
        return 0
    os.chdir(ROOT)
    if command == "start":
        os.execve(str(BIN / "bchooks"), ["bchooks", "dev", *rest], env)
    os.execve(str(BIN / "python"), ["python", "-m", "pytest", *rest], env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
