"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against a coordinator process
with a mirror worker replicating between two real regions."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from amity.regions import Region
from tests.e2e.conftest import TOKEN, Cli
from tests.support.kafka import create_topic, produce
from tests.support.mirror import CoordinatedWorker

CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: tests run as root here; no background networking: nothing but the coordinator is reachable.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make chromium` installs it (apt-get install chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def replicated(page: Page) -> int:
    return int(page.locator("#total-replicated").inner_text().replace(",", ""))


def wait_replicated(page: Page, at_least: int) -> None:
    page.wait_for_function(
        "n => Number(document.querySelector('#total-replicated')?.textContent.replace(/,/g, '')) >= n",
        arg=at_least, timeout=WAIT_MS)


def test_the_dashboard_shows_regions_links_moving_counters_and_a_paused_link(
        regions: dict[str, Region], coordinator: Cli, topic: str, browser: Browser, tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    for region in (us, eu):
        create_topic(region.bootstrap, topic, partitions=2)
        coordinator("region", "add", region.name, "--bootstrap", region.bootstrap, "--redis", region.redis)
    coordinator("mesh", "us", "eu", "--include", topic)
    coordinator("rules", "set", topic, "--policy", "lww")
    coordinator("rules", "set", f"{topic}-clicks", "--first-hop", "timestamp")
    worker = CoordinatedWorker(tmp_path, coordinator.url, TOKEN).start()
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{coordinator.url}/ui/")
        expect(page.locator("#connection")).to_have_attribute("data-status", "live", timeout=WAIT_MS)
        for name in ("us", "eu"):
            expect(page.locator(f'#topology g.region[data-region="{name}"]')).to_be_visible()
        for link in ("us-to-eu", "eu-to-us"):
            expect(page.locator(f'#topology g.link[data-link="{link}"]')).to_have_attribute(
                "data-state", "running", timeout=WAIT_MS)
        expect(page.locator("#rules tbody")).to_contain_text(topic)
        expect(page.locator("#rules tbody")).to_contain_text("first hop from the record timestamp")

        produce(us.bootstrap, topic, [(f"k{n}".encode(), b"first") for n in range(200)])
        wait_replicated(page, 200)
        before = replicated(page)
        expect(page.locator("#topics tbody")).to_contain_text(topic)
        produce(eu.bootstrap, topic, [(f"k{n}".encode(), b"second") for n in range(300)])
        wait_replicated(page, before + 300)
        expect(page.locator("#value-throughput")).not_to_have_text(re.compile(r"^(0|–)$"), timeout=WAIT_MS)
        expect(page.locator("#total-dropped")).to_contain_text("loop")

        coordinator("link", "pause", "us-to-eu")
        edge = page.locator('#topology g.link[data-link="us-to-eu"]')
        expect(edge).to_have_attribute("data-state", "paused", timeout=WAIT_MS)
        expect(edge).to_contain_text("paused")
        expect(page.locator('#link-list button[data-link="us-to-eu"]')).to_have_attribute("data-state", "paused")
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        assert (tmp_path / "dashboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        page.close()
        assert worker.stop() == 0
    assert not errors, f"the page raised: {errors}"
    assert all(url.startswith(coordinator.url) for url in requested), \
        f"the page fetched something from elsewhere: {[u for u in requested if not u.startswith(coordinator.url)]}"


def test_the_dashboard_is_usable_by_keyboard(regions: dict[str, Region], coordinator: Cli, browser: Browser) -> None:
    for region in (regions["us"], regions["eu"]):
        coordinator("region", "add", region.name, "--bootstrap", region.bootstrap, "--redis", region.redis,
                    "--no-check")
    coordinator("mesh", "us", "eu", "--include", "keyboard-.*")
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    try:
        page.goto(f"{coordinator.url}/ui/")
        everything = page.locator('#link-list button[data-link="*"]')
        expect(everything).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        everything.focus()
        page.keyboard.press("ArrowDown")
        expect(page.locator("#detail-heading")).to_have_text("eu-to-us")
        page.keyboard.press("ArrowDown")
        expect(page.locator("#detail-heading")).to_have_text("us-to-eu")
        expect(page.locator('#link-list button[data-link="us-to-eu"]')).to_be_focused()

        page.keyboard.press("p")
        expect(page.locator("#action-message")).to_contain_text("API token", timeout=WAIT_MS)
        page.locator("details.access summary").press("Enter")
        page.locator("#token-input").fill(TOKEN)
        page.keyboard.press("Enter")
        page.locator('#link-list button[data-link="us-to-eu"]').focus()
        page.keyboard.press("p")
        expect(page.locator('#topology g.link[data-link="us-to-eu"]')).to_have_attribute(
            "data-state", "paused", timeout=WAIT_MS)
        assert coordinator.json("link", "show", "us-to-eu")["paused"] is True

        page.keyboard.press("/")
        expect(page.locator("#topic-filter")).to_be_focused()
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")
        expect(page.locator("#detail-heading")).to_have_text("All links")
    finally:
        page.close()
