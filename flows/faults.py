"""Fault injection for the kill tests: `TRACKLINE_KILL_AT=<point>` SIGKILLs the process when a run (or a
push) reaches that point (`TRACKLINE_PAUSE_AT=<point>` sleeps there instead, for concurrency tests).
Unset, a checkpoint costs one dictionary lookup.

A point inside a chunk's task (`WORKER_POINTS`) is reached by whatever process resolves the chunk: a Dask
worker on a cluster. With `TRACKLINE_KILL_ONCE=<file>` only the first process to reach the point is
killed (it writes its pid to the file first), so a retried task gets through: the worker kill test."""

from __future__ import annotations

import os
import signal
import time

POINTS = ("loaded", "chunk", "resolved", "staged", "committed", "moving")
# A push: its request written to the journal and on its way; Xero's answer in hand, not yet journaled;
# every answer journaled, the warehouse not yet committed; committed, the journal not yet rewritten.
PUSH_POINTS = ("push-sending", "push-answered", "push-journaled", "push-committed")
# A retrack --apply, the same four moments for its updates (POST /Invoices/{InvoiceID}).
RETRACK_POINTS = ("retrack-sending", "retrack-answered", "retrack-journaled", "retrack-committed")
# A chunk's task: its results half written (some of its part's files in place, the rest not).
WORKER_POINTS = ("resolving",)


def checkpoint(point: str) -> None:
    if os.environ.get("TRACKLINE_KILL_AT") == point and _first_to_arrive():
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("TRACKLINE_PAUSE_AT") == point:
        time.sleep(float(os.environ.get("TRACKLINE_PAUSE_SECONDS", "5")))


def _first_to_arrive() -> bool:
    once = os.environ.get("TRACKLINE_KILL_ONCE")
    if not once:
        return True
    try:
        fd = os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as marker:
        marker.write(str(os.getpid()))
        marker.flush()
        os.fsync(marker.fileno())
    return True
