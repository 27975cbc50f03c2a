"""The console in Debian's Chromium (driven by Playwright's Python package) against the banking tests' platform.

One browser for the module; each test opens its own context (cookies) and page. The browser is
Debian's `/usr/bin/chromium`, installed by `make test` when absent (see the Makefile); Playwright
never downloads one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.integration.banking.conftest import bank_stack, fresh_database  # noqa: F401 - fixtures used here

CHROMIUM = "/usr/bin/chromium"
# Screenshots of each page: into the README's docs/console/ when asked
# (`CONSOLE_SCREENSHOTS=docs/console make test`), else a temporary folder, so a test run leaves the
# checkout as it was.
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS") or Path(tempfile.gettempdir()) / "collect-console-screenshots")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium when run as root "
            "(apt-get install chromium); install it, then run the tests again",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()
