"""`make prefect`: a long-lived local Prefect server; with PREFECT_API_URL pointing at it, a CLI run
registers there, with its tasks, and starts no temporary server of its own."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, SAMPLE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make(*targets: str, **variables: str) -> subprocess.CompletedProcess:
    command = ["make", "-s", "-o", ".venv/.installed", *targets, *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=400, check=False)


@pytest.fixture
def prefect_server(tmp_path):
    """`make prefect` on a free port with a folder of the test's own; its printed PREFECT_API_URL."""
    variables = {"PREFECT_PORT": str(free_port()), "PREFECT_DIR": str(tmp_path / "prefect-server")}
    started = make("prefect", **variables)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        said = re.search(r"export PREFECT_API_URL=(\S+)", started.stdout)
        assert said, started.stdout
        assert said.group(1) == f"http://127.0.0.1:{variables['PREFECT_PORT']}/api"
        assert f"Prefect UI: http://127.0.0.1:{variables['PREFECT_PORT']}" in started.stdout
        # The UI in the browser asks this server for its API, not Prefect's default port.
        ui = httpx.get(said.group(1).removesuffix("/api") + "/ui-settings", timeout=30).json()
        assert ui["api_url"] == said.group(1)
        yield said.group(1)
    finally:
        make("prefect-stop", **variables)


def test_make_prefect_says_so_when_its_server_already_answers(prefect_server, tmp_path):
    port = prefect_server.split(":")[-1].removesuffix("/api")
    again = make("prefect", PREFECT_PORT=port, PREFECT_DIR=str(tmp_path / "prefect-server"))
    assert again.returncode == 0, again.stderr
    assert "already answering" in again.stdout


def test_a_cli_run_registers_with_the_server_and_starts_none_of_its_own(prefect_server, tmp_path):
    home = tmp_path / "cli-home"  # where a temporary server would put its database
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_API_URL=prefect_server, PREFECT_HOME=str(home), DO_NOT_TRACK="1")
    command = [str(Path(sys.executable).with_name("trackline")), "backfill", "--practice", "northgate"]
    command += [
        "--source",
        str(SAMPLE),
        "--warehouse",
        str(tmp_path / "w.duckdb"),
        "--out",
        str(tmp_path / "o"),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert not (home / "prefect.db").exists(), "the run started a temporary Prefect server"

    with httpx.Client(base_url=prefect_server, timeout=30) as api:
        runs = api.post("/flow_runs/filter", json={}).raise_for_status().json()
        assert len(runs) == 1
        run = runs[0]
        flow = api.get(f"/flows/{run['flow_id']}").raise_for_status().json()
        assert flow["name"] == "trackline-backfill"
        assert run["state_type"] == "COMPLETED"
        tasks = (
            api.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [run["id"]]}}})
            .raise_for_status()
            .json()
        )
    names = {t["name"] for t in tasks}
    assert {t["state_type"] for t in tasks} == {"COMPLETED"}
    assert any(name.startswith("resolve chunk") for name in names), names
    assert len(tasks) >= 5, names
