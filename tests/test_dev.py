"""The quick start's main job: `bchooks dev` brings up sandbox, receiver and JupyterLab; `bchooks stop` ends all."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from bchooks.stack import running
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
