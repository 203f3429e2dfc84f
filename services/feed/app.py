"""The feed: a small Starlette app over the incident store. One HTML page (no build step), a JSON API, a
server-sent event stream of incident changes (it follows the store's audit trail, so it sees changes made by
any process), acknowledgements that need the configured token, and health and readiness endpoints."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, get_args

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from satwatch.services.detection.alerts import Category
from satwatch.services.feed.config import FeedSettings
from satwatch.services.feed.incidents import Incident
from satwatch.services.feed.metrics import FeedMetrics
from satwatch.services.feed.store import IncidentStore

TOKEN_HEADER = "X-Satwatch-Token"
PICTURES = ("strip", "heatmap")


STATUSES = get_args(Incident.model_fields["status"].annotation)
CATEGORIES = get_args(Category)
# A 1x1 transparent GIF: browsers ask for /favicon.ico, and a 404 shows as a console error.
FAVICON = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _bad_filter(status: str | None, category: str | None, day: str | None, limit: str | None) -> str | None:
    """Why a list filter cannot match anything (an unknown value, a malformed day), or None when it is valid:
    an empty list for a typo would read as 'no incidents'."""
    if status and status not in STATUSES:
        return f"unknown status {status!r}: use one of {', '.join(STATUSES)}"
    if category and category not in CATEGORIES:
        return f"unknown category {category!r}: use one of {', '.join(CATEGORIES)}"
    if day:
        try:
            ok = datetime.strptime(day, "%Y-%m-%d").strftime("%Y-%m-%d") == day
        except ValueError:
            ok = False
        if not ok:
            return f"day {day!r} is not a UTC date written YYYY-MM-DD, such as 2024-07-01"
    if limit and not (limit.isdecimal() and limit.isascii() and int(limit) >= 1):
        return f"limit {limit!r} must be a whole number of at least 1"
    return None


def _page() -> str:
    return resources.files("satwatch.services.feed").joinpath("page.html").read_text()


class FeedApp:
    """Holds the store and settings behind the routes; ``app`` is the ASGI application."""

    def __init__(
        self,
        store: IncidentStore,
        settings: FeedSettings,
        ready: Callable[[], tuple[bool, str]] | None = None,
        metrics: FeedMetrics | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics or FeedMetrics(store)
        self.pictures = Path(settings.pictures_dir) if settings.pictures_dir else None
        self.extra_ready = ready
        self.stopping = threading.Event()
        self.page = _page()
        self.app = Starlette(
            routes=[
                Route("/", self.index),
                Route("/favicon.ico", self.favicon),
                Route("/healthz", self.healthz),
                Route("/readyz", self.readyz),
                Route("/metrics", self.prometheus),
                Route("/api/incidents", self.list_incidents),
                Route("/api/incidents/{incident_id}", self.one_incident),
                Route("/api/incidents/{incident_id}/ack", self.acknowledge, methods=["POST"]),
                Route("/api/alerts/{alert_id}/{name}.png", self.picture),
                Route("/api/events", self.events),
            ],
            lifespan=self._lifespan,
        )
        self.app.state.stopping = self.stopping  # the server sets it on shutdown, so event streams end at once

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.stopping.clear()
        try:
            yield
        finally:
            self.stopping.set()  # ends the event streams, so the server can stop

    # -- access ----------------------------------------------------------------------------------------
    def _token_refusal(self, request: Request, doing: str, then: str) -> Response | None:
        """None when the request carries the feed's token; else a 401 that tells a forecaster whether the token
        is missing or wrong, and where to enter it (the page's token field; scripts send the header)."""
        given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
        want = self.settings.token or ""
        if want and hmac.compare_digest(given.encode(), want.encode()):
            return None
        where = (
            "the token field at the top of the page (ask the feed's operator for it; "
            f"scripts send it in the {TOKEN_HEADER} header)"
        )
        if not given:
            body = {"error": f"{doing} needs the feed token: enter it in {where}, then {then}", "reason": "no_token"}
        else:
            error = f"wrong token: the token entered is not this feed's; correct it in {where}, then {then}"
            body = {"error": error, "reason": "wrong_token"}
        return JSONResponse(body, 401)

    def _read_refused(self, request: Request) -> Response | None:
        if self.settings.reads_need_token:
            return self._token_refusal(request, "reading this feed", "reload the page")
        return None

    # -- views -----------------------------------------------------------------------------------------
    def _has_picture(self, alert_id: str, name: str) -> bool:
        return self.pictures is not None and (self.pictures / alert_id / f"{name}.png").is_file()

    def view(self, inc: Incident) -> dict[str, Any]:
        """An incident as the page shows it: the incident, its acknowledgements and which pictures exist."""
        d = json.loads(inc.model_dump_json())
        d["ratio"] = inc.ratio
        d["acks"] = [json.loads(a.model_dump_json()) for a in self.store.acknowledgements(inc.id)]
        pictures: dict[str, Any] = {name: self._has_picture(inc.latest_alert_id, name) for name in PICTURES}
        # the similar events shown are the peak alert's, and so are their pictures
        pictures["similar"] = [self._has_picture(inc.peak_alert_id, f"similar-{n}") for n in range(len(inc.similar))]
        d["pictures"] = pictures
        return d

    async def index(self, request: Request) -> Response:
        return HTMLResponse(self.page)

    async def favicon(self, request: Request) -> Response:
        return Response(FAVICON, media_type="image/gif", headers={"Cache-Control": "max-age=86400"})

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        checks: dict[str, Any] = {}
        ok = True
        try:
            checks["store"] = {"ok": self.store.ping(), "incidents": self.store.count(), "seq": self.store.last_seq()}
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure
            checks["store"] = {"ok": False, "error": str(exc)}
            ok = False
        if self.extra_ready is not None:
            good, why = self.extra_ready()
            checks["sink"] = {"ok": good, "detail": why}
            ok = ok and good
        return JSONResponse({"ready": ok, "checks": checks}, 200 if ok else 503)

    async def prometheus(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def list_incidents(self, request: Request) -> Response:
        if (refused := self._read_refused(request)) is not None:
            return refused
        q = request.query_params
        if (bad := _bad_filter(q.get("status"), q.get("category"), q.get("day"), q.get("limit"))) is not None:
            return JSONResponse({"error": bad}, 400)
        seq = self.store.last_seq()
        incidents = self.store.query(
            satellite=q.get("satellite") or None,
            kind=q.get("kind") or None,
            status=q.get("status") or None,
            category=q.get("category") or None,
            day=q.get("day") or None,
            limit=int(q.get("limit") or "500"),
        )
        return JSONResponse({"seq": seq, "incidents": [self.view(i) for i in incidents]})

    async def one_incident(self, request: Request) -> Response:
        if (refused := self._read_refused(request)) is not None:
            return refused
        inc = self.store.get(request.path_params["incident_id"])
        if inc is None:
            return JSONResponse({"error": "no such incident"}, 404)
        d = self.view(inc)
        d["audit"] = [json.loads(e.model_dump_json()) for e in self.store.audit(inc.id)]
        return JSONResponse(d)

    async def acknowledge(self, request: Request) -> Response:
        if not self.settings.token:
            self.metrics.refused_writes.inc()
            off = "acknowledging is switched off on this feed: its operator has set no feed token"
            return JSONResponse({"error": off}, 403)
        if (refused := self._token_refusal(request, "acknowledging", "acknowledge again")) is not None:
            self.metrics.refused_writes.inc()
            return refused
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body must be JSON: {who, comment}"}, 400)
        who = str(body.get("who", "")).strip()[:100] if isinstance(body, dict) else ""
        comment = str(body.get("comment", "")).strip()[:2000] if isinstance(body, dict) else ""
        if not who:
            return JSONResponse({"error": "say who acknowledges ('who')"}, 400)
        ack = self.store.acknowledge(request.path_params["incident_id"], who, comment)
        if ack is None:
            return JSONResponse({"error": "no such incident"}, 404)
        self.metrics.acknowledgements.inc()
        return JSONResponse(json.loads(ack.model_dump_json()), 201)

    async def picture(self, request: Request) -> Response:
        if (refused := self._read_refused(request)) is not None:
            return refused
        alert_id, name = request.path_params["alert_id"], request.path_params["name"]
        known = name in PICTURES or (name.startswith("similar-") and name[8:].isdecimal() and len(name) < 12)
        if not known or not alert_id.isalnum() or not self._has_picture(alert_id, name):
            return JSONResponse({"error": "no such picture (the detector has not provided it)"}, 404)
        assert self.pictures is not None
        return FileResponse(self.pictures / alert_id / f"{name}.png", headers={"Cache-Control": "max-age=86400"})

    async def events(self, request: Request) -> Response:
        """Server-sent events: one ``incident`` event per changed incident, and a ``retired`` event (its id and
        the id it was merged into) per incident merged away, after the audit sequence number given by
        ``Last-Event-ID`` or ``?since=``."""
        if (refused := self._read_refused(request)) is not None:
            return refused
        start = request.headers.get("last-event-id") or request.query_params.get("since") or "0"
        try:
            since = int(start)
        except ValueError:
            since = 0

        async def stream() -> AsyncIterator[str]:
            seq = since
            quiet = 0.0
            yield "retry: 1000\n\n"
            while not self.stopping.is_set() and not await request.is_disconnected():
                entries = self.store.audit(since=seq, limit=500)
                if entries:
                    seq = entries[-1].seq
                    merged = {  # the retired id's own row ("into NEW"), not the new id's ("from OLD")
                        e.incident_id: e.detail.removeprefix("into ")
                        for e in entries
                        if e.action == "merged" and e.detail.startswith("into ")
                    }
                    for iid in dict.fromkeys(e.incident_id for e in entries):
                        inc = self.store.get(iid)
                        if inc is not None:
                            yield f"id: {seq}\nevent: incident\ndata: {json.dumps(self.view(inc))}\n\n"
                        elif iid in merged:  # merged into another (a late earlier alert): the page drops its card
                            gone = json.dumps({"id": iid, "into": merged[iid]})
                            yield f"id: {seq}\nevent: retired\ndata: {gone}\n\n"
                    quiet = 0.0
                    continue
                await asyncio.sleep(self.settings.poll_seconds)
                quiet += self.settings.poll_seconds
                if quiet >= 10:
                    yield ": keep-alive\n\n"
                    quiet = 0.0

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )


def create_app(
    store: IncidentStore,
    settings: FeedSettings,
    ready: Callable[[], tuple[bool, str]] | None = None,
    metrics: FeedMetrics | None = None,
) -> Starlette:
    return FeedApp(store, settings, ready, metrics).app
