"""Root conftest: nbval runs every notebook against its own fresh sandbox + receiver stack.

pytest fixtures never run for nbval cells, so the stack is started in `pytest_runtest_setup` (before nbval starts
the notebook's kernel, which inherits the BCHOOKS_* environment) each time a new notebook begins.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
NOTEBOOK_SECRET = "notebook-test-secret"
DEMO_END = "2026-12-01T12:00:00.000Z"  # the demo history of the stored notebooks ends here, whatever today is
_state = {"notebook": None, "stack": None, "dir": None}


def pytest_configure(config):
    if getattr(config.option, "nbval", False) and not config.option.nbval_sanitize_with:
        config.option.nbval_sanitize_with = str(ROOT / "tests" / "nbval_sanitize.cfg")


def start_notebook_stack():
    """A fresh stack in a temporary folder, with os.environ pointing at it; returns (stack, folder)."""
    from bchooks.kit.stack import Stack
    folder = Path(tempfile.mkdtemp(prefix="bchooks-nb-"))
    stack = Stack(folder / "run", secret=NOTEBOOK_SECRET, db=folder / "bchooks.db", receiver_port=0,
                  sandbox_port=0).start()
    os.environ.update(stack.env(), BCHOOKS_DEMO_END=DEMO_END)
    return stack, folder


def stop_notebook_stack():
    if _state["stack"] is not None:
        _state["stack"].stop()
        shutil.rmtree(_state["dir"], ignore_errors=True)
    _state.update(stack=None, dir=None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    notebook = item.parent if item.path.suffix == ".ipynb" else None
    if notebook is None or notebook is _state["notebook"]:
        return
    stop_notebook_stack()
    _state["notebook"] = notebook
    _state["stack"], _state["dir"] = start_notebook_stack()


def pytest_sessionfinish(session):
    stop_notebook_stack()
