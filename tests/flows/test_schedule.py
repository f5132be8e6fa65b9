"""`trackline serve` and prefect.yaml declare the same nightly deployment."""

from __future__ import annotations

import pytest
import yaml

from flows.deployments import nightly_deployment
from flows.settings import Settings
from tests.conftest import REPO


def test_nightly_runs_at_two_in_the_morning_london_time_by_default():
    deployment = nightly_deployment(Settings())
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "0 2 * * *"
    assert schedule.schedule.timezone == "Europe/London"
    assert deployment.parameters["lock_retries"] > 0


def test_schedule_is_configurable(monkeypatch):
    monkeypatch.setenv("TRACKLINE_SCHEDULE_CRON", "30 1 * * 1-5")
    monkeypatch.setenv("TRACKLINE_SCHEDULE_TIMEZONE", "Australia/Sydney")
    (schedule,) = nightly_deployment(Settings()).schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("30 1 * * 1-5", "Australia/Sydney")


def test_prefect_yaml_declares_the_same_deployment():
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (nightly,) = declared["deployments"]
    (schedule,) = nightly["schedules"]
    served = nightly_deployment(Settings())
    assert nightly["entrypoint"] == "flows/run/pipeline.py:nightly_flow"
    assert nightly["name"] == served.name
    assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "Europe/London")
    assert nightly["parameters"]["lock_retries"] == served.parameters["lock_retries"]


def test_locked_warehouse_is_retried_but_bad_data_is_not(tmp_path, monkeypatch):
    from flows.run import pipeline
    from flows.sources.files import SourceError
    from flows.warehouse.lock import WarehouseLocked

    calls = []

    def locked_then_fine(settings, scope, emit):
        calls.append(scope.flow)
        if len(calls) == 1:
            raise WarehouseLocked("busy")
        return pipeline.steps.RunSummary(run_id="r", flow=scope.flow)

    monkeypatch.setattr(pipeline, "run_pipeline", locked_then_fine)
    settings = Settings(warehouse=tmp_path / "w.duckdb")
    assert pipeline._with_lock_retries(settings, pipeline.steps.Scope("nightly"), True, 2, 0)["run_id"] == "r"
    assert len(calls) == 2

    def bad_data(settings, scope, emit):
        calls.append("bad")
        raise SourceError("clients.csv: file is missing")

    monkeypatch.setattr(pipeline, "run_pipeline", bad_data)
    calls.clear()
    with pytest.raises(SourceError):
        pipeline._with_lock_retries(settings, pipeline.steps.Scope("nightly"), True, 3, 0)
    assert calls == ["bad"], "bad data is not retried"


def test_the_nightly_pushes_to_xero_when_told_and_both_declarations_say_so(monkeypatch):
    monkeypatch.setenv("TRACKLINE_PUSH_AFTER_NIGHTLY", "true")
    served = nightly_deployment(Settings())
    assert served.parameters["settings"]["push_after_nightly"] is True
    assert "pushed to Xero" in served.description
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert "TRACKLINE_PUSH_AFTER_NIGHTLY" in declared["deployments"][0]["description"]
    monkeypatch.delenv("TRACKLINE_PUSH_AFTER_NIGHTLY")
    assert "pushed" not in nightly_deployment(Settings()).description
