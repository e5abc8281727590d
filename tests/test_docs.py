"""The README documents every setting and every command (like sqlite-utils' test_docs)."""

from pathlib import Path

import pytest

from bchooks.cli import build_parser
from bchooks.config import SETTINGS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_every_setting_is_in_the_configuration_table(setting):
    assert f"`{setting.env}`" in README
    if setting.flag:
        assert f"`{setting.flag}`" in README


def test_every_command_is_in_the_cli_reference():
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"bchooks {name}" in README, name


def test_quick_start_has_exactly_two_commands():
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```")[1::2]
    commands = [line for block in blocks for line in block.splitlines()[1:] if line.strip()
                and not line.strip().startswith("#")]
    assert len(commands) == 2, commands


def test_every_module_is_in_the_module_map():
    """The README's map names every module and package of bchooks/ (a new one must be placed in it)."""
    section = README.split("## Module map", 1)[1].split("\n## ", 1)[0]
    package = Path(__file__).resolve().parent.parent / "bchooks"
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.name in ("__init__.py", "__main__.py"):
            continue
        name = relative.name if len(relative.parts) == 1 else f"{relative.parts[0]}/"
        assert f"`{name}`" in section or f"`{relative.name}`" in section, relative
        if len(relative.parts) > 1:
            assert f"`{relative.name}`" in section, relative


def test_no_sql_outside_the_store():
    import re
    package = Path(__file__).resolve().parent.parent / "bchooks"
    for path in package.rglob("*.py"):
        if "store" in path.relative_to(package).parts[:1]:
            continue
        text = path.read_text()
        assert "import sqlite3" not in text and not re.search(r"\.execute\(", text), path
