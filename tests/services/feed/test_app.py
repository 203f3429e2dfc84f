"""The feed's HTTP API over a real store, served by a real uvicorn on loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from satwatch.services.feed.app import TOKEN_HEADER, create_app
from satwatch.services.feed.config import FeedSettings, load_feed_settings
from satwatch.services.feed.server import FeedServer
from satwatch.services.feed.sink import IncidentSink
from satwatch.services.feed.store import IncidentStore
from tests.services.feed.test_incidents import make_alert


def call(url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, IncidentStore]]:
    store = IncidentStore(tmp_path / "i.sqlite")
    pics = tmp_path / "pictures"
    settings = FeedSettings(token="s3cret", pictures_dir=str(pics))
    sink = IncidentSink(store, settings)
    sink.handle([make_alert(1), make_alert(2, score=0.8), make_alert(3, kind="striping", hotspot=None)])
    # the detector's pictures for one alert (a real PNG is not needed to serve the bytes)
    (pics / make_alert(2).id).mkdir(parents=True)
    (pics / make_alert(2).id / "heatmap.png").write_bytes(b"\x89PNG fake")
    (pics / make_alert(2).id / "similar-0.png").write_bytes(b"\x89PNG fake")
    server = FeedServer(create_app(store, settings)).start()
    try:
        yield server.url, store
    finally:
        server.stop()


def test_reads_filters_health(served: tuple[str, IncidentStore]) -> None:
    url, store = served
    assert call(f"{url}/healthz") == (200, {"status": "ok"})
    code, ready = call(f"{url}/readyz")
    assert code == 200 and ready["checks"]["store"]["incidents"] == 2
    code, data = call(f"{url}/api/incidents")
    assert code == 200 and len(data["incidents"]) == 2 and data["seq"] > 0
    code, data = call(f"{url}/api/incidents?category=weather")
    (inc,) = data["incidents"]
    assert (
        inc["alert_count"] == 2
        and inc["peak_score"] == 0.8
        and inc["pictures"] == {"strip": False, "heatmap": True, "similar": [True]}
    )
    code, one = call(f"{url}/api/incidents/{inc['id']}")
    assert [e["action"] for e in one["audit"]] == ["opened", "updated"]
    with urllib.request.urlopen(f"{url}/api/alerts/{make_alert(2).id}/heatmap.png", timeout=5) as resp:
        assert resp.read().startswith(b"\x89PNG")
    assert call(f"{url}/api/alerts/{make_alert(2).id}/strip.png")[0] == 404
    with urllib.request.urlopen(f"{url}/api/alerts/{make_alert(2).id}/similar-0.png", timeout=5) as resp:
        assert resp.read().startswith(b"\x89PNG")
    assert call(f"{url}/api/alerts/{make_alert(2).id}/similar-1.png")[0] == 404
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(f"{url}/api/alerts/{make_alert(2).id}/..%2Fsimilar-0.png", timeout=5)
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert b"satwatch feed" in resp.read()


def test_acknowledge_needs_the_token(served: tuple[str, IncidentStore]) -> None:
    url, store = served
    iid = store.query(category="weather")[0].id
    ack = f"{url}/api/incidents/{iid}/ack"
    body = {"who": "kim", "comment": "seen, convection over the sea"}
    code, missing = call(ack, body)
    assert code == 401 and missing["reason"] == "no_token"
    assert "needs the feed token" in missing["error"] and "token field" in missing["error"]
    code, wrong = call(ack, body, {TOKEN_HEADER: "wrong"})
    assert code == 401 and wrong["reason"] == "wrong_token"
    assert wrong["error"].startswith("wrong token") and "token field" in wrong["error"]
    assert store.acknowledgements(iid) == []
    code, got = call(ack, body, {TOKEN_HEADER: "s3cret"})
    assert code == 201 and got["who"] == "kim"
    assert call(f"{url}/api/incidents/nope/ack", body, {TOKEN_HEADER: "s3cret"})[0] == 404
    assert call(ack, {"comment": "no name"}, {TOKEN_HEADER: "s3cret"})[0] == 400
    _, data = call(f"{url}/api/incidents/{iid}")
    assert [a["comment"] for a in data["acks"]] == ["seen, convection over the sea"]
    assert data["audit"][-1]["action"] == "acknowledged" and data["audit"][-1]["actor"] == "kim"


def test_no_token_configured_refuses_every_write(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "i.sqlite")
    IncidentSink(store, FeedSettings()).handle([make_alert(1)])
    server = FeedServer(create_app(store, FeedSettings(reads_need_token=False))).start()
    try:
        iid = store.query()[0].id
        assert call(f"{server.url}/api/incidents/{iid}/ack", {"who": "a"}, {TOKEN_HEADER: ""})[0] == 403
    finally:
        server.stop()


def test_reads_can_need_the_token(tmp_path: Path) -> None:
    store = IncidentStore(tmp_path / "i.sqlite")
    IncidentSink(store, FeedSettings()).handle([make_alert(1)])
    server = FeedServer(create_app(store, FeedSettings(token="k", reads_need_token=True))).start()
    try:
        code, missing = call(f"{server.url}/api/incidents")
        assert code == 401 and missing["reason"] == "no_token" and "reload" in missing["error"]
        code, wrong = call(f"{server.url}/api/incidents?token=wrong")
        assert code == 401 and wrong["reason"] == "wrong_token"
        code, data = call(f"{server.url}/api/incidents", headers={TOKEN_HEADER: "k"})
        assert code == 200 and len(data["incidents"]) == 1
        assert call(f"{server.url}/api/events")[0] == 401
        assert call(f"{server.url}/healthz")[0] == 200  # probes stay open
    finally:
        server.stop()


def test_settings_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[feed]\ntoken = "from-file"\nport = 9000\n')
    monkeypatch.setenv("SATWATCH_FEED__PORT", "9001")
    s = load_feed_settings(cfg)
    assert s.token == "from-file" and s.port == 9001 and s.host == "127.0.0.1"
    monkeypatch.setenv("SATWATCH_FEED__TOKNE", "x")
    with pytest.raises(ValueError, match=r"SATWATCH_FEED__TOKNE: unknown key 'tokne' in \[feed\]; did you mean 'token"):
        load_feed_settings(cfg)
    monkeypatch.delenv("SATWATCH_FEED__TOKNE")
    cfg.write_text('[feed]\ntokn = "typo"\n')
    with pytest.raises(ValueError):
        load_feed_settings(cfg)


def test_invalid_filters_are_refused_not_answered_empty(served: tuple[str, IncidentStore]) -> None:
    """A typo in a filter must not read as 'no incidents': 400 with the accepted values."""
    url, _ = served
    code, data = call(f"{url}/api/incidents?day=2024-13-45")
    assert code == 400 and "YYYY-MM-DD" in data["error"]
    code, data = call(f"{url}/api/incidents?status=bogus")
    assert code == 400 and "open, resolved" in data["error"]
    code, data = call(f"{url}/api/incidents?category=wether")
    assert code == 400 and "data_quality, weather" in data["error"]
    assert call(f"{url}/api/incidents?limit=ten")[0] == 400
    code, data = call(f"{url}/api/incidents?status=open&category=weather&day={make_alert(1).window_end:%Y-%m-%d}")
    assert code == 200 and len(data["incidents"]) == 1


def test_favicon_is_served(served: tuple[str, IncidentStore]) -> None:
    url, _ = served
    with urllib.request.urlopen(f"{url}/favicon.ico", timeout=5) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/gif" and resp.read().startswith(b"GIF")
