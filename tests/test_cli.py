import json
import os
import stat
import subprocess
import sys

import pytest

from bchooks.cli import main
from bchooks.devsecret import ensure_dev_secret
from bchooks.events import parse_envelope
from bchooks.store import EventStore
from conftest import envelope


def run(args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "bchooks", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.fixture
def filled(db_path):
    with EventStore(db_path) as store:
        for i, kind in enumerate(["order.created", "product.updated", "order.updated"]):
            body = envelope(type=kind, payload={"id": f"R{i}"})
            store.append(body, parse_envelope(body))
    return db_path


def test_events_table(filled, capsys):
    assert main(["events", "--db", str(filled)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "RECEIVED_AT", "TYPE", "ACCOUNT", "RESOURCE", "BYTES"]
    assert [line.split()[2] for line in out[1:]] == ["order.created", "product.updated", "order.updated"]


def test_events_filter_limit_json(filled, capsys):
    assert main(["events", "--db", str(filled), "--type", "order.updated", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["body"]["payload"]["id"] == "R2"
    assert main(["events", "--db", str(filled), "--limit", "2", "--json"]) == 0
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == [2, 3]


def test_events_env_var_selects_db(filled, tmp_path):
    result = run(["events"], cwd=tmp_path, env={"BCHOOKS_DB": str(filled)})
    assert result.returncode == 0 and "product.updated" in result.stdout


@pytest.mark.parametrize("args,needle", [
    (["serve", "--port", "abc"], "--port must be a whole number"),
    (["events", "--limit", "x"], "invalid int value"),
    (["nonsense"], "invalid choice"),
    (["serve", "--path", "webhook"], "must be a URL path"),
])
def test_usage_errors_are_one_line_exit_2(tmp_path, args, needle):
    result = run(args, cwd=tmp_path, env={"BCHOOKS_SECRET": "x"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and needle in result.stderr and "Traceback" not in result.stderr


def test_events_on_unreadable_db_is_one_line(tmp_path):
    (tmp_path / "x.db").write_text("not a database at all, just text" * 50)
    result = run(["events", "--db", "x.db"], cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_dev_secret_is_private_and_stable(tmp_path):
    secret, path = ensure_dev_secret(tmp_path / ".bchooks" / "dev-secret")
    assert len(secret) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)
    again, _ = ensure_dev_secret(path)
    assert again == secret and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_module_entry_point_prints_version(tmp_path):
    result = run(["--version"], cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("bchooks ")
