"""Debian's Chromium driven by Playwright, for the HTML report and accessibility tests.

Playwright is told to use the system `chromium` (it never downloads a browser here). Each page
records console errors, uncaught exceptions and every network request as they happen, so a test
can assert that the page logged no error and asked for nothing but itself. axe-core comes from
npm (tests/run.sh fetches it into .cache/npm) and is evaluated into the page on demand.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Playwright, Request, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page as PlaywrightPage

FLAGS = [
    "--headless",
    "--no-sandbox",  # containers and CI run as root without user namespaces
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
AXE_FILE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP, PHONE = 1400, 390


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
    """One tab at a fixed viewport width, with what it logged and fetched."""

    page: PlaywrightPage
    console_errors: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        self.page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "assert"):
            self.console_errors.append(message.text)

    def _request(self, request: Request) -> None:
        self.fetched.append(request.url)

    def open(self, url: str) -> None:
        self.console_errors.clear()
        self.fetched.clear()
        try:
            self.page.goto(url, wait_until="load")
        except PlaywrightError as exc:
            raise BrowserError(f"cannot open {url}: {exc}") from exc
        self.evaluate("new Promise(r => requestAnimationFrame(() => r(true)))")  # let the inline script settle

    def evaluate(self, expression: str) -> Any:
        return self.page.evaluate(expression)

    def errors(self) -> list[str]:
        return list(self.console_errors)

    def requests(self) -> list[str]:
        return list(self.fetched)

    @property
    def width(self) -> int:
        size = self.page.viewport_size
        return size["width"] if size else 0

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def pdf(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.pdf(path=str(path), print_background=True)
        return path

    def axe(self, tags: list[str] = WCAG_TAGS) -> list[dict[str, Any]]:
        """axe-core's violations at these tags: each with its rule id, impact and offending nodes."""
        if not AXE_FILE.exists():
            raise BrowserError(f"{AXE_FILE.name} is missing: run tests/run.sh (it npm-installs axe-core@4)")
        if not self.evaluate("typeof window.axe !== 'undefined'"):
            # Evaluated through the DevTools protocol, which the page's Content-Security-Policy does not govern.
            self.evaluate(AXE_FILE.read_text(encoding="utf-8") + "\n;true")
        result = self.page.evaluate(
            "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})", tags
        )
        return [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "nodes": [n["target"] for n in v["nodes"]][:5],
                "summary": [n.get("failureSummary", "") for n in v["nodes"]][:2],
            }
            for v in result["violations"]
        ]


class Chromium:
    """`with Chromium() as browser: page = browser.page(width=390)`; a fresh profile every time."""

    def __init__(self) -> None:
        self.binary = chromium_binary()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None

    def __enter__(self) -> Chromium:
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(executable_path=self.binary, args=FLAGS)
        except PlaywrightError as exc:
            self._playwright.stop()
            raise BrowserError(f"chromium did not start: {exc}") from exc
        return self

    def page(self, width: int = DESKTOP, height: int = 900) -> Page:
        assert self._browser is not None, "use Chromium() as a context manager"
        context = self._browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
        return Page(context.new_page())

    def __exit__(self, *_: object) -> None:
        if self._browser is not None:
            self._browser.close()
        if self._playwright is not None:
            self._playwright.stop()
