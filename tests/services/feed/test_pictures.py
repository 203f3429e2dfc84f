from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from satwatch.services.feed.pictures import PictureWriter, RecentFrames, heat_colours
from tests.helpers import T0, make_frame


def test_window_strip_and_heatmap_written_once(tmp_path: Path) -> None:
    recent = RecentFrames(keep=30)
    for n in range(25):
        recent.add(make_frame(T0 + n * timedelta(minutes=15)))
    window = recent.window("COMS-1", T0 + timedelta(hours=1), T0 + timedelta(hours=6))
    assert len(window) == 21 and window[0][1].shape == (150, 188)
    heat = np.zeros((152, 176), np.float32)
    heat[40:60, 100:120] = 5.0
    writer = PictureWriter(tmp_path)
    paths = writer.write("abc", heat, window)
    assert [p.name for p in paths] == ["strip.png", "heatmap.png"]
    strip = Image.open(io.BytesIO(paths[0].read_bytes()))
    assert strip.width == 10 * 96 and strip.height == 3 * (75 + 14)  # 21 frames, ten to a row
    hm = Image.open(io.BytesIO(paths[1].read_bytes())).convert("RGB")
    px = np.asarray(hm)
    # the hot block is red over the frame; elsewhere the frame stays grey
    y, x = int(50 / 152 * hm.height), int(110 / 176 * hm.width)
    assert px[y, x, 0] > px[y, x, 2] + 100
    assert abs(int(px[5, 5, 0]) - int(px[5, 5, 2])) < 10
    assert writer.write("abc", heat, window) == []  # rendered once
    similar = [(window[:10], window[10:16]), ([], [])]
    paths = writer.write("sim", None, [], similar)
    assert [p.name for p in paths] == ["similar-0.png"]  # no frames at hand for the second: no picture
    pic = Image.open(io.BytesIO(paths[0].read_bytes())).convert("RGB")
    assert pic.width == 16 * 47 + 6 and pic.height == 37 + 12
    assert tuple(np.asarray(pic)[30, 10 * 47 + 1]) == (220, 38, 38)  # the bar between window and what followed
    again = writer.write("sim2", None, [], similar)  # another alert finding the same past event: drawn once
    assert again[0].read_bytes() == paths[0].read_bytes() and len(writer._similar) == 1
    writer.submit("def", heat, window)  # in the background
    writer.close()
    assert sorted(p.name for p in (tmp_path / "def").iterdir()) == ["heatmap.png", "strip.png"]


def test_flat_map_is_transparent() -> None:
    rgb, alpha = heat_colours(np.ones((10, 10)))
    assert rgb.shape == (10, 10, 3) and alpha.max() == 0


def test_similar_event_pictures_span_the_hours_its_alert_lists(tmp_path: Path) -> None:
    """The alert lists the frames of the 6 hours after a similar event; its picture covers the same hours,
    thinned evenly (first and last kept), not only the first few hours."""
    from satwatch.services.detection.detector import FOLLOWING as LISTED
    from satwatch.services.feed.pictures import (
        SIMILAR_FOLLOWING_THUMBS,
        SIMILAR_WINDOW_THUMBS,
        AlertPictures,
        similar_png,
        spread,
    )

    step = timedelta(minutes=15)
    pictures = AlertPictures(tmp_path)
    for n in range(60):
        pictures.on_frame(make_frame(T0 + n * step))
    start, end = T0, T0 + 19 * step  # a 20-frame window; 24 frames follow it in 6 h
    window, following = pictures.similar_frames("COMS-1", start, end)
    assert len(window) == SIMILAR_WINDOW_THUMBS and window[0][0] == start and window[-1][0] == end
    assert len(following) == SIMILAR_FOLLOWING_THUMBS
    assert following[0][0] == end + step and following[-1][0] == end + LISTED  # the last listed frame is drawn
    gaps = {b[0] - a[0] for a, b in zip(following, following[1:], strict=False)}
    assert gaps <= {2 * step, 3 * step}  # evenly spread
    assert [t for t, _ in spread(following, 50)] == [t for t, _ in following]
    pic = Image.open(io.BytesIO(similar_png(window, following)))
    assert pic.width == (SIMILAR_WINDOW_THUMBS + SIMILAR_FOLLOWING_THUMBS) * 47 + 6
