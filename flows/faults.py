"""Fault injection for the kill tests: `TRACKLINE_KILL_AT=<point>` SIGKILLs the process when a run (or a
push) reaches that point (`TRACKLINE_PAUSE_AT=<point>` sleeps there instead, for concurrency tests).
Unset, a checkpoint costs one dictionary lookup."""

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


def checkpoint(point: str) -> None:
    if os.environ.get("TRACKLINE_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("TRACKLINE_PAUSE_AT") == point:
        time.sleep(float(os.environ.get("TRACKLINE_PAUSE_SECONDS", "5")))
