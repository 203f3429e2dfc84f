"""A search result as one picture a forecaster can judge: a row per window (the query, then each similar past
event), each row its window's frames and, after a red bar, the frames that followed it, every thumbnail
labelled with its time. Drawn with Pillow (no plotting library, so ``satwatch search --plot`` stays quick)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Thumbnail width in pixels: half the shrunk COMS frame (375 x 300), big enough to see cloud structure.
T = TypeVar("T")

THUMB_WIDTH = 188
_LABEL = 18  # pixels above each thumbnail for its time
_HEAD = 22  # pixels above each row for its title
_BAR = 6  # the red bar between a window and what followed it
_GAP = 3
_TEXT = (20, 20, 20)
_RED = (220, 38, 38)


@dataclass(frozen=True)
class Thumb:
    """One thumbnail: its label (a time), how to get its grey plane (None: unreadable, drawn as "missing"),
    and whether it is a frame that followed the window (drawn after a red bar, labelled in red)."""

    label: str
    plane: Callable[[], np.ndarray | None]
    after: bool = False


@dataclass(frozen=True)
class PlotRow:
    """One row: a title and its thumbnails in order."""

    title: str
    thumbs: Sequence[Thumb]


def time_labels(times: Sequence[datetime], day: object = None) -> list[str]:
    """Each time as HH:MM, with the date wherever it changes along the row (and on the first)."""
    out = []
    for t in times:
        out.append(f"{t:%H:%M}" if t.date() == day else f"{t:%Y-%m-%d %H:%M}")
        day = t.date()
    return out


def sample(times: Sequence[T], n: int) -> list[T]:
    """``n`` times (or frame numbers) evenly spread over ``times``, first and last included (all when fewer)."""
    if n <= 0 or not times:
        return []
    picks = sorted({int(round(x)) for x in np.linspace(0, len(times) - 1, min(n, len(times)))})
    return [times[i] for i in picks]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType's bundled default font
        return ImageFont.load_default()


def _thumb(plane: np.ndarray, width: int) -> Image.Image:
    img = Image.fromarray(np.asarray(plane, dtype=np.uint8))
    height = max(1, round(img.height * width / img.width))
    return img.resize((width, height), Image.Resampling.BILINEAR).convert("RGB")


def draw_rows(rows: Sequence[PlotRow], title: str = "", width: int = THUMB_WIDTH) -> Image.Image:
    """The picture of ``rows``. Every row is as wide as the widest, so the picture is full width."""
    small, big = _font(13), _font(15)
    images = [[_thumb(p, width) if (p := th.plane()) is not None else None for th in row.thumbs] for row in rows]
    height = next((im.height for ims in images for im in ims if im is not None), round(width * 0.8))
    ncol = max((len(r.thumbs) for r in rows), default=1)
    row_h = _HEAD + _LABEL + height + 2 * _GAP
    top = _HEAD if title else 0
    canvas = Image.new("RGB", (max(1, ncol * (width + _GAP) + _BAR + 2 * _GAP), top + len(rows) * row_h), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((_GAP, 2), title, fill=_TEXT, font=big)
    for r, (row, ims) in enumerate(zip(rows, images, strict=True)):
        y = top + r * row_h
        y_img = y + _HEAD + _LABEL
        draw.text((_GAP, y + 2), row.title, fill=_TEXT, font=big)
        x = _GAP
        for n, (th, img) in enumerate(zip(row.thumbs, ims, strict=True)):
            if th.after and (n == 0 or not row.thumbs[n - 1].after):
                draw.rectangle((x, y_img, x + _BAR - 2, y_img + height), fill=_RED)
                x += _BAR
            draw.text((x + 2, y + _HEAD + 1), th.label, fill=_RED if th.after else _TEXT, font=small)
            if img is not None:
                canvas.paste(img, (x, y_img))
            else:
                draw.rectangle((x, y_img, x + width - 1, y_img + height), fill=(150, 150, 150))
                draw.text((x + 4, y_img + 4), "missing", fill=_TEXT, font=small)
            x += width + _GAP
    return canvas


def save_rows(out: str | Path, rows: Sequence[PlotRow], title: str = "", width: int = THUMB_WIDTH) -> Path:
    """Draw ``rows`` (:func:`draw_rows`) and write them as a PNG at ``out``."""
    path = Path(out)
    draw_rows(rows, title, width).save(path, format="PNG", compress_level=3)
    return path
