"""Debian's Chromium, headless, driven by Playwright: no browser is ever downloaded.

``make test`` installs the ``chromium`` package (as it installs Prometheus); when the binary is
missing the tests fail with that hint instead of skipping, so the page is never left unproven.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("FAUSTAPP_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class PageLog:
    """What the page said: console messages and uncaught errors."""

    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def problems(self, allowed: tuple[str, ...] = ()) -> list[str]:
        """Console errors and uncaught exceptions, but those containing an ``allowed`` text."""
        found = [text for kind, text in self.console if kind == "error"] + self.errors
        return [text for text in found if not any(part in text for part in allowed)]


@contextmanager
def chromium_page(viewport: tuple[int, int] = (1280, 1000)) -> Iterator[tuple[object, PageLog]]:
    """A fresh page of a headless Chromium that is closed on exit, and its log."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium package "
            "(or: apt-get install chromium)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    log = PageLog()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.on("console", lambda m: log.console.append((m.type, m.text)))
            page.on("pageerror", lambda exc: log.errors.append(str(exc)))
            yield page, log
        finally:
            browser.close()
