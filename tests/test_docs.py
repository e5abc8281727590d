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
