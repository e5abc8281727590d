"""The docs stay true: the generated pages match the settings table and the parser, the README stays short with its
two quick-start commands, the module map names every module (like sqlite-utils' test_docs)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bchooks.cli import build_parser
from bchooks.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()
sys.path.insert(0, str(ROOT / "tools"))
import gen_docs  # noqa: E402


def _commands():
    return build_parser()._subparsers._group_actions[0].choices


@pytest.mark.parametrize("name", sorted(gen_docs.PAGES))
def test_generated_page_is_up_to_date(name):
    """docs/configuration.md and docs/cli.md are what tools/gen_docs.py makes of today's settings and parser: after
    adding a setting, a command or a flag, run `python tools/gen_docs.py`."""
    assert (DOCS / name).read_text() == gen_docs.PAGES[name](), f"docs/{name} is stale: run python tools/gen_docs.py"


def test_gen_docs_check_exits_1_on_a_stale_page(tmp_path, monkeypatch):
    monkeypatch.setattr(gen_docs, "DOCS", tmp_path)
    assert gen_docs.main(["--check"]) == 1  # (nothing written yet)
    assert gen_docs.main([]) == 0
    assert gen_docs.main(["--check"]) == 0
    (tmp_path / "cli.md").write_text((tmp_path / "cli.md").read_text().replace("bchooks serve", "bchooks srv", 1))
    assert gen_docs.main(["--check"]) == 1


def test_gen_docs_runs_as_a_script():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_docs.py"), "--check"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_every_setting_is_in_the_configuration_page(setting):
    page = (DOCS / "configuration.md").read_text()
    row = next((line for line in page.splitlines() if line.startswith(f"| `{setting.env}` |")), None)
    assert row is not None, setting.env
    assert setting.help.split("`")[0][:40].replace("|", "\\|") in row
    if setting.flag:
        assert f"`{setting.flag}`" in row


def test_every_command_and_flag_is_in_the_cli_reference():
    page = (DOCS / "cli.md").read_text()
    for name, command in _commands().items():
        section = page.split(f"\n## bchooks {name}\n", 1)[1].split("\n## ", 1)[0]
        for action in command._actions:
            for option in ([] if "-h" in action.option_strings else action.option_strings):
                assert option in section, (name, option)


def test_readme_is_at_most_200_lines():
    assert len(README.splitlines()) <= 200


def test_quick_start_has_exactly_two_commands():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```")[1::2]
    commands = [line for block in blocks for line in block.splitlines()[1:] if line.strip()
                and not line.strip().startswith("#")]
    assert commands == ["python3 tools/kit.py start", "python3 tools/kit.py test"], commands
    assert re.findall(r"^```sh\n(.*?)\n```$", section, re.M | re.S) == commands  # each alone in its own block


def test_every_docs_page_is_in_the_site_and_linked_from_the_readme():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in sorted(DOCS.glob("*.md")):
        assert re.search(rf":\s*{re.escape(page.name)}\s*$", nav, re.M), f"{page.name} missing from mkdocs.yml nav"
        if page.name != "index.md":
            assert f"(docs/{page.name}" in README, f"the README does not link docs/{page.name}"


def _anchors(page):
    """The anchors of a page's headings, as the forge and MkDocs make them."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).strip().replace(" ", "-") for heading in headings}


def test_links_between_pages_resolve():
    """Every link to a page of the docs (and its #anchor) leads somewhere."""
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target, anchor in re.findall(r"\]\(([^)#:\s]*\.md)?(?:#([^)\s]*))?\)", page.read_text()):
            if not target and not anchor:
                continue
            path = page.parent / target if target else page
            assert path.exists(), (page.name, target)
            if anchor:
                assert anchor in _anchors(path), (page.name, target, anchor)


def test_one_form_of_the_command():
    """Examples say `bchooks ...` with the virtualenv active, never `.venv/bin/bchooks` (units and cron lines, which
    name the service's absolute path, aside)."""
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for line in page.read_text().splitlines():
            if re.search(r"\.venv/bin/(?!activate)", line) and "/srv/bchooks" not in line:
                pytest.fail(f"{page.name}: {line.strip()}")


def test_every_module_is_in_the_module_map():
    """docs/architecture.md's map names every module of bchooks/ by its path inside the package (`config.py`,
    `store/events.py`, `receiving/receiver.py`): a new module must be placed in it. The old flat paths are named in
    its table of old import paths, so the map holds before and after a move."""
    page = (DOCS / "architecture.md").read_text()
    section = page.split("## Module map", 1)[1]
    package = ROOT / "bchooks"
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.name in ("__init__.py", "__main__.py"):
            continue
        assert f"`{relative.as_posix()}`" in section, relative
    for folder in sorted(p for p in package.iterdir() if (p / "__init__.py").exists()):
        assert f"`{folder.name}/`" in section, folder.name


def test_no_sql_outside_the_store():
    package = ROOT / "bchooks"
    for path in package.rglob("*.py"):
        if "store" in path.relative_to(package).parts[:1]:
            continue
        text = path.read_text()
        assert "import sqlite3" not in text and not re.search(r"\.execute\(", text), path


def test_the_old_flat_import_paths_still_work_with_a_deprecation_warning():
    import importlib
    import subprocess
    import sys
    from bchooks import MOVED
    for old, new in MOVED.items():
        code = (f"import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
                f"try:\n    import bchooks.{old}\nexcept DeprecationWarning as w:\n    print(w)\n")
        said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
        assert f"bchooks.{old} moved to bchooks.{new}" in said, (old, said)
    code = ("import warnings; warnings.simplefilter('ignore')\nimport bchooks.client, bchooks.shops.client\n"
            "assert bchooks.client is bchooks.shops.client and bchooks.shops.client.__spec__.name == "
            "'bchooks.shops.client'\nfrom bchooks.shops import ShopBook, connect_basic\nfrom bchooks.kit import Kit, "
            "RUN_DIR\nprint('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout == "ok\n"
    assert len([p for p in (ROOT / "bchooks").glob("*.py") if p.name not in ("__init__.py", "__main__.py")]) <= 8
    importlib.import_module("bchooks.receiving.receiver")
