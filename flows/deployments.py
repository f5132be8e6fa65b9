"""`trackline serve`: the nightly deployment on a cron schedule (default 02:00 Europe/London), which also
pushes the night's batches to Xero when TRACKLINE_PUSH_AFTER_NIGHTLY is set (prefect.yaml says the same).
Its parameters are the settings, which name the Xero connections file but never hold a secret."""

from __future__ import annotations

from prefect.schedules import Cron

from flows.settings import Settings

DEPLOYMENT = "nightly"


def nightly_schedule(settings: Settings) -> Cron:
    return Cron(settings.schedule_cron, timezone=settings.schedule_timezone)


def nightly_deployment(settings: Settings):
    from flows.run.pipeline import nightly_flow

    return nightly_flow.to_deployment(
        name=DEPLOYMENT,
        schedules=[nightly_schedule(settings)],
        parameters={"settings": settings.model_dump(mode="json"), "lock_retries": 3, "lock_retry_delay": 300},
        description=nightly_description(settings),
    )


def nightly_description(settings: Settings) -> str:
    said = "Invoices changed since the last successful run, plus every held invoice."
    if settings.push_after_nightly:
        said += " Then the night's batches are pushed to Xero (TRACKLINE_PUSH_AFTER_NIGHTLY)."
    return said


def serve_nightly(settings: Settings) -> None:
    from prefect import serve

    serve(nightly_deployment(settings))
