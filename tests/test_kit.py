"""The kit of `bchooks dev` as a user meets it from a second terminal: commands find it, a second kit is refused,
JupyterLab works on copies of the notebooks and asks no news question."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from bchooks.kit.stack import running
from conftest import free_port, wait_http, wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}  # a new terminal


def bchooks(folder, *args, env=None):
    return subprocess.run([sys.executable, "-m", "bchooks", *args], cwd=folder, capture_output=True, text=True,
                          timeout=120, env={**CLEAN_ENV, **(env or {})})


def start_dev(folder, *args):
    process = subprocess.Popen([sys.executable, "-m", "bchooks", "dev", "--port", str(free_port()),
                                "--sandbox-port", str(free_port()), *args], cwd=folder,
                               env={**CLEAN_ENV, "JUPYTER_RUNTIME_DIR": str(folder / "runtime")},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state = folder / ".bchooks" / "run" / "state.json"
    wait_until(lambda: state.exists() or process.poll() is not None, deadline=60)
    return process, json.loads(state.read_text())


def stop_dev(folder, process):
    try:
        result = bchooks(folder, "stop")
        assert result.returncode == 0, result.stderr
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def kit(tmp_path):
    process, state = start_dev(tmp_path, "--no-lab", "--history", "0")  # (shops without a year: today's orders only)
    yield tmp_path, state
    stop_dev(tmp_path, process)


def test_commands_from_a_second_terminal_use_the_running_kit(kit):
    folder, state = kit
    result = bchooks(folder, "register", "--events", "order.created,order.updated")
    assert result.returncode == 0, result.stderr
    assert "using the kit `bchooks dev` runs in this folder" in result.stderr and result.stderr.count("\n") == 1
    assert state["receiver_url"] in bchooks(folder, "webhooks").stdout
    result = bchooks(folder, "simulate", "order.created", "-n", "3")
    assert result.returncode == 0 and "sent 3, 2xx 3" in result.stdout, result.stderr
    result = bchooks(folder, "simulate", "order.created", "-n", "2", "--via-sandbox")
    assert result.returncode == 0 and "2 deliveries: sent 2, 2xx 2" in result.stdout, result.stdout + result.stderr
    events = bchooks(folder, "events").stdout
    assert events.count("order.created") == 5
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = bchooks(folder, "reconcile", "--since", yesterday)
    assert result.returncode == 0 and "checked 2 orders" in result.stdout, result.stdout + result.stderr
    exports = bchooks(folder, "env").stdout
    assert f"export BCHOOKS_API_URL={state['sandbox_url']}" in exports and "cat .bchooks/dev-secret" in exports
    secret = (folder / ".bchooks" / "dev-secret").read_text().strip()
    assert secret not in exports


def test_the_readmes_client_example_prints_this_months_orders(kit):
    """`iter_orders(updated_since=...)` after `eval "$(bchooks env)"`: the sandbox's orders carry today's time."""
    folder, _ = kit
    assert bchooks(folder, "register", "--events", "order.created").returncode == 0
    assert bchooks(folder, "simulate", "order.created", "-n", "2", "--via-sandbox").returncode == 0
    since = (datetime.now(timezone.utc) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    script = ('eval "$(bchooks env)" && python - <<EOF\nfrom bchooks import Config\nfrom bchooks.shops.client import '
              'BigCartelClient\nwith BigCartelClient.from_config(Config.load()) as client:\n    for order in '
              f'client.iter_orders(updated_since="{since}"):\n        print(order["data"]["id"], '
              'order["data"]["attributes"]["total"])\nEOF\n')
    result = subprocess.run(["bash", "-c", script], cwd=folder, capture_output=True, text=True, timeout=60,
                            env={**CLEAN_ENV, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2 and result.stdout.startswith("BCSB-")


def test_a_second_kit_in_the_same_folder_is_refused_and_touches_nothing(kit):
    folder, state = kit
    state_path = folder / ".bchooks" / "run" / "state.json"
    before = state_path.read_text()
    result = bchooks(folder, "dev", "--no-lab", "--port", str(free_port()), "--sandbox-port", str(free_port()))
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "already running in this folder" in result.stderr and str(state["supervisor"]) in result.stderr
    assert state_path.read_text() == before
    assert all(running(pid) for pid in state["pids"].values())


def test_lab_works_on_copies_and_asks_no_news_question(tmp_path):
    import shutil
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    committed = {p.name: p.read_bytes() for p in (tmp_path / "notebooks").glob("*.ipynb")}
    lab_port = free_port()
    process, state = start_dev(tmp_path, "--no-browser", "--lab-port", str(lab_port))
    try:
        wait_until(lambda: list((tmp_path / "runtime").glob("jpserver-*.json")), deadline=60)
        server = json.loads(next((tmp_path / "runtime").glob("jpserver-*.json")).read_text())
        token = server["token"]
        base = f"http://127.0.0.1:{server['port']}"  # (Lab moves on when the port asked for was taken meanwhile)
        assert wait_http(f"{base}/api/status?token={token}", deadline=60, process=process).ok
        assert Path(server["root_dir"]) == (tmp_path / ".bchooks" / "notebooks").resolve()
        listing = requests.get(f"{base}/api/contents?token={token}", timeout=10).json()
        assert sorted(i["name"] for i in listing["content"] if i["type"] == "notebook") == sorted(committed)
        notebook = requests.get(f"{base}/api/contents/03_analyze_orders.ipynb?token={token}", timeout=10).json()
        notebook["content"]["cells"][0]["source"] = "# changed by a user"
        saved = requests.put(f"{base}/api/contents/03_analyze_orders.ipynb?token={token}", timeout=10,
                             json={"type": "notebook", "format": "json", "content": notebook["content"]})
        assert saved.ok  # what Lab does when a user runs and saves a notebook
        assert {p.name: p.read_bytes() for p in (tmp_path / "notebooks").glob("*.ipynb")} == committed
        settings = requests.get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification"
                                f"?token={token}", timeout=10).json()
        defaults = settings["schema"]["properties"]  # (overrides.json sets the defaults Lab starts from)
        assert defaults["fetchNews"]["default"] == "false" and defaults["checkForUpdates"]["default"] is False
        assert "fetchNews" not in settings["settings"]  # the user's own settings are left alone
    finally:
        stop_dev(tmp_path, process)


def test_the_docs_hand_signed_example_is_stored_with_its_currency_and_country(kit):
    """docs/receiver.md's Python block under "Sending an event by hand", run as written against the kit, with the
    variables `eval "$(bchooks env)"` sets."""
    from bchooks import EventStore, analysis
    folder, state = kit
    page = (ROOT / "docs" / "receiver.md").read_text()
    block = page.split("## Sending an event by hand", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    secret = (folder / ".bchooks" / "dev-secret").read_text().strip()
    result = subprocess.run([sys.executable, "-c", block], cwd=folder, capture_output=True, text=True, timeout=60,
                            env={**CLEAN_ENV, "BCHOOKS_SECRET": secret, "BCHOOKS_RECEIVER_URL": state["receiver_url"]})
    assert result.returncode == 0 and "'status': 'stored'" in result.stdout, result.stdout + result.stderr
    with EventStore(state["db"]) as store:
        orders = analysis.frames(store).orders
    row = orders[orders["order_id"] == "BCSB-BYHAND-000002"].iloc[0]
    assert (row["currency"], row["country"], row["country_name"]) == ("USD", "US", "United States")


def test_messages_say_what_happened(tmp_path):
    """Deliveries the sandbox drops on purpose are not counted as sent; a rejected --token is named as such."""
    from conftest import SandboxProcess, Receiver, SECRET
    sandbox = SandboxProcess(tmp_path, "--drop", "0.5", "--seed", "1")
    receiver = Receiver(tmp_path / "events.db")
    env = {"BCHOOKS_API_URL": sandbox.url, "BCHOOKS_TOKEN": "sandbox-token", "BCHOOKS_SECRET": SECRET,
           "BCHOOKS_RECEIVER_URL": receiver.url + "/webhook"}
    try:
        assert bchooks(tmp_path, "register", "--events", "order.created", env=env).returncode == 0
        result = bchooks(tmp_path, "simulate", "order.created", "-n", "20", "--via-sandbox", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        line = result.stdout.strip()
        sent = int(line.split("sent ")[1].split(",")[0])
        dropped = int(line.split("not sent: ")[1].split(" ")[0])
        assert sent + dropped == 20 and dropped > 0 and "dropped on purpose by the sandbox" in line
        assert f"2xx {sent}," in line
        result = bchooks(tmp_path, "webhooks", "--token", "wrong-token", env=env)
        assert result.returncode == 1 and result.stderr.strip().endswith("check the token given with --token")
        assert "wrong-token" not in result.stderr
        result = bchooks(tmp_path, "simulate", "order.created", "-n", "2", "--to", "http://127.0.0.1:9/webhook",
                         env=env)
        assert result.returncode == 1 and "connection failed (at http://127.0.0.1:9/webhook)" in result.stdout
    finally:
        receiver.stop()
        sandbox.stop()


def test_a_shop_connected_and_polled_in_the_kit_from_a_second_terminal(kit):
    """The README's polling commands, run as written in the kit's folder: they use its sandbox, store and shops."""
    folder, state = kit
    assert bchooks(folder, "simulate", "order.created", "-n", "1", "--via-sandbox").returncode == 0  # (no webhook)
    result = bchooks(folder, "connect", "--subdomain", "sandbox-shop", env={"BCHOOKS_SHOP_PASSWORD": "sandbox-password"})
    assert result.returncode == 0 and "connected shop 1234567" in result.stdout, result.stderr
    assert (folder / ".bchooks" / "shops.json").exists()
    result = bchooks(folder, "poll", "--once")
    assert result.returncode == 0 and "shop 1234567: 1 of 1 orders read were new or changed" in result.stderr
    listing = bchooks(folder, "shops").stdout
    assert "Sandbox Shop" in listing and "never" not in listing
    assert "order.created" in bchooks(folder, "events", "--type", "order.created").stdout
    assert bchooks(folder, "disconnect", "1234567").returncode == 0
    assert "no shop connected" in bchooks(folder, "shops").stdout
