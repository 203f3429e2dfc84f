"""The whole feed in a real headless browser (Debian's chromium driven by Playwright): alerts published on the
embedded broker appear on the page, update live and resolve; an acknowledgement from one browser shows in the
other; a write without the token is refused.

Set SATWATCH_FEED_SCREENSHOT=docs/img/feed.png to keep a screenshot of the page."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from satwatch.consumers.incidents import IncidentsConsumer
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import Alert
from satwatch.services.feed.app import create_app
from satwatch.services.feed.config import FeedSettings
from satwatch.services.feed.server import FeedServer
from satwatch.services.feed.store import IncidentStore
from satwatch.services.nowcast.summary import LeadOutlook, NowcastSummary
from satwatch.topics import ensure_topics
from tests.consumers.test_incidents import publish
from tests.services.feed.test_incidents import STEP, make_alert

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def live_feed(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Settings, IncidentsConsumer]]:
    ensure_topics(settings.kafka)
    tag = uuid.uuid4().hex[:8]
    feed = FeedSettings(
        store=str(tmp_path / "i.sqlite"),
        token="t0ken",
        incidents_topic=f"incidents-{tag}",
        group_id=f"inc-{tag}",
        quiet_minutes=30,
        poll_seconds=0.1,
    )
    store = IncidentStore(feed.store)
    consumer = IncidentsConsumer(settings, feed, store=store)
    worker = threading.Thread(target=consumer.run, daemon=True)
    worker.start()
    assert consumer.ready.wait(30), "the incidents sink did not join its group"
    server = FeedServer(create_app(store, feed)).start()
    try:
        yield server.url, settings, consumer
    finally:
        server.stop()
        consumer.stop()
        worker.join(15)


def with_nowcast(alert: Alert) -> Alert:
    """The alert as ``satwatch detect --nowcast`` publishes it: with the digest of services.nowcast.summary."""
    outlook = tuple(
        LeadOutlook(timedelta(hours=h), 3, cold, spread, 250.0)
        for h, cold, spread in ((1, 0.12, 0.04), (2, 0.2, 0.06), (3, 0.31, 0.09))
    )
    summary = NowcastSummary(alert.window_end, 3, 0.551, 0.07, 262.0, outlook)
    return alert.model_copy(update={"nowcast": summary.to_dict()})


def send(settings: Settings, alert: Alert) -> float:
    t0 = time.monotonic()
    publish(settings, [alert])
    return t0


def test_page_follows_the_stream(browser: Any, live_feed: tuple[str, Settings, IncidentsConsumer]) -> None:
    url, settings, consumer = live_feed
    alice = browser.new_context().new_page()
    bob = browser.new_context().new_page()
    for page in (alice, bob):
        page.goto(url)
        page.wait_for_selector("#live.on", timeout=10_000)
    alice.fill("#who", "alice")
    alice.fill("#token", "t0ken")
    alice.dispatch_event("#token", "change")

    # a weather alert: the incident appears on both pages within seconds
    t0 = send(settings, make_alert(1, score=0.5))
    alice.wait_for_selector("[data-testid=incident]", timeout=15_000)
    print(f"alert publish -> page display {time.monotonic() - t0:.2f} s")
    bob.wait_for_selector("[data-testid=incident]", timeout=15_000)
    card = alice.locator("[data-testid=incident]")
    assert card.count() == 1 and "anomaly" in card.inner_text() and "1 alerts" in card.inner_text()
    assert alice.locator("[data-testid=placeholder-strip]").count() == 1  # no pictures from the detector yet
    chart = alice.text_content("[data-testid=score-chart]") or ""  # the score chart says what it plots, when
    assert "threshold" in chart and "Z" in chart and "score" in chart

    assert alice.locator("[data-testid=nowcast]").count() == 0  # this alert carried no analog nowcast

    # the event goes on: the same incident, updated live, now with the detector's analog nowcast
    send(settings, with_nowcast(make_alert(2, score=0.9)))
    alice.wait_for_function("document.querySelector('[data-testid=count]').textContent === '2 alerts'", timeout=15_000)
    assert alice.locator("[data-testid=incident]").count() == 1
    assert "0.9000" in alice.locator("[data-testid=incident]").inner_text()
    bob.wait_for_selector("[data-testid=nowcast]", timeout=15_000)
    line = alice.inner_text("[data-testid=nowcast]")
    assert "now 7%" in line and "3 similar past events" in line and "best similarity 0.55" in line
    leads = alice.locator("[data-testid=nowcast-lead]").all_inner_texts()
    assert [" ".join(t.split()) for t in leads] == ["+1h 12% (±4)", "+2h 20% (±6)", "+3h 31% (±9)"]

    # an instrument fault: hidden by default, shown with the filter
    send(settings, make_alert(2, kind="striping", hotspot=None))
    alice.wait_for_function("fetch('/api/incidents').then(r => r.json()).then(d => d.incidents.length === 2)")
    assert alice.locator("[data-testid=incident]").count() == 1
    alice.check("#f-faults")
    alice.wait_for_function("document.querySelectorAll('[data-testid=incident]').length === 2", timeout=15_000)
    assert alice.locator(".inc.data_quality [data-testid=status]").inner_text() == "open"
    alice.uncheck("#f-faults")
    assert alice.locator("[data-testid=incident]").count() == 1

    # alice acknowledges with a comment; bob sees it live
    alice.fill("[data-testid=comment]", "convection, watching it")
    alice.click("form.ack button")
    bob.wait_for_selector("[data-testid=ack]", timeout=15_000)
    assert "alice" in bob.inner_text("[data-testid=ack]") and "convection, watching it" in bob.inner_text(
        "[data-testid=ack]"
    )

    # bob has no token: his acknowledgement is refused, on the page and at the API
    bob.fill("[data-testid=comment]", "me too")
    bob.click("form.ack button")
    bob.wait_for_selector("#msg:has-text('refused')", timeout=10_000)
    assert "needs the feed token" in bob.inner_text("#msg") and "token field" in bob.inner_text("#msg")
    # a mistyped token is called wrong, not missing
    bob.fill("#token", "t0ke")
    bob.click("form.ack button")
    bob.wait_for_selector("#msg:has-text('wrong token')", timeout=10_000)
    bob.fill("#token", "")
    iid = bob.get_attribute("[data-testid=incident]", "data-id")
    resp = bob.request.post(f"{url}/api/incidents/{iid}/ack", data={"who": "mallory", "comment": "x"})
    assert resp.status == 401
    assert bob.locator("[data-testid=ack]").count() == 1

    # the stream moves on past the quiet time with no further alert: resolved on the page
    consumer.advance("COMS-1", make_alert(2).window_end + 3 * STEP + timedelta(minutes=1))
    alice.wait_for_selector("[data-testid=incident][data-status=resolved]", timeout=15_000)

    shot = os.environ.get("SATWATCH_FEED_SCREENSHOT")
    if shot:
        alice.check("#f-faults")
        alice.set_viewport_size({"width": 1200, "height": 760})
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        alice.screenshot(path=shot, full_page=True)
