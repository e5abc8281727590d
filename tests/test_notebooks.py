"""Guards for the committed notebooks: executed, thin, documented, and free of secrets and machine paths."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ALL = NOTEBOOKS + sorted((ROOT / "tests").rglob("*.ipynb"))


def cells(path):
    return json.loads(path.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


def test_the_five_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_setup_webhooks.ipynb", "02_simulate_events.ipynb",
                                           "03_analyze_orders.ipynb", "04_operate_receiver.ipynb",
                                           "05_fulfil_orders.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_has_stored_output_counted_1_to_n(path):
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    for cell in code:
        last = source(cell).splitlines()[-1]
        quiet = re.match(r"^(\w[\w, ]*\s=|from |import )", last)  # assignments and imports show nothing
        assert cell["outputs"] or quiet, f"no stored output: {source(cell)[:60]!r}"
    assert any(c["outputs"] for c in code)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_thin(path):
    all_cells = cells(path)
    code = [c for c in all_cells if c["cell_type"] == "code"]
    assert "Config.load" in source(code[0]), "the first code cell reads the configuration"
    for index, cell in enumerate(all_cells):
        if cell["cell_type"] == "code":
            assert index > 0 and all_cells[index - 1]["cell_type"] == "markdown", f"cell {index} lacks markdown"
            text = source(cell)
            assert not re.search(r"^\s*(def|class)\s", text, re.M), f"cell {index} defines a function or class"
            assert len(text.splitlines()) <= 8, f"cell {index} is long"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_ignored_output_gives_a_reason(path):
    for cell in cells(path):
        lines = source(cell).splitlines()
        for n, line in enumerate(lines):
            if line.strip().lstrip("#").strip().startswith("NBVAL_IGNORE_OUTPUT"):
                assert n + 1 < len(lines) and lines[n + 1].startswith("# reason: "), source(cell)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_secrets_tokens_paths_or_widget_state(path):
    text = path.read_text()
    document = json.loads(text)
    assert "widgets" not in document["metadata"], "widget state is stored"
    for needle in ("notebook-test-secret", "test-secret-do-not-use", "sandbox-token", "BCHOOKS_SECRET=", "Traceback"):
        assert needle not in text, f"{path.name} contains {needle!r}"
    assert not re.search(r"/(?:root|home|tmp|work|srv|Users|var)/", text), f"{path.name} names a machine path"
    assert not re.search(r"\b[0-9a-f]{64}\b", text), "a 64-hex string (a secret or signature) is stored"
    assert not re.search(r"token=[0-9a-f]{16,}", text)
    for cell in document["cells"]:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name} stores an error"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_plot_cell_stores_an_image(path):
    """nbval compares text only: a plot stored as `<Figure size ...>` text alone would pass it unseen."""
    plotted = [c for c in cells(path) if c["cell_type"] == "code" and "_figure(" in source(c)]
    for cell in plotted:
        kinds = [kind for output in cell["outputs"] for kind in output.get("data", {})]
        assert "image/png" in kinds, f"a plot stored without an image: {source(cell)[:60]!r}"
    if path.name == "03_analyze_orders.ipynb":
        assert len(plotted) == 5  # weekly revenue, retention, top products, weekday and hour, countries


def test_stored_reconciliation_finds_the_five_orders_its_text_promises():
    notebook = cells(ROOT / "notebooks" / "04_operate_receiver.ipynb")
    [index] = [i for i, c in enumerate(notebook) if "exactly those five orders" in source(c)]
    [output] = notebook[index + 1]["outputs"]
    assert ": 5 missing, 0 stale" in "".join(output["text"]), output


# The kit's way: one sandbox, receiver and store, each notebook's Run All in turn; then what the user sees in the
# panels, read in each notebook's kernel before it ends. `bchooks dev` gives all notebooks the same stack.
PROBES = {
    "01_setup_webhooks.ipynb": "print(panel.table.value)",
    "02_simulate_events.ipynb": "simulator.target.value, simulator.count.value = 'sandbox', 2\nsimulator.send()\n"
                                "print(simulator.status.value)",
    "04_operate_receiver.ipynb": "print(operations.reconciliation.value, operations.status.value, "
                                 "client.list_webhooks())",
}


def run_all_then_probe(path, probe):
    """Execute every cell of the notebook, then `probe` in the same kernel: (the notebook's cells, the probe's text)."""
    import nbformat
    from nbclient import NotebookClient
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    cells, extra = list(notebook.cells), nbformat.v4.new_code_cell(probe)
    notebook.cells.append(extra)
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
    return cells, "".join(output.get("text", "") for output in extra.outputs)


def test_run_all_of_notebooks_1_2_4_in_one_kit_leaves_panels_that_agree(tmp_path, monkeypatch):
    import os
    from bchooks.kit.stack import Stack
    stack = Stack(tmp_path / "run", secret="one-kit-test-secret", db=tmp_path / "bchooks.db", receiver_port=0,
                  sandbox_port=0).start()
    try:
        for name, value in stack.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        receiver = os.environ["BCHOOKS_RECEIVER_URL"]
        seen = {path.name: run_all_then_probe(path, PROBES[path.name]) for path in NOTEBOOKS
                if path.name in PROBES}
    finally:
        stack.stop()
    assert receiver in seen["01_setup_webhooks.ipynb"][1], "notebook 1's webhook table is empty after Run All"
    assert "through the sandbox: sent 2, 2xx 2" in seen["02_simulate_events.ipynb"][1]  # the webhook is still there
    notebook, shown = seen["04_operate_receiver.ipynb"]
    [index] = [i for i, c in enumerate(notebook) if "exactly those five orders" in c.source]
    printed = notebook[index + 1].outputs[0]["text"]
    assert ": 5 missing, 0 stale" in printed, printed  # (of the 17 orders the sandbox has by then)
    assert "checked 17 orders" in printed and "17 checked, 5 missing, 0 stale." in shown
    assert "No failed or dead handler runs." in shown and receiver in shown  # and the registration is back
