"""Headless Chromium for tests that need a real browser: the admin console, status pages.

Debian's `/usr/bin/chromium` driven by Playwright (never a browser Playwright downloads: the
machine's network only reaches the package registries). `make test` installs the package where
it can (`scripts/ensure_chromium.sh`); where it is absent the browser tests fail in CI and skip
on a laptop, with a summary line saying so (tests/browser/chromium.py).
A failing test leaves a full-page screenshot in `artifacts/browser/<test id>.png`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.browser.chromium import CHROMIUM, require_chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
# Without the background-networking flags Chromium tries Google's hosts at start-up and the
# closed network refuses them (docs/decisions/0006-browser-tests-on-the-system-chromium.md).
# Playwright gives each launch a fresh profile.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# Per module, not per session: Playwright's sync API keeps an event loop running in this thread
# while the browser is open, and later tests that call asyncio.run() (the check engine) would
# fail with "cannot be called from a running event loop".
@pytest.fixture(scope="module")
def browser() -> Iterator:
    require_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django would then refuse ORM
    # calls made by the test itself between page actions.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            if previous is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, request) -> Iterator:
    """A fresh browser context (cookies, storage) per test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


@pytest.fixture
def shoot(request) -> Callable:
    """Screenshots of a page at the widths the console promises (1440 px and a 390 px phone
    by default), saved as artifacts under artifacts/browser/screens/<test>/<name>-<width>.png
    whether the test passes or not: the pictures are what a reviewer looks at."""
    folder = ARTIFACTS / "screens" / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[-100:]

    def take(page, name: str, widths: tuple[int, ...] = (1440, 390)) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        before = page.viewport_size
        paths = []
        for width in widths:
            page.set_viewport_size({"width": width, "height": 900})
            path = folder / f"{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            paths.append(path)
        if before:
            page.set_viewport_size(before)
        return paths

    return take


@pytest.fixture
def admin_login(live_server) -> Callable:
    """Log a user into the admin console through the real sign-in form (the account pages'),
    their email taken as verified."""

    def login(page, user, password: str = "browser-pass") -> None:
        from apps.accounts.services import email_mark_verified

        user.set_password(password)
        user.save(update_fields=["password"])
        email_mark_verified(user=user)
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("input[name=login]", user.email)
        page.fill("input[name=password]", password)
        page.click("form button[type=submit]")

    return login
