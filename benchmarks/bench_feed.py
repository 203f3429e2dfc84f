"""Feed benchmark: time from an alert's publication on the embedded broker to its incident on the page, in a
real headless chromium (Debian's, driven by Playwright); and a screenshot of a demo run's feed.

    python benchmarks/bench_feed.py [--alerts 100] [--interval 0.3]
    python benchmarks/bench_feed.py --screenshot docs/img/feed.png --from-state var/demo
    python benchmarks/bench_feed.py --detector-cost 300

The third form replays the same simulated frames through the real detector with and without the incidents
sink and the feed beside it in one process (as ``satwatch demo`` runs them), alternating, and reports frames/s.

Each alert opens a new incident (window ends three hours apart), so every one must travel the whole way:
broker -> incidents sink (group consumer) -> SQLite store -> the page's server-sent event stream -> the DOM.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from satwatch.broker import EmbeddedBroker
from satwatch.consumers.incidents import IncidentsConsumer
from satwatch.services.config import Settings
from satwatch.services.detection.alerts import Alert, alert_id, alert_to_json
from satwatch.services.feed.app import create_app
from satwatch.services.feed.config import FeedSettings
from satwatch.services.feed.server import FeedServer
from satwatch.services.feed.store import IncidentStore
from satwatch.topics import ensure_topics

T0 = datetime(2024, 7, 1, tzinfo=UTC)


def chromium(p: Any) -> Any:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    return p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])


def alert(n: int) -> Alert:
    end = T0 + timedelta(hours=3 * n)
    return Alert(
        id=alert_id("COMS-1", end, "anomaly"),
        satellite="COMS-1",
        window_start=end - timedelta(hours=6),
        window_end=end,
        frames_in_window=20,
        score=5.0,
        threshold=3.9,
        hotspot=(0.5, 0.5),
        created=end,
    )


def latency(n_alerts: int, interval: float) -> None:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-feed-"))
    with EmbeddedBroker() as broker, sync_playwright() as p:
        settings = Settings()
        settings.kafka.bootstrap_servers = broker.bootstrap_servers
        ensure_topics(settings.kafka)
        feed = FeedSettings(store=str(tmp / "i.sqlite"), group_id=f"bench-{uuid.uuid4().hex[:6]}", poll_seconds=0.1)
        store = IncidentStore(feed.store)
        consumer = IncidentsConsumer(settings, feed, store=store)
        worker = threading.Thread(target=consumer.run, daemon=True)
        worker.start()
        consumer.ready.wait(30)
        server = FeedServer(create_app(store, feed)).start()
        browser = chromium(p)
        page = browser.new_page()
        page.goto(server.url)
        page.wait_for_selector("#live.on")
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=0)
        took = []
        for n in range(n_alerts):
            a = alert(n)
            t0 = time.perf_counter()
            producer.send(settings.kafka.alerts_topic, key=a.id.encode(), value=alert_to_json(a))
            producer.flush()
            page.wait_for_function(
                f"document.querySelectorAll('[data-testid=incident]').length === {n + 1}", timeout=30_000
            )
            took.append(time.perf_counter() - t0)
            time.sleep(interval)
        producer.close()
        browser.close()
        server.stop()
        consumer.stop()
        worker.join(15)
    ms = sorted(t * 1000 for t in took)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(
        f"alert publish -> incident on the page, {len(ms)} alerts: p50 {statistics.median(ms):.0f} ms, "
        f"p99 {p99:.0f} ms, max {ms[-1]:.0f} ms (the page's event stream looks at the store every 100 ms)"
    )


def screenshot(path: Path, state: Path) -> None:
    from playwright.sync_api import sync_playwright

    feed = FeedSettings(store=str(state / "incidents.sqlite"), pictures_dir=str(state / "pictures"))
    server = FeedServer(create_app(IncidentStore(feed.store), feed)).start()
    try:
        with sync_playwright() as p:
            browser = chromium(p)
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(f"{server.url}/?faults=1")
            page.wait_for_selector("[data-testid=incident]")
            page.wait_for_load_state("networkidle")
            path.parent.mkdir(parents=True, exist_ok=True)
            png = page.screenshot()
            browser.close()
    finally:
        server.stop()
    from PIL import Image  # a 256-colour palette keeps the README's picture small

    Image.open(io.BytesIO(png)).convert("RGB").quantize(256).save(path, optimize=True)
    print(f"screenshot {path}")


def detector_cost(n_frames: int, rounds: int) -> None:
    from satwatch.consumers.detector import DetectorConsumer
    from satwatch.localfeed import LocalFeed
    from satwatch.producers.publisher import FramePublisher, make_producer
    from satwatch.services.detection.detector import FrameOutcome, build_detector
    from satwatch.services.simulator.scene import SceneSimulator, SimConfig

    frames = list(SceneSimulator(SimConfig(seed=7, days=n_frames / 96)).frames())
    rates: dict[str, list[float]] = {"without the feed": [], "with the sink and feed": []}
    with EmbeddedBroker() as broker:
        base = Settings()
        base.kafka.bootstrap_servers = broker.bootstrap_servers
        base.kafka.partitions = 1
        ensure_topics(base.kafka)
        producer = make_producer(base.kafka)
        publisher = FramePublisher(producer, base.kafka, source="bench")
        for f in frames:
            publisher.publish(f)
        publisher.flush()
        producer.close()
        for r in range(rounds * 2):
            with_feed = r % 2 == 1
            tag = f"{r}-{uuid.uuid4().hex[:6]}"
            s = base.model_copy(deep=True)
            s.kafka.alerts_topic = f"alerts-{tag}"
            s.kafka.group_id = f"det-{tag}"
            tmp = Path(tempfile.mkdtemp(prefix="bench-feed-"))
            s.detector.state_dir = str(tmp / "det")
            ensure_topics(s.kafka)
            feed = None
            if with_feed:
                os.environ["SATWATCH_FEED__GROUP_ID"] = f"inc-{tag}"
                os.environ["SATWATCH_FEED__INCIDENTS_TOPIC"] = f"incidents-{tag}"
                feed = LocalFeed(s, tmp / "feed", port=0).start()
                for f in frames:
                    feed.on_frame(f)  # the demo does this on the publishing side; not timed
            count = {"n": 0}
            marks: dict[str, float] = {}
            done = threading.Event()

            def on_outcome(
                o: FrameOutcome,
                feed: LocalFeed | None = feed,
                count: dict[str, int] = count,
                marks: dict[str, float] = marks,
                done: threading.Event = done,
            ) -> None:
                if feed is not None:
                    feed.on_outcome(o)
                count["n"] += 1
                if count["n"] == 1:
                    marks["first"] = time.perf_counter()
                if count["n"] == len(frames):
                    marks["last"] = time.perf_counter()
                    done.set()

            consumer = DetectorConsumer(s, build_detector(s), on_outcome=on_outcome)
            worker = threading.Thread(target=consumer.run)
            worker.start()
            done.wait(600)
            consumer.stop()
            worker.join(60)
            if feed is not None:
                feed.drain(1)
                print(f"  {feed.summary()}")
                feed.stop()
            rate = (len(frames) - 1) / (marks["last"] - marks["first"])
            key = "with the sink and feed" if with_feed else "without the feed"
            rates[key].append(rate)
            print(f"round {r // 2 + 1} {key}: {rate:.0f} frames/s")
            shutil.rmtree(tmp, ignore_errors=True)
    for key, vals in rates.items():
        print(f"detector replay {key}: median {statistics.median(vals):.0f} frames/s over {len(vals)} runs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=100)
    ap.add_argument("--interval", type=float, default=0.3, help="seconds between alerts")
    ap.add_argument("--detector-cost", type=int, metavar="FRAMES", help="detector frames/s with and without")
    ap.add_argument("--rounds", type=int, default=2, help="pairs of runs for --detector-cost")
    ap.add_argument("--screenshot", type=Path, help="save a screenshot of the feed of --from-state here")
    ap.add_argument("--from-state", type=Path, default=Path("var/demo"), help="a demo run's state directory")
    args = ap.parse_args()
    if args.detector_cost:
        detector_cost(args.detector_cost, args.rounds)
    elif args.screenshot:
        screenshot(args.screenshot, args.from_state)
    else:
        latency(args.alerts, args.interval)


if __name__ == "__main__":
    main()
