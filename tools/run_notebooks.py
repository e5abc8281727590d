#!/usr/bin/env python3
"""Execute every notebook in notebooks/ against a fresh sandbox + receiver and store its outputs.

    .venv/bin/python tools/run_notebooks.py [NOTEBOOK ...]

Uses the same stack and environment as the nbval tests (the root conftest.py), and no widget state, so that the
stored outputs are what strict nbval compares against. Execution counts come out 1..N.
"""

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conftest import _state, start_notebook_stack, stop_notebook_stack  # noqa: E402


def run(path):
    notebook = nbformat.read(path, as_version=4)
    _state["stack"], _state["dir"] = start_notebook_stack()
    folder = str(_state["dir"])
    try:
        client = NotebookClient(notebook, timeout=300, kernel_name="python3", store_widget_state=False,
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        stop_notebook_stack()
    for cell in notebook.cells:  # the stack's temporary folder as nbval's sanitizer writes it
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = output["text"].replace(folder, "<kit folder>")
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/") and isinstance(value, str):
                    output["data"][kind] = value.replace(folder, "<kit folder>")
    notebook.metadata.pop("widgets", None)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                       "name": "python3"}
    nbformat.write(notebook, path)
    print(f"ran {path.relative_to(ROOT)}")


def main(argv):
    paths = [Path(p).resolve() for p in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    os.chdir(ROOT)
    for path in paths:
        run(path)


if __name__ == "__main__":
    main(sys.argv[1:])
