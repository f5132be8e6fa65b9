"""Fault injection for the kill tests: `TRACKLINE_KILL_AT=<point>` SIGKILLs the process when a run
reaches that point (`TRACKLINE_PAUSE_AT=<point>` sleeps there instead, for concurrency tests).
Unset, a checkpoint costs one dictionary lookup."""

from __future__ import annotations

import os
import signal
import time

POINTS = ("loaded", "chunk", "resolved", "staged", "committed", "moving")


def checkpoint(point: str) -> None:
    if os.environ.get("TRACKLINE_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("TRACKLINE_PAUSE_AT") == point:
        time.sleep(float(os.environ.get("TRACKLINE_PAUSE_SECONDS", "5")))
