"""Contract section 5: a run that cannot proceed says one line, and that line is all a user sees, whatever
Prefect's log level; the flow run ends Failed in Prefect with that same line.

Every kind of stop of the bad-input matrix (a missing file, an empty one, one that is not UTF-8, a ragged
row, a missing or repeated column, a broken Parquet file, ...: every way the source can be unusable) runs
through the real `trackline backfill` and a real Prefect flow run at DEBUG, INFO, WARNING and the default
level, each level taking the kind from another table. One process per level.

Why not all 146 stops at all four levels: a flow run costs Prefect about 0.4 s of CPU, so the 584 runs
would add minutes to `make test`, and they would go down no path these do not: every stop is raised by the
source step, and `tests/reliability/test_matrix.py` checks every one of the 146 is one line naming its file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import REPO
from tests.reliability.matrix import STOP_CASES

LEVELS = ("DEBUG", "INFO", "WARNING", None)


def _kind(case_id: str) -> str:
    """practices.missing-file -> missing-file; clients.name:missing-column -> missing-column"""
    return case_id.split(".", 1)[1].split(":")[-1]


def _cases_at(level: str | None) -> list[str]:
    """The stops run at a level: one of every kind, from the table whose turn it is."""
    turn = LEVELS.index(level)
    kinds: dict[str, list[str]] = {}
    for case in STOP_CASES:
        kinds.setdefault(_kind(case.id), []).append(case.id)
    return [cases[turn * len(cases) // len(LEVELS)] for cases in kinds.values()]


@pytest.fixture(scope="module")
def printed(prefect_api, tmp_path_factory) -> dict[str | None, dict[str, dict]]:
    """What every stop case printed, per level."""
    work = tmp_path_factory.mktemp("stops")

    def at(level: str | None) -> dict[str, dict]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLINE_", "PREFECT_LOGGING"))}
        env.update(PREFECT_API_URL=prefect_api, DO_NOT_TRACK="1")
        if level:
            env["PREFECT_LOGGING_LEVEL"] = level
        name = level or "default"
        report = work / f"{name}.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.reliability.stops_through_the_cli",
                str(work / name),
                str(report),
                *_cases_at(level),
            ],  # fmt: skip
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(report.read_text())

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(LEVELS, pool.map(at, LEVELS), strict=True))


def _trackline_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("trackline: ")]


@pytest.mark.parametrize("level", LEVELS, ids=lambda level: level or "default")
def test_every_stop_says_its_one_line_and_no_traceback_at_every_log_level(printed, level):
    wrong = []
    for case in (c for c in STOP_CASES if c.id in _cases_at(level)):
        run = printed[level][case.id]
        said = _trackline_lines(run["stderr"])
        problems = []
        if run["code"] != 1:
            problems.append(f"exit {run['code']}")
        if len(said) != 1 or case.expect.says not in said[0]:
            problems.append(f"said {said!r}")
        if "Traceback" in run["stderr"] + run["stdout"] or "NoneType: None" in run["stderr"]:
            problems.append("printed a traceback")
        if level in ("WARNING", None) and run["stderr"].strip() != (said[0] if said else ""):
            problems.append(f"printed more than its line: {run['stderr'][-400:]!r}")
        if level in ("DEBUG", "INFO") and " | ERROR " in run["stderr"]:
            problems.append("Prefect logged an error for a stop")
        if problems:
            wrong.append(f"{case.id}: {'; '.join(problems)}")
    assert wrong == []


def test_a_stopped_flow_run_ends_failed_in_prefect_with_the_same_line(prefect_api, tmp_path):
    from prefect.client.orchestration import get_client

    from flows.run.pipeline import backfill_flow
    from flows.settings import Settings

    state = backfill_flow(
        Settings(source=tmp_path / "missing", warehouse=tmp_path / "w.duckdb", out=tmp_path / "out"),
        return_state=True,
    )
    assert state.is_failed()
    assert state.message == f"{tmp_path / 'missing'}: source folder does not exist"
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        tasks = client.read_task_runs()
    assert run.state.type.value == "FAILED" and run.state.message == state.message
    stopped = [t for t in tasks if t.flow_run_id == run.id and t.state.name == "Stopped"]
    assert [t.state.message for t in stopped] == [state.message]


def test_every_kind_of_stop_goes_through_the_command_at_every_level():
    for level in LEVELS:
        assert sorted(_kind(c) for c in _cases_at(level)) == sorted({_kind(c.id) for c in STOP_CASES})
    tables = {c.split(".")[0] for level in LEVELS for c in _cases_at(level)}
    assert len(tables) >= 4
