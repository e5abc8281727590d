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


def test_the_four_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_setup_webhooks.ipynb", "02_simulate_events.ipynb",
                                           "03_analyze_orders.ipynb", "04_operate_receiver.ipynb"]


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
        assert len(plotted) == 3
