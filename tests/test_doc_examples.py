"""Every example in README.md and docs/*.md runs as written.

An example is a fenced block tagged ```sh or ```python; blocks that cannot run in a test (systemd units, a real shop's
credentials) are tagged ```text, ```ini, ```console, ```sql... and are not examples; nor are the README's two
quick-start commands (`kit.py start` and `kit.py test`, checked by .ci/run's tools/check_quickstart.py).

All examples of a run share one real stack (a `bchooks sandbox` and a `bchooks serve` process on random loopback
ports, storing into `bchooks.db` of a temporary folder), the folder as their working directory, and the variables
`eval "$(bchooks env)"` gives in a kit's folder (`BCHOOKS_RECEIVER_URL`, `BCHOOKS_API_URL`, `BCHOOKS_TOKEN`,
`BCHOOKS_SECRET`, ...). `sh` blocks run with `bash -e -o pipefail` and the virtualenv's `bin` first on `PATH` (so
`bchooks` is the command the README activates); `python` blocks run in that virtualenv's Python. A python block whose
first line is a comment naming a file (`# myshop/hooks.py`) is also written to that file, for the blocks after it.
The store holds a few simulated orders before the first example, so each example finds something to show;
examples of one page run in their order.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import SECRET

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
RUNNABLE = ("sh", "python")
FILE_LINE = re.compile(r"^# ([\w./-]+\.py)\s*$")

pytestmark = pytest.mark.integration


def pages():
    """README.md, then every page of docs/ (by name)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(path):
    """[(line number, tag, text)] of the fenced blocks of a Markdown file, but for the README's quick start (its two
    commands install and start a whole kit: .ci/run checks them with tools/check_quickstart.py)."""
    text = path.read_text()
    skip = range(0)
    if path.name == "README.md":
        start = text.index("\n## Quick start")
        skip = range(start, text.index("\n## ", start + 1))
    return [(text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2)) for match in FENCE.finditer(text)
            if match.start() not in skip]


def examples():
    found = []
    for path in pages():
        for line, tag, text in blocks(path):
            if tag in RUNNABLE:
                name = path.relative_to(ROOT).as_posix()
                found.append(pytest.param(tag, text, id=f"{name}:{line}"))
    return found


@pytest.fixture(scope="module")
def kit_folder():
    """A folder like a kit's: a real sandbox and receiver, `bchooks.db` in it, and the kit's variables."""
    from bchooks.kit.stack import Stack
    folder = Path(tempfile.mkdtemp(prefix="bchooks-docs-"))
    (folder / "home").mkdir()
    stack = Stack(folder / ".bchooks" / "run", secret=SECRET, db=folder / "bchooks.db", receiver_port=0,
                  sandbox_port=0).start()
    try:
        venv_bin = str(Path(sys.executable).parent)
        env = {**os.environ, **stack.env(), "HOME": str(folder / "home"), "PYTHONPATH": str(ROOT),
               "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", "MPLBACKEND": "Agg"}
        seeded = subprocess.run([sys.executable, "-m", "bchooks", "simulate", "order.created", "-n", "12",
                                 "--seed", "3"], cwd=folder, env=env, capture_output=True, text=True, timeout=60)
        assert seeded.returncode == 0, seeded.stderr
        yield folder, env
    finally:
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_the_docs_hold_examples():
    """The harness finds the examples (a changed fence syntax would otherwise make every test below vanish)."""
    tags = [param.values[0] for param in examples()]
    assert tags.count("sh") >= 5 and tags.count("python") >= 4, tags


@pytest.mark.parametrize("tag, text", examples())
def test_example_runs_as_written(kit_folder, tag, text):
    folder, env = kit_folder
    if tag == "python":
        first = text.splitlines()[0] if text.strip() else ""
        named = FILE_LINE.match(first)
        if named:
            target = folder / named.group(1)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        command = [sys.executable, "-c", text]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", text]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n" \
                                 f"{done.stderr[-3000:]}"
    assert SECRET not in done.stdout + done.stderr, "an example printed the secret"
