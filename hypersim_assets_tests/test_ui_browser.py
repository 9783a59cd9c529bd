"""The Dagster UI as a person uses it: a real ``dagster dev`` on loopback, driven by
headless Chromium (Python ``playwright`` with Debian's ``/usr/bin/chromium``).

Materialises ``hypersim_metadata`` from its asset page (which registers the
scene partitions), then one scene partition of ``raw_scene`` + ``converted_scene``
from the scene job's page (Materialize all -> partition dialog -> pick the scene
-> Launch 1 run), and checks the asset's Partitions tab shows it materialised.
GraphQL confirms each step. The browser may only reach 127.0.0.1.

Skips when playwright or Chromium is missing, except under ``CI`` (which installs
both), where it fails instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hypersim_assets_tests import dagster_dev as dd
from hypersim_assets_tests.conftest import skip_unless_ci

CHROMIUM = Path("/usr/bin/chromium")
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
UI_TIMEOUT_MS = 60_000  # one UI element to appear or become enabled (2 shared cores)
RUN_TIMEOUT_S = 150.0  # one run from launch to success
LAUNCHED = re.compile(r"Launched run ([0-9a-f]{8})")

pytestmark = pytest.mark.e2e  # a real dagster dev driven by Chromium


def _unavailable(reason: str) -> None:
    """Skip locally; under CI (which installs playwright and Chromium) fail instead."""
    skip_unless_ci(f"{reason}; CI must install it (a skip would hide the UI test)")


@pytest.fixture(scope="module")
def playwright_api():
    """``playwright.sync_api`` once Chromium and playwright are known to be present."""
    try:
        from playwright import sync_api
    except ImportError:
        _unavailable("the Python package playwright is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api.expect.set_options(timeout=UI_TIMEOUT_MS)  # expect() waits 5 s by default
    return sync_api


@pytest.fixture(scope="module")
def dev(playwright_api, tmp_path_factory):
    with dd.running_dagster_dev(tmp_path_factory.mktemp("ui")) as running:
        # The "join the community" dialog would cover the page (and its iframe is off-machine).
        dd.graphql(running.url, "mutation { setNuxSeen }")
        yield running


@pytest.fixture(scope="module")
def browser_page(playwright_api, dev):
    """A Chromium page that may only reach loopback; other requests are aborted and recorded."""
    off_machine: list[str] = []

    def loopback_only(route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            off_machine.append(route.request.url)
            route.abort()

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=UI_TIMEOUT_MS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(UI_TIMEOUT_MS)
            context.route("**/*", loopback_only)
            page = context.new_page()
            yield page
        finally:
            browser.close()
    if off_machine:
        print(f"blocked off-machine requests from the UI: {off_machine[:5]}")


def _launched_run_id(dev: dd.DagsterDev, page, expect) -> str:
    """Wait for the UI's "Launched run <id8>" toast and return the full run id it names."""
    toast = page.get_by_text(LAUNCHED)
    expect(toast.first).to_be_visible()
    short = LAUNCHED.search(toast.first.inner_text()).group(1)
    matches = [r["runId"] for r in dd.runs(dev) if r["runId"].startswith(short)]
    assert len(matches) == 1, f"toast named run {short}; runs: {[r['runId'] for r in dd.runs(dev)]}"
    return matches[0]


def _click_materialize(page, expect, name: str = "Materialize"):
    """Click the page's primary Materialize button once it is enabled (it loads disabled)."""
    button = page.get_by_role("button", name=name).first
    expect(button).to_be_enabled()
    button.click()


def test_materialise_metadata_and_one_scene_partition_from_the_ui(dev, browser_page, playwright_api, tmp_path):
    page, expect = browser_page, playwright_api.expect
    scenes = sorted(dev.mirror.scenes)
    scene = scenes[0]

    # 1. hypersim_metadata from its asset page: one click, no config needed.
    page.goto(f"{dev.url}/assets/hypersim_metadata", wait_until="domcontentloaded")
    _click_materialize(page, expect)
    run_id = _launched_run_id(dev, page, expect)
    dd.wait_for_run(dev, run_id, RUN_TIMEOUT_S)
    assert dd.dynamic_partitions(dev, "converted_scene") == scenes

    # 2. One scene partition of raw_scene + converted_scene from the scene job's page. The
    #    asset page of converted_scene alone would materialise it without raw_scene (the UI
    #    warns that its upstream is missing), so the job's "Materialize all" is the one-dialog way.
    page.goto(f"{dev.url}/locations/{dd.LOCATION_NAME}/jobs/hypersim_scene_job", wait_until="domcontentloaded")
    _click_materialize(page, expect, name="Materialize all")
    dialog = page.get_by_role("dialog").first
    expect(dialog).to_contain_text("Launch runs to materialize 2 assets")
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_role("menuitem", name=scene).first.click()
    dialog.get_by_text("Launch runs to materialize").click()  # closes the partition menu
    expect(dialog).to_contain_text("1 partition")
    dialog.get_by_role("button", name="Launch 1 run").click()
    run_id = _launched_run_id(dev, page, expect)
    dd.wait_for_run(dev, run_id, RUN_TIMEOUT_S)
    run = next(r for r in dd.runs(dev) if r["runId"] == run_id)
    assert run["jobName"] == "hypersim_scene_job"
    assert {"key": "dagster/partition", "value": scene} in run["tags"]

    # 3. GraphQL: exactly that partition of both assets is materialised.
    for asset in ("raw_scene", "converted_scene"):
        statuses = dd.partition_statuses(dev, asset)
        assert statuses["materialized"] == [scene], (asset, statuses)
        assert statuses["failed"] == [], (asset, statuses)

    # 4. The UI: converted_scene's Partitions tab counts 1 materialised and the rest missing,
    #    and the scene's own panel names the run that materialised it.
    page.goto(f"{dev.url}/assets/converted_scene", wait_until="domcontentloaded")
    page.get_by_role("tab", name="Partitions").click()
    expect(page.get_by_text("Materialized (1)")).to_be_visible()
    expect(page.get_by_text(f"Missing ({len(scenes) - 1})")).to_be_visible()
    page.get_by_text(scene, exact=True).first.click()
    expect(page.get_by_text("Materialized", exact=True).first).to_be_visible()
    expect(page.get_by_text(run_id[:8]).first).to_be_visible()
    shot = tmp_path / "ui_materialized.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
