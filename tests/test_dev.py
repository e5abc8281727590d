"""The quick start's main job: `bchooks dev` brings up sandbox, receiver and JupyterLab; `bchooks stop` ends all."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from bchooks.kit.stack import running
from conftest import free_port, wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


def test_dev_starts_everything_and_stop_ends_it(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    lab_port = free_port()
    dev = subprocess.Popen([sys.executable, "-m", "bchooks", "dev", "--no-browser", "--port", str(free_port()),
                            "--sandbox-port", str(free_port()), "--lab-port", str(lab_port)],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        state_path = tmp_path / ".bchooks" / "run" / "state.json"
        wait_until(lambda: state_path.exists() and "jupyterlab" in json.loads(state_path.read_text())["pids"],
                   deadline=60)
        state = json.loads(state_path.read_text())
        assert requests.get(state["sandbox_url"] + "/sandbox/healthz", timeout=5).ok
        receiver = state["receiver_url"].rsplit("/", 1)[0]
        assert requests.get(receiver + "/healthz", timeout=5).json()["status"] == "ok"
        wait_until(lambda: _answers(f"http://127.0.0.1:{lab_port}/api/status"), deadline=60)
        secret_file = tmp_path / ".bchooks" / "dev-secret"
        assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
        result = subprocess.run([sys.executable, "-m", "bchooks", "stop"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "stopped sandbox, receiver, jupyterlab" in result.stdout
        assert dev.wait(timeout=60) == 0
        assert not state_path.exists()
        assert not any(running(pid) for pid in state["pids"].values())
        output = dev.stdout.read()
        assert "receiver  http://127.0.0.1:" in output and secret_file.read_text().strip() not in output
        assert f"`source {sys.prefix}/bin/activate`, then `bchooks COMMAND`" in output  # (the venv outside tmp_path)
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()


def _answers(url):
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


def test_stop_with_nothing_running(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bchooks", "stop"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "nothing to stop" in result.stdout


def test_dev_without_notebooks_folder_says_so(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bchooks", "dev"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "no notebooks folder" in result.stderr and "Traceback" not in result.stderr


CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("BCHOOKS_")}  # a new terminal


def bchooks(folder, *args, env=None):
    return subprocess.run([sys.executable, "-m", "bchooks", *args], cwd=folder, capture_output=True, text=True,
                          timeout=120, env={**CLEAN_ENV, **(env or {})})


def start_kit(folder, sandbox_port, *args):
    """`bchooks dev --no-lab` in `folder`; (process, its state.json)."""
    process = subprocess.Popen([sys.executable, "-m", "bchooks", "dev", "--no-lab", "--port", str(free_port()),
                                "--sandbox-port", str(sandbox_port), *args], cwd=folder, env=CLEAN_ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state = folder / ".bchooks" / "run" / "state.json"
    wait_until(lambda: state.exists() or process.poll() is not None, deadline=60)
    assert process.poll() is None, process.stdout.read()
    return process, json.loads(state.read_text())


def stop_kit(folder, process):
    """`bchooks stop`; what the kit printed."""
    try:
        assert bchooks(folder, "stop").returncode == 0
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
        return output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def time_wait_on(port):
    """Whether a closed connection of `port` waits in TIME-WAIT (state 06 of /proc/net/tcp)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(int(row.split()[1].split(":")[1], 16) == port and row.split()[3] == "06" for row in rows)


def orders_of(url, account_id):
    headers = {"Authorization": "Bearer sandbox-token", "Accept": "application/vnd.api+json"}
    reply = requests.get(f"{url}/v1/accounts/{account_id}/orders", params={"page[limit]": 100}, headers=headers,
                         timeout=10)
    return reply.json()["data"]


def test_a_restarted_kit_serves_the_same_shops_on_the_same_port(tmp_path):
    port = free_port()
    process, state = start_kit(tmp_path, port, "--shops", "2", "--history", "20")
    try:
        result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop-2",
                         env={"BCHOOKS_SHOP_PASSWORD": "sandbox-password"})
        assert result.returncode == 0 and "connected shop 1234568" in result.stdout, result.stderr
        requests.post(state["sandbox_url"] + "/sandbox/events", json={"type": "order.created", "account_id": "1234568"},
                      headers={"Authorization": "Bearer sandbox-token"}, timeout=10)
        before = orders_of(state["sandbox_url"], "1234568")
        assert len(before) == 21 and {o["relationships"]["currency"]["data"]["id"] for o in before} == {"GBP"}
    finally:
        output = stop_kit(tmp_path, process)
    assert "1234568 sandbox-shop-2 GBP 20 orders" in output
    assert time_wait_on(port)  # (what made a restarted kit take another port)
    process, again = start_kit(tmp_path, port, "--shops", "2", "--history", "20")
    try:
        assert again["sandbox_url"] == state["sandbox_url"] == f"http://127.0.0.1:{port}"
        assert orders_of(again["sandbox_url"], "1234568") == before  # the year and today's order
        result = bchooks(tmp_path, "poll", "--once")
        assert result.returncode == 0 and "1234568" in result.stderr, result.stderr
    finally:
        output = stop_kit(tmp_path, process)
    assert "moved" not in output


def test_a_kit_whose_sandbox_port_is_taken_points_the_connected_shops_at_the_new_one(tmp_path):
    port = free_port()
    process, state = start_kit(tmp_path, port, "--history", "5")
    try:
        result = bchooks(tmp_path, "connect", "--subdomain", "sandbox-shop",
                         env={"BCHOOKS_SHOP_PASSWORD": "sandbox-password"})
        assert result.returncode == 0, result.stderr
    finally:
        stop_kit(tmp_path, process)
    with socket.socket() as squatter:  # another program took the port meanwhile
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (its old connections in TIME-WAIT)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        process, again = start_kit(tmp_path, port, "--history", "5")
        try:
            assert again["sandbox_url"] != state["sandbox_url"]
            shops = json.loads((tmp_path / ".bchooks" / "shops.json").read_text())["shops"]
            assert [s["api_url"] for s in shops] == [again["sandbox_url"]]
            result = bchooks(tmp_path, "poll", "--once")
            assert result.returncode == 0 and "1234567" in result.stderr, result.stderr
        finally:
            output = stop_kit(tmp_path, process)
    moved = [line for line in output.splitlines() if "moved" in line]
    assert len(moved) == 1 and again["sandbox_url"] in moved[0] and "1234567" in moved[0], output
