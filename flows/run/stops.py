"""What stops a run, in the one line a user sees (contract section 5).

A run that cannot proceed (a source it cannot use, a locked warehouse) or that finds a bug in itself before
publishing (an output check, a body Xero would refuse, an invoice unaccounted for, a file that would land
outside its folder) changes nothing and says so in one line. That line is all a user sees, whatever
Prefect's log level: a step run as a Prefect task returns the stop as a Failed state carrying the line
(`Stopped`) instead of raising, so Prefect logs no traceback for it, and the flow ends Failed with the same
line, which is what the Prefect UI shows and what the command prints.
"""

from __future__ import annotations

import re


class Stopped(Exception):
    """The run stopped and changed nothing; `str()` is the one line to show."""


def _flat(text: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def stop_sentence(problem: BaseException) -> str | None:
    """The one line for a problem that stops a run, or None when it is not one (a bug to report whole)."""
    from flows.outputs import PathOutsideOutput
    from flows.run.accounting import AccountingCheckFailed
    from flows.sources.files import SourceError
    from flows.warehouse.lock import WarehouseLocked
    from flows.xero.api import XeroSetupError
    from flows.xero.files import XeroBodyInvalid
    from flows.xero.import_template import CsvSettingsError
    from transforms.schemas import OutputCheckFailed

    if isinstance(problem, Stopped | SourceError | WarehouseLocked | XeroSetupError | CsvSettingsError):
        return _flat(str(problem))
    if isinstance(problem, OutputCheckFailed | XeroBodyInvalid | AccountingCheckFailed | PathOutsideOutput):
        return _flat(f"stopped, nothing changed: {problem}")
    if isinstance(problem, OSError):
        return _flat(f"stopped, nothing changed: {problem.filename or ''} {problem.strerror or problem}")
    return None
