"""Fixtures for the browser tests: Debian's headless Chromium through Playwright, and JupyterLab.

The tests skip with a reason when ``chromium`` or the ``playwright`` client is missing, unless
``DELTAZ_REQUIRE_BROWSER=1`` (CI sets it after installing chromium): then a missing piece fails them,
so CI cannot pass by skipping. Playwright's own browser downloads are never used: the tests launch
the system ``chromium`` through ``executable_path``.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest

from .lab_server import LabServer, _alive, descendants

# Headless, no sandbox (containers, root), no GPU, and no background traffic: the network is closed,
# and without these flags Chromium keeps trying to reach Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
]


def _missing(reason: str):
    """Skip, or fail when the environment promises a browser (DELTAZ_REQUIRE_BROWSER=1)."""
    if os.environ.get("DELTAZ_REQUIRE_BROWSER") == "1":
        pytest.fail(f"DELTAZ_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path of the system Chromium (Debian: ``apt-get install chromium``)."""
    path = os.environ.get("DELTAZ_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _missing("chromium not found on PATH (Debian/Ubuntu: apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def sync_playwright_api():
    """The ``playwright.sync_api`` module (pip install playwright; no browser download needed)."""
    try:
        from playwright import sync_api
    except ImportError:
        _missing('the playwright Python client is not installed (pip install -e ".[browser]")')
    return sync_api


def _kill_leftovers(pids: set[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for pid in sorted(pids):
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def browser(chromium_executable, sync_playwright_api):
    """A headless Chromium (fresh profile in a temporary folder that Playwright deletes).

    Teardown closes the browser and the Playwright driver, then kills any process they started that
    is still alive, so a failing test leaves nothing behind.
    """
    before = set(descendants(os.getpid()))
    playwright = sync_playwright_api.sync_playwright().start()
    ours: set[int] = set()
    try:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        ours = set(descendants(os.getpid())) - before
        yield chromium
    finally:
        for pid in list(ours):
            ours.update(descendants(pid))
        try:
            if "chromium" in locals():
                chromium.close()
        finally:
            playwright.stop()
            _kill_leftovers(ours, timeout_s=10.0)


@pytest.fixture
def start_lab():
    """Factory: ``start_lab(root_dir, env)`` starts a LabServer; every one is stopped at teardown."""
    servers: list[LabServer] = []

    def start(root_dir, env=None) -> LabServer:
        server = LabServer(root_dir, env=env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.cleanup()
        assert not server.leftover_pids(), f"processes left behind by JupyterLab: {server.leftover_pids()}"
