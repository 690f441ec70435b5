"""A real headless Chromium driven over the DevTools protocol, for the HTML report tests.

Small on purpose: start Debian's `chromium` with no network features, open a page target, and
talk JSON over its websocket (websocket-client, which the kubernetes package already brings).
Events (console messages, exceptions, log entries, network requests) are recorded as they arrive
so a test can assert that the page logged no error and asked for nothing but itself.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import websocket

FLAGS = [
    "--headless",
    "--no-sandbox",  # containers and CI run as root without user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
]
START_TIMEOUT = 30.0
CALL_TIMEOUT = 60.0


class BrowserError(RuntimeError):
    pass


def chromium_binary() -> str:
    """Debian's chromium; its absence is a failure (tests/run.sh installs it), never a skip."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise BrowserError("chromium is not installed: run tests/run.sh (it apt-installs chromium) or install it")


@dataclass
class Page:
    """One tab. `call` sends a DevTools command and returns its result; events pile up in `events`."""

    socket: websocket.WebSocket
    events: list[dict[str, Any]] = field(default_factory=list)
    _next_id: int = 0

    def call(self, method: str, timeout: float = CALL_TIMEOUT, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._receive(deadline)
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
        raise BrowserError(f"{method}: no answer in {timeout:.0f}s")

    def _receive(self, deadline: float) -> dict[str, Any]:
        self.socket.settimeout(max(0.1, deadline - time.monotonic()))
        message = json.loads(self.socket.recv())
        if "method" in message:
            self.events.append(message)
        return message

    def wait_for(self, event: str, timeout: float = CALL_TIMEOUT) -> dict[str, Any]:
        seen = next((e for e in self.events if e["method"] == event), None)
        deadline = time.monotonic() + timeout
        while seen is None and time.monotonic() < deadline:
            message = self._receive(deadline)
            if message.get("method") == event:
                seen = message
        if seen is None:
            raise BrowserError(f"no {event} in {timeout:.0f}s")
        return seen

    def open(self, url: str) -> None:
        """Navigate and wait for the load event, with console, log and network events recorded."""
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.events.clear()
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.wait_for("Page.loadEventFired")
        self.evaluate("new Promise(r => requestAnimationFrame(() => r(true)))")  # let the inline script settle

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (CSP violations land there)."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                found.append(str(params.get("exceptionDetails", {}).get("text", params)))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: Path, *, width: int = 1280, full_page: bool = True, max_height: int = 16000) -> Path:
        height = 900
        if full_page:  # lay the page out at `width` first: its height depends on it
            self.call(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
            height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=min(max(height, 600), max_height),
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        self.call("Emulation.clearDeviceMetricsOverride")
        return path

    def close(self) -> None:
        self.socket.close()


class Chromium:
    """`with Chromium() as browser: page = browser.page()`; a fresh profile every time."""

    def __init__(self) -> None:
        self.binary = chromium_binary()
        self.profile = Path(tempfile.mkdtemp(prefix="mtls-readiness-chromium-"))
        self.process: subprocess.Popen | None = None
        self.log: BinaryIO | None = None
        self.port = 0
        self.pages: list[Page] = []

    def __enter__(self) -> Chromium:
        # Chromium's own chatter goes to a file: an undrained pipe would stall it once full.
        self.log = (self.profile / "chromium.log").open("wb")
        self.process = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.profile / "chromium.log").read_text(errors="replace")[-2000:]
                raise BrowserError(f"chromium exited with {self.process.returncode}: {tail}")
            if active.exists() and active.read_text().strip():
                self.port = int(active.read_text().splitlines()[0])
                return self
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise BrowserError(f"chromium did not open its DevTools port in {START_TIMEOUT:.0f}s")

    def page(self) -> Page:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=START_TIMEOUT) as answer:
            target = json.load(answer)
        # No Origin header: Chromium refuses websocket clients from other origins.
        socket = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=CALL_TIMEOUT, suppress_origin=True)
        page = Page(socket)
        self.pages.append(page)
        return page

    def __exit__(self, *_: object) -> None:
        for page in self.pages:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                page.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
