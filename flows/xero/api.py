"""Talking to Xero's Accounting API (contract section 6): connections, tokens, requests within Xero's
limits, retries, and a record of every request.

- **Connections** are a JSON file readable by its owner only: per practice_id a tenant, an app's client id
  and secret, and a grant (`client_credentials` for a custom connection, `refresh_token` for a standard
  app). A refresh token is single-use: every refresh returns a new one, written back into the file
  atomically before the access token it came with is used; a refresh that fails leaves the file as it was.
- **Limits**, per organisation: at most 5 requests in flight and 60 a minute (an asyncio semaphore and
  aiolimiter's leaky bucket), and Xero's app-wide 10,000 a minute across organisations.
- **Retries** (tenacity), always with the same Idempotency-Key: a 429 for the minute (or for requests in
  flight) waits Retry-After when Xero gives it, else backs off; a 5xx, a timeout or a broken connection
  backs off exponentially. A 429 for the day stops the organisation for the run (DayLimitReached). An
  expired access token is refreshed once.
- Nothing here prints or logs a secret or a token: a request is recorded by method, path, status and
  Xero's limit headers only.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

GRANTS = ("client_credentials", "refresh_token")
# An access token is refreshed this long before Xero says it expires.
TOKEN_MARGIN_SECONDS = 60


class XeroSetupError(Exception):
    """The connections file cannot be used (missing, readable by others, not valid): one line, and the
    push stops before sending anything."""


class XeroAuthError(Exception):
    """Xero's identity server refused a connection's credentials or refresh token: that practice is
    skipped for this push (its refresh token, if any, is left as it was)."""


class DayLimitReached(Exception):
    """Xero's daily limit for the organisation is spent: nothing more is sent for it in this push."""


class XeroUnavailable(Exception):
    """A request kept failing (5xx, timeouts, broken connections) through every retry."""


class _Retryable(Exception):
    """A failed attempt worth repeating with the same key, after `wait` seconds when Xero said so."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


# Connections -------------------------------------------------------------------------------------------


@dataclass
class Connection:
    practice_id: str
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    grant: str
    refresh_token: str | None = field(default=None, repr=False)


def load_connections(path: Path) -> dict[str, Connection]:
    """The connections file, or XeroSetupError saying in one line what is wrong with it."""
    if not path.exists():
        raise XeroSetupError(
            f"{path}: no Xero connections file (set --connections or TRACKLINE_XERO_CONNECTIONS)"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise XeroSetupError(
            f"{path}: readable by others (mode {mode:o}); it holds secrets: `chmod 600 {path}` and try again"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise XeroSetupError(f"{path}: not a JSON object of connections ({type(problem).__name__})") from None
    if not isinstance(document, dict):
        raise XeroSetupError(f"{path}: not a JSON object keyed by practice_id")
    connections = {}
    for practice_id, entry in document.items():
        missing = [k for k in ("tenant_id", "client_id", "client_secret", "grant") if not _text(entry, k)]
        if missing:
            raise XeroSetupError(f"{path}: practice {practice_id!r} has no {', '.join(missing)}")
        if entry["grant"] not in GRANTS:
            raise XeroSetupError(
                f"{path}: practice {practice_id!r}: grant must be one of {', '.join(GRANTS)}"
            )
        if entry["grant"] == "refresh_token" and not _text(entry, "refresh_token"):
            raise XeroSetupError(
                f"{path}: practice {practice_id!r}: grant refresh_token needs a refresh_token"
            )
        connections[practice_id] = Connection(
            practice_id,
            entry["tenant_id"],
            entry["client_id"],
            entry["client_secret"],
            entry["grant"],
            entry.get("refresh_token"),
        )
    return connections


def _text(entry: object, key: str) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get(key), str) and entry[key] != ""


def _write_refresh_token(path: Path, practice_id: str, token: str) -> None:
    """Replace one practice's refresh token in the connections file: a new file of the owner's only, made
    whole and flushed, renamed over the old one."""
    document = json.loads(path.read_text(encoding="utf-8"))
    document[practice_id]["refresh_token"] = token
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=2)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# Requests ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Xero's limits and how patiently to retry; a test double's fast clock shortens `minute_seconds`."""

    per_minute: int = 60
    in_flight: int = 5
    app_per_minute: int = 10_000
    minute_seconds: float = 60.0
    attempts: int = 6
    retry_wait_seconds: float = 1.0
    retry_wait_max_seconds: float = 30.0
    timeout_seconds: float = 60.0


@dataclass
class Attempt:
    """One request as xero_requests records it (never a token)."""

    practice_id: str
    batch_id: str | None
    purpose: str
    attempt: int
    method: str
    path: str
    status: int | None
    outcome: str
    idempotency_key: str | None
    min_limit_remaining: int | None
    day_limit_remaining: int | None
    app_min_limit_remaining: int | None
    retry_after: float | None
    rate_limit_problem: str | None
    seconds: float
    requested_at: datetime


def _header_number(response: httpx.Response | None, name: str, kind=int):
    if response is None or name not in response.headers:
        return None
    try:
        return kind(response.headers[name])
    except ValueError:
        return None


class Xero:
    """The API of every organisation a push talks to: one HTTP client, the app-wide limit, and per
    organisation its own limits and token."""

    def __init__(
        self,
        api_url: str,
        token_url: str,
        connections_path: Path,
        connections: dict[str, Connection],
        limits: Limits,
        record: Callable[[Attempt], None],
    ) -> None:
        self.api_url, self.token_url = api_url.rstrip("/"), token_url
        self.connections_path, self.connections = connections_path, connections
        self.limits, self.record = limits, record
        self.client = httpx.AsyncClient(
            timeout=limits.timeout_seconds,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=50),
        )
        self.app_limiter = AsyncLimiter(limits.app_per_minute, limits.minute_seconds)
        self.organisations: dict[str, Organisation] = {}
        self.file_lock = asyncio.Lock()

    def organisation(self, practice_id: str) -> Organisation:
        if practice_id not in self.organisations:
            self.organisations[practice_id] = Organisation(self, self.connections[practice_id])
        return self.organisations[practice_id]

    async def close(self) -> None:
        await self.client.aclose()


class Organisation:
    """One practice's Xero organisation: its token, limits and requests."""

    def __init__(self, xero: Xero, connection: Connection) -> None:
        self.xero, self.connection = xero, connection
        self.limiter = AsyncLimiter(xero.limits.per_minute, xero.limits.minute_seconds)
        self.in_flight = asyncio.Semaphore(xero.limits.in_flight)
        self.token: str | None = None
        self.token_expires = 0.0
        self.token_lock = asyncio.Lock()

    # Tokens

    async def access_token(self, *, stale: str | None = None) -> str:
        """The organisation's access token, renewed when it is due or when it is `stale` (Xero said it
        expired): several requests refused with the same token renew it once."""
        async with self.token_lock:
            if self.token is None or self.token == stale or time.monotonic() >= self.token_expires:
                await self._renew()
            return self.token

    async def _renew(self) -> None:
        connection = self.connection
        form = {"grant_type": connection.grant}
        if connection.grant == "refresh_token":
            form["refresh_token"] = connection.refresh_token
        started = time.perf_counter()
        at = datetime.now(UTC)
        try:
            response = await self.xero.client.post(
                self.xero.token_url,
                data=form,
                auth=(connection.client_id, connection.client_secret),
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as problem:
            self._record("token", None, 1, "POST", "token", None, "given up", None, at, started)
            raise XeroAuthError(
                f"the token endpoint could not be reached ({type(problem).__name__})"
            ) from None
        ok = response.status_code == 200
        self._record(
            "token", None, 1, "POST", "token", response, "ok" if ok else "given up", None, at, started
        )
        if not ok:
            error = _json(response).get("error", f"status {response.status_code}")
            raise XeroAuthError(f"Xero's identity server refused the connection: {error}")
        answer = _json(response)
        if connection.grant == "refresh_token":
            # The new refresh token is kept before the access token is used: the old one is spent.
            async with self.xero.file_lock:
                _write_refresh_token(
                    self.xero.connections_path, connection.practice_id, answer["refresh_token"]
                )
            connection.refresh_token = answer["refresh_token"]
        self.token = answer["access_token"]
        life = float(answer.get("expires_in", 1800))
        self.token_expires = time.monotonic() + max(life - TOKEN_MARGIN_SECONDS, life / 2)

    # Requests

    async def call(
        self,
        method: str,
        path: str,
        *,
        purpose: str,
        params: dict | None = None,
        body: bytes | None = None,
        key: str | None = None,
        batch_id: str | None = None,
    ) -> httpx.Response:
        """One request to the organisation's API within its limits, retried as the module says; the
        answer of the last attempt (any status Xero answered without a fault: 200, 400, 404, ...)."""
        limits = self.xero.limits
        attempt = 0

        def wait(state: RetryCallState) -> float:
            problem = state.outcome.exception() if state.outcome else None
            if isinstance(problem, _Retryable) and problem.wait is not None:
                return problem.wait
            return backoff(state)

        backoff = wait_exponential_jitter(
            initial=limits.retry_wait_seconds, max=limits.retry_wait_max_seconds
        )
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(limits.attempts),
            wait=wait,
            reraise=True,
        )
        try:
            async for retry in retrying:
                with retry:
                    attempt += 1
                    return await self._attempt(method, path, purpose, params, body, key, batch_id, attempt)
        except _Retryable as problem:
            raise XeroUnavailable(f"{method} {path}: {problem} after {attempt} attempts") from None
        raise AssertionError("unreachable")

    async def _attempt(self, method, path, purpose, params, body, key, batch_id, attempt) -> httpx.Response:
        headers = {"Accept": "application/json", "xero-tenant-id": self.connection.tenant_id}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        shown = path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        stale = None
        for renewal in (False, True):
            await self.xero.app_limiter.acquire()
            await self.limiter.acquire()
            async with self.in_flight:
                # The token is taken when the request can go, not before it queues behind the limits: a
                # practice with hours of batches would otherwise send tokens that expired while it waited.
                token = await self.access_token(stale=stale)
                started, at = time.perf_counter(), datetime.now(UTC)
                try:
                    response = await self.xero.client.request(
                        method,
                        self.xero.api_url + path,
                        params=params,
                        content=body,
                        headers={**headers, "Authorization": f"Bearer {token}"},
                    )
                except (httpx.TransportError, httpx.TimeoutException) as problem:
                    self._record(purpose, batch_id, attempt, method, shown, None, "retried", key, at, started)
                    raise _Retryable(type(problem).__name__) from None
            status = response.status_code
            if status == 401 and not renewal and "TokenExpired" in response.text:
                self._record(purpose, batch_id, attempt, method, shown, response, "retried", key, at, started)
                stale = token
                continue  # the token expired early: once more with a new one
            if status == 429:
                problem = response.headers.get("X-Rate-Limit-Problem", "")
                self._record(purpose, batch_id, attempt, method, shown, response, "retried", key, at, started)
                if problem.lower() == "day":
                    raise DayLimitReached(
                        f"Xero's daily limit for the organisation of {self.connection.practice_id!r} is spent"
                    )
                raise _Retryable(f"429 {problem}", _header_number(response, "Retry-After", float))
            if status >= 500:
                self._record(purpose, batch_id, attempt, method, shown, response, "retried", key, at, started)
                raise _Retryable(f"status {status}")
            self._record(purpose, batch_id, attempt, method, shown, response, "ok", key, at, started)
            return response
        raise XeroAuthError("Xero refused a freshly issued access token")

    def _record(self, purpose, batch_id, attempt, method, path, response, outcome, key, at, started) -> None:
        self.xero.record(
            Attempt(
                practice_id=self.connection.practice_id,
                batch_id=batch_id,
                purpose=purpose,
                attempt=attempt,
                method=method,
                path=path,
                status=None if response is None else response.status_code,
                outcome=outcome,
                idempotency_key=key,
                min_limit_remaining=_header_number(response, "X-MinLimit-Remaining"),
                day_limit_remaining=_header_number(response, "X-DayLimit-Remaining"),
                app_min_limit_remaining=_header_number(response, "X-AppMinLimit-Remaining"),
                retry_after=_header_number(response, "Retry-After", float),
                rate_limit_problem=None if response is None else response.headers.get("X-Rate-Limit-Problem"),
                seconds=time.perf_counter() - started,
                requested_at=at,
            )
        )


def _json(response: httpx.Response) -> dict:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
