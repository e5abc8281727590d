import json
import os
import stat
import subprocess
import sys

import pytest

from bchooks.cli import main
from bchooks.kit.devsecret import ensure_dev_secret
from bchooks.wire import parse_envelope
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


def test_a_read_command_never_creates_a_store(tmp_path):
    result = run(["events", "--db", "missing.db"], cwd=tmp_path)
    assert result.returncode == 2 and "no event store at" in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # neither the file nor its lock
    for args in (["failures", "--db", "missing.db"], ["replay", "--dead", "--db", "missing.db"]):
        result = run(args, cwd=tmp_path)
        assert result.returncode == 2 and "no event store" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,needle", [
    (["events", "--type", "order.creatd"], "known: account.updated"),
    (["events", "--limit", "0"], "--limit must be a whole number of at least 1"),
    (["events", "--limit", "-1"], "--limit must be a whole number of at least 1"),
    (["failures", "--limit", "0"], "--limit must be"),
    (["replay", "9999"], "no event 9999"),
    (["replay", "--since", "notatime"], "--since must be an ISO-8601 time"),
    (["replay", "--type", "order.creatd"], "unknown event type 'order.creatd'"),
    (["reconcile", "--since", "yesterday", "--api-url", "http://127.0.0.1:9"], "--since must be an ISO-8601 time"),
])
def test_mistakes_are_one_line_and_exit_2_before_anything_is_sent(filled, args, needle):
    result = run([*args, "--db", str(filled)], cwd=filled.parent)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_type_the_store_holds_is_accepted_even_if_not_documented(db_path, capsys):
    with EventStore(db_path) as store:
        body = envelope(type="order.teleported")
        store.append(body, parse_envelope(body))
    assert main(["events", "--db", str(db_path), "--type", "order.teleported"]) == 0
    assert "order.teleported" in capsys.readouterr().out


def test_a_usage_error_names_the_command_once(tmp_path):
    result = run(["register"], cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("bchooks register: ")
    assert "bchooks: bchooks" not in result.stderr


def test_the_readmes_handlers_layout_imports_from_the_working_directory(tmp_path, db_path):
    """myshop/hooks.py beside the store, as in the README: `--handlers myshop.hooks` (and a file path) work."""
    (tmp_path / "myshop").mkdir()
    (tmp_path / "myshop" / "hooks.py").write_text(
        "from bchooks.processing.handlers import on\n\n@on('order.created')\ndef notify_packing(event):\n"
        "    open('packed.txt', 'a').write(event.resource_id + '\\n')\n")
    with EventStore(db_path) as store:
        body = envelope()
        store.append(body, parse_envelope(body))
    result = run(["worker", "--handlers", "myshop.hooks", "--once", "--db", str(db_path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "packed.txt").read_text() == "NGRP-000001\n"
    assert result.stderr.count("ran 1 handler run(s): 1 done") == 1  # one line for the whole pass
    (tmp_path / "other.db").unlink(missing_ok=True)
    result = run(["worker", "--handlers", str(tmp_path / "myshop" / "hooks.py"), "--once", "--db",
                  str(tmp_path / "other.db")], cwd=tmp_path.parent)
    assert result.returncode == 0 and "nothing was due" in result.stderr, result.stderr


def test_worker_once_prints_one_line_for_many_batches(tmp_path, db_path):
    (tmp_path / "quiet.py").write_text("from bchooks.processing.handlers import on\n\n@on('*')\ndef noop(event):\n    pass\n")
    with EventStore(db_path) as store:
        for n in range(65):  # more than three claims of 20
            body = envelope(payload={"id": f"N{n}"})
            store.append(body, parse_envelope(body))
    result = run(["worker", "--handlers", "quiet", "--once", "--db", str(db_path)], cwd=tmp_path)
    assert result.returncode == 0 and result.stderr.count("\nran ") + result.stderr.startswith("ran ") == 1
    assert "ran 65 handler run(s): 65 done" in result.stderr


def test_describe_shows_the_stores_full_path(tmp_path, monkeypatch):
    from bchooks import Config
    monkeypatch.chdir(tmp_path)
    assert f"store:     {tmp_path / 'bchooks.db'}" in Config.load(env={}).describe()


def _send(tmp_path, env, *args):
    return subprocess.run([sys.executable, "-m", "bchooks", "send", *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)


def test_send_signs_one_event_or_a_body_file_and_posts_it(receiver, tmp_path):
    from conftest import SECRET
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}, "BCHOOKS_SECRET": SECRET}
    to = ["--to", f"{receiver.url}/webhook"]
    result = _send(tmp_path, env, "order.created", *to)
    assert result.returncode == 0 and "signed with BCHOOKS_SECRET" in result.stdout, result.stderr
    body = (b'{"account_id":"1234567","type":"order.updated","payload":{"id":"BODY-1",'
            b'"updated_at":"2026-12-01T10:00:00.000Z"}}')
    (tmp_path / "body.json").write_bytes(body)
    assert _send(tmp_path, env, "--file", "body.json", *to).returncode == 0
    with EventStore(receiver.db) as store:
        stored = [(e.type, e.body) for e in store.iter_events()]
    assert [t for t, _ in stored] == ["order.created", "order.updated"] and stored[1][1] == body  # byte for byte
    wrong = _send(tmp_path, {**env, "BCHOOKS_SECRET": "another-secret"}, "--file", "body.json", *to)
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1 and "401" in wrong.stderr
    for args in (["--file", "none.json"], ["order.created", "--file", "body.json"], ["no.such.type"]):
        refused = _send(tmp_path, env, *args, *to)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr


@pytest.mark.parametrize("args", [["simulate", "order.created", "--to", "http://127.0.0.1:9/webhook"],
                                  ["send", "--to", "http://127.0.0.1:9/webhook"],
                                  ["connect", "--app", "--client-id", "x", "--no-browser"]])
def test_commands_that_sign_for_a_kit_say_so_outside_one_and_create_nothing(tmp_path, args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}
    env["BCHOOKS_SHOPS"] = str(tmp_path / "shops.json")
    result = subprocess.run([sys.executable, "-m", "bchooks", *args], capture_output=True, text=True, timeout=60,
                            env=env, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "no kit" in result.stderr and "BCHOOKS_SECRET" in result.stderr
    assert list(tmp_path.iterdir()) == []  # no stray .bchooks/, no store
