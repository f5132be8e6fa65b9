"""Open a page in headless Chromium and report what a person (and the browser console) would see.

Why the DevTools protocol rather than `chromium --screenshot` plus `--enable-logging=stderr`: the stderr log
prints every console message at INFO level whatever its level, mixed with Chromium's own noise (D-Bus,
GPU), and says nothing of a request that failed or went out to the network. Over the protocol we get each
console call with its level, uncaught exceptions, the browser's own error log (blocked or failed loads,
Content-Security-Policy violations) and every request the page makes, then take the screenshot from the
same page load. Chromium runs with the flags of the brief plus `--remote-debugging-port=0`; it listens on
the loopback only, and writes the port it chose to `<user-data-dir>/DevToolsActivePort`.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
LOCAL_SCHEMES = ("file:", "data:", "about:")


@dataclass
class PageLoad:
    """What happened when the page loaded."""

    console: list[tuple[str, str]] = field(default_factory=list)  # (level, text) of every console call
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads, CSP
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    screenshot: bytes = b""

    @property
    def remote_requests(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(LOCAL_SCHEMES)]


class _Session:
    """A flat-mode DevTools session on one page target, over the browser's websocket."""

    def __init__(self, socket, load: PageLoad) -> None:
        self.socket, self.load, self.next_id, self.session_id = socket, load, 0, None
        self.events: list[str] = []

    def send(self, method: str, params: dict | None = None, *, timeout: float = 20) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session_id and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session_id
        self.socket.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply is None:
                raise TimeoutError(f"no answer to {method} within {timeout}s")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def wait_for(self, event: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while event not in self.events:
            if self._receive(deadline) is None:
                return False
        return True

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self._receive(deadline) is not None:
            pass

    def _receive(self, deadline: float) -> dict | None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            message = json.loads(self.socket.recv(timeout=left))
        except TimeoutError:
            return None
        if "method" in message:
            self._record(message["method"], message.get("params", {}))
        return message

    def _record(self, method: str, params: dict) -> None:
        self.events.append(method)
        load = self.load
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            load.console.append((params.get("type", ""), text))
            if params.get("type") in ("error", "assert"):
                load.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            load.errors.append(
                f"exception: {details.get('exception', {}).get('description') or details.get('text')}"
            )
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                load.errors.append(
                    f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip()
                )
        elif method == "Network.requestWillBeSent":
            load.requests.append(params.get("request", {}).get("url", ""))
        elif method == "Network.loadingFailed":
            load.errors.append(f"load failed: {params.get('errorText')} ({params.get('blockedReason', '')})")


def load_page(
    chromium: str, page: Path, *, width: int = 1280, height: int = 2000, settle: float = 0.5
) -> PageLoad:
    """Load `page` (a local file), wait for its load event and a short settle, screenshot it."""
    load = PageLoad()
    profile = Path(tempfile.mkdtemp(prefix="trackline-chromium-"))
    log = open(profile.parent / f"{profile.name}.log", "wb")
    process = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
         f"--window-size={width},{height}", "about:blank"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit {process.poll()}); see {log.name}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=20) as socket:
            session = _Session(socket, load)
            target = session.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session.session_id = session.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Runtime", "Log", "Network", "Page"):
                session.send(f"{domain}.enable")
            session.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            session.send("Page.navigate", {"url": page.resolve().as_uri()})
            if not session.wait_for("Page.loadEventFired", timeout=30):
                load.errors.append("the page did not finish loading within 30 s")
            session.drain(settle)
            shot = session.send("Page.captureScreenshot", {"format": "png"})
            load.screenshot = base64.b64decode(shot["data"])
            try:
                session.send("Browser.close", timeout=5)
            except Exception:  # noqa: BLE001 - the browser may close the socket before answering
                pass
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(profile, ignore_errors=True)
        Path(log.name).unlink(missing_ok=True)
    return load


def distinct_colours(png: bytes) -> int:
    """How many colours the screenshot has: 1 means a blank page."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
    return len(colours or [])
