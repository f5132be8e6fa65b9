"""Stops of the bad-input matrix through `trackline backfill` as a user runs it, at one Prefect log level
(this process's PREFECT_LOGGING_LEVEL, read once when Prefect is imported): what each run printed.

    python -m tests.reliability.stops_through_the_cli WORK REPORT.json CASE_ID...

Run by tests/reliability/test_stops_at_every_log_level.py, one process per level, against the session's
Prefect API server (PREFECT_API_URL). Each case's source is built under WORK; its command runs in this
process (the CLI app, as the console script calls it) with file descriptors 1 and 2 sent to files, so
whatever Prefect's handlers or the command write is caught whole.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path


def _captured(fn) -> tuple[int, str, str]:
    """Run fn with stdout and stderr (the descriptors) going to files; its exit code and what it wrote."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            code = fn()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        out.seek(0)
        err.seek(0)
        return code, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")


def main(work: Path, report: Path, case_ids: list[str]) -> None:
    from flows.cli import _quiet_prefect, app

    _quiet_prefect()  # as the command does before Prefect is imported: the user's level, else quiet
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from tests.reliability.matrix import STOP_CASES
    from tests.reliability.runs import stop_source

    def backfill(source: Path, where: Path):
        def run() -> int:
            try:
                return app(
                    ["backfill", "--source", str(source), "--warehouse", str(where / "w.duckdb"),
                     "--out", str(where / "out")],
                    standalone_mode=False,
                ) or 0  # fmt: skip
            except SystemExit as done:
                return int(done.code or 0)

        return run

    results = {}
    # A flow run's heartbeat thread (Prefect's crash detection) makes each run wait up to a second as it
    # ends; it prints nothing, so it is turned off here to keep 146 runs a level within seconds.
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        for case in (c for c in STOP_CASES if c.id in case_ids):
            source = stop_source(case, work / case.id / "source")
            code, out, err = _captured(backfill(source, work / case.id))
            results[case.id] = {"code": code, "stdout": out, "stderr": err, "expect": case.expect.says}
    report.write_text(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
