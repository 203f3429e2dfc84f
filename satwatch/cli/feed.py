"""``satwatch feed``: the forecaster's web page, and the incidents sink that fills its store."""

from __future__ import annotations

import argparse
import logging
import threading

from satwatch.cli._common import add_service_arguments, settings_from_args

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "feed",
        help="serve the incident feed (web page, live updates, acknowledgements) and run the incidents sink",
        description=(
            "Group the alerts topic's alerts into incidents (store, compacted 'incidents' topic, faults to "
            "Alertmanager) and serve the forecasters' page over the incident store. Acknowledging needs the "
            "token from config feed.token or $SATWATCH_FEED__TOKEN; without one the page is read-only. "
            "Binds to 127.0.0.1 unless feed.host says otherwise."
        ),
    )
    add_service_arguments(p)
    p.add_argument("--store", help="incident store (default config feed.store, var/feed/incidents.sqlite)")
    p.add_argument("--host", help="address to bind (default config feed.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default config feed.port, 8088; 0 picks a free one)")
    p.add_argument("--pictures-dir", help="per-alert pictures written by the detector (config feed.pictures_dir)")
    p.add_argument("--alertmanager-url", help="route data-quality incidents to this Alertmanager")
    p.add_argument("--no-sink", action="store_true", help="only serve the page; another process runs the sink")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from satwatch.services.feed.app import create_app
    from satwatch.services.feed.config import load_feed_settings
    from satwatch.services.feed.server import FeedServer
    from satwatch.services.feed.store import IncidentStore

    settings = settings_from_args(args)
    feed = load_feed_settings(getattr(args, "config", None))
    for name in ("store", "host", "port", "pictures_dir", "alertmanager_url"):
        if getattr(args, name) is not None:
            setattr(feed, name, getattr(args, name))
    store = IncidentStore(feed.store)
    sink_thread: threading.Thread | None = None
    consumer = None
    if not args.no_sink:
        from satwatch.consumers.incidents import IncidentsConsumer

        consumer = IncidentsConsumer(settings, feed, store=store)
        sink_thread = threading.Thread(target=lambda: run_sink(consumer), name="incidents", daemon=True)
    sink_failed: list[BaseException] = []

    def run_sink(sink: IncidentsConsumer) -> None:
        # A feed whose incidents consumer has died would go on serving a page that no longer moves, and route no
        # fault to Alertmanager: it stops instead, with a non-zero exit, so its supervisor restarts it.
        try:
            sink.run()
        except Exception as exc:
            sink_failed.append(exc)
            log.exception("the incidents consumer stopped (%s): the feed stops so that it can be restarted", exc)
            server.request_stop()

    def ready() -> tuple[bool, str]:
        if consumer is None:
            return True, "sink runs elsewhere"
        alive = sink_thread is not None and sink_thread.is_alive()
        joined = consumer.ready.is_set()
        return alive and joined, f"sink thread {'alive' if alive else 'dead'}, alerts partitions assigned: {joined}"

    metrics = consumer.metrics if consumer is not None else None
    server = FeedServer(create_app(store, feed, ready, metrics), feed.host, feed.port)
    if sink_thread is not None:
        sink_thread.start()
    k = settings.kafka
    sink = "" if consumer is None else f" | sink reads {k.alerts_topic} on {k.bootstrap_servers}"
    writes = "need the token" if feed.token else "disabled (no token)"
    print(f"feed {server.url} | store {feed.store} | writes {writes}{sink}", flush=True)
    try:
        server.serve()
    finally:
        if consumer is not None:
            consumer.stop()
        if sink_thread is not None:
            sink_thread.join(timeout=15)
        store.close()
    return 1 if sink_failed else 0
