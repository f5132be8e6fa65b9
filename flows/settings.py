"""Settings, built at the entry point (never at import): flags override TRACKLINE_* variables and .env."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRACKLINE_", env_file=".env", extra="ignore")

    # A folder of files, or a `postgresql://user@host:port/db` URL (see the PostgreSQL section below).
    source: Path | str = Path("data/sample")
    warehouse: Path = Path("data/warehouse.duckdb")
    out: Path = Path("data/out")
    # R5: `hold` holds an invoice whose two slots share a category; `drop_secondary` sends slot 1 only.
    same_category_policy: Literal["hold", "drop_secondary"] = "hold"
    # Xero: about 50 invoices and at most 3.5 MB per POST /Invoices; the CSV template takes 500.
    batch_max_invoices: int = 50
    batch_max_bytes: int = 3_500_000
    # Xero's CSV import template (flows.xero.import_template): the date format of a practice's CSV files
    # and the region whose standard tax rate names it uses, unless its entry in the CSV settings file
    # (keyed by practice_id: date_format, region, tax_rates) says otherwise.
    csv_date_format: Literal["DD/MM/YYYY", "MM/DD/YYYY"] = "DD/MM/YYYY"
    csv_tax_region: Literal["UK", "AU", "NZ"] = "UK"
    xero_csv_settings: Path = Path("data/xero_csv.json")
    # A backfill resolves whole practice x month partitions in chunks of about this many lines.
    chunk_lines: int = 1_250_000
    # DuckDB's memory for a run's warehouse queries and for staging the source (it spills beyond it).
    duckdb_memory_limit: str = "1GB"
    # The nightly schedule that `trackline serve` registers.
    schedule_cron: str = "0 2 * * *"
    schedule_timezone: str = "Europe/London"
    # The nightly deployment also pushes the night's batches to Xero (`trackline push`).
    push_after_nightly: bool = False

    # Sending to Xero (contract section 6). The connections file holds the secrets; it is only ever named
    # here, so no secret is in a setting, a Prefect parameter or a log.
    xero_connections: Path = Path("data/xero_connections.json")
    xero_api_url: str = "https://api.xero.com/api.xro/2.0"
    xero_token_url: str = "https://identity.xero.com/connect/token"
    # Xero's limits per organisation and for the app, and how patiently to retry. A test double whose
    # clock runs fast shortens xero_minute_seconds and the retry waits.
    xero_requests_per_minute: int = 60
    xero_in_flight: int = 5
    xero_app_requests_per_minute: int = 10_000
    xero_minute_seconds: float = 60.0
    xero_attempts: int = 6
    xero_retry_wait_seconds: float = 1.0
    xero_retry_wait_max_seconds: float = 30.0
    xero_timeout_seconds: float = 60.0

    # Verify (`trackline verify`, and after the nightly push): invoices read back per organisation and run
    # (those never checked since their tracking was set first, newest first; the rest wait for the next
    # run), and the calls of Xero's day (5,000 per organisation) verify leaves to pushes and retracks.
    xero_verify_max_invoices: int = 2_000
    xero_verify_day_reserve: int = 1_000

    # PostgreSQL source (contract section 2): its tables' schema; the password, taken out of the URL at
    # the entry point so that `source` (what runs.source, messages and Prefect parameters show) never
    # holds it (else libpq's PGPASSWORD or ~/.pgpass); and the nightly's safety overlap: it reads invoices
    # updated after the last watermark less this many minutes, as commit order is not updated_at order.
    source_schema: str = "public"
    source_password: SecretStr | None = Field(default=None, exclude=True, repr=False)
    source_overlap_minutes: int = 10

    @field_validator("source", mode="before")
    @classmethod
    def _folder_or_url(cls, value: object) -> object:
        text = str(value)
        return text if text.startswith(("postgresql://", "postgres://")) else Path(text)

    @model_validator(mode="after")
    def _password_out_of_url(self) -> Settings:
        if isinstance(self.source, str):
            from flows.sources.postgres import split_password

            shown, password = split_password(self.source)
            self.source = shown
            if password is not None and self.source_password is None:
                self.source_password = SecretStr(password)
        return self

    # A backfill's partitions on a Dask cluster (contract section 5, `backfill --dask`; flows.run.cluster):
    # an existing scheduler's address, and how long to wait for it (and for a first worker) before stopping.
    dask_address: str | None = None
    dask_connect_timeout_seconds: float = 10.0

    @property
    def lock_path(self) -> Path:
        return self.warehouse.with_name(self.warehouse.name + ".lock")
