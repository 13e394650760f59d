"""Browser tests: Playwright driving the system's Chromium (Debian ``chromium``) against a real
server on loopback. Set ``DATAPERF_SCREENSHOTS=DIR`` to save screenshots of the main pages
(``make screenshots`` does, for the docs)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import httpx
import pytest

from dataperf.registry import get_challenge
from platform_harness import LiveServer, database_url, fast_settings, live_server

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: CI must run the browser tests")
        pytest.skip("no Chromium on this machine (apt install chromium)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for a module's browser tests (SQLite; the API tests cover PostgreSQL), with
    the random baseline scored on every challenge that has one (pages then show settled
    leaderboards, however busy the machine)."""
    root = tmp_path_factory.mktemp("site")
    with database_url("sqlite", root) as url, \
            live_server(fast_settings(root / "home", url, baselines=("random",))) as live:
        with live.api() as api:
            for name in [c["name"] for c in api.get("/challenges").json()]:
                if "random" in get_challenge(name).algorithms():
                    _wait_for_a_row(api, name)
        yield live


def _wait_for_a_row(api: httpx.Client, challenge: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not api.get(f"/challenges/{challenge}/leaderboard").json()["rows"]:
        assert time.monotonic() < deadline, f"the {challenge} baseline was not scored"
        time.sleep(0.2)


@pytest.fixture
def page(browser: object, site: LiveServer) -> Iterator[object]:
    context = browser.new_context(base_url=site.url)  # type: ignore[attr-defined]
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    context.close()
