"""`trackline serve`: the nightly deployment on a cron schedule (default 02:00 Europe/London)."""

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
        description="Invoices changed since the last successful run, plus every held invoice.",
    )


def serve_nightly(settings: Settings) -> None:
    from prefect import serve

    serve(nightly_deployment(settings))
