"""The black title band KMA draws across the top 20 rows of a COMS frame, rendered for any time.

Real frames carry a line such as ``COMS IR1 2011-03-03 06:45 UTC(03.03 15:45 KST)KMA`` in a yellow
monospace font, 9 pixels a character, starting at column 10. The glyphs are cut from real frames' own bands
(the times in their file names say which character sits in which cell), so a simulated band is made of the
very pixels KMA drew, and it changes every frame as the real one does. The ground-truth metric reads these
rows; the study's preprocessing crops them away.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]

BAND_ROWS = 20
FIRST_COLUMN = 10
PITCH = 9
#: The label KMA prints for each COMS channel.
CHANNEL_LABELS: dict[str, str] = {"ir01": "IR1", "ir02": "IR2", "swir": "SWIR", "wv": "WV"}
#: Korea Standard Time, which the band prints beside UTC.
KST = timedelta(hours=9)


def title_text(channel: str, time: datetime) -> str:
    """The band's line for ``channel`` at ``time`` (UTC), as KMA writes it."""
    label = CHANNEL_LABELS.get(channel, channel.upper())
    kst = time + KST
    return f"COMS {label} {time:%Y-%m-%d %H:%M} UTC({kst:%m.%d %H:%M} KST)KMA"


class GlyphAtlas:
    """Character cells (20 x 9 RGB) cut from real title bands."""

    def __init__(self) -> None:
        self.glyphs: dict[str, U8] = {}

    def learn(self, band: U8, text: str) -> None:
        """Take the cells of one real band whose line is ``text`` (first occurrence of each character wins)."""
        for i, ch in enumerate(text):
            x = FIRST_COLUMN + PITCH * i
            if ch not in self.glyphs and x + PITCH <= band.shape[1]:
                self.glyphs[ch] = band[:BAND_ROWS, x : x + PITCH].copy()

    def missing(self, texts: Iterable[str]) -> set[str]:
        """Characters of ``texts`` the atlas has no glyph for."""
        return {c for t in texts for c in t if c not in self.glyphs and c != " "}

    def render(self, text: str, width: int) -> U8:
        """A band ``width`` pixels wide with ``text`` drawn; unknown characters stay black."""
        band = np.zeros((BAND_ROWS, width, 3), dtype=np.uint8)
        for i, ch in enumerate(text):
            g = self.glyphs.get(ch)
            x = FIRST_COLUMN + PITCH * i
            if g is not None and x + PITCH <= width:
                band[:, x : x + PITCH] = g
        return band

    def to_array(self) -> tuple[str, U8]:
        """The atlas as (characters, stacked glyphs) for caching in an ``.npz``."""
        chars = "".join(sorted(self.glyphs))
        stack = np.stack([self.glyphs[c] for c in chars]) if chars else np.zeros((0, BAND_ROWS, PITCH, 3), np.uint8)
        return chars, stack

    @classmethod
    def from_array(cls, chars: str, stack: U8) -> GlyphAtlas:
        atlas = cls()
        atlas.glyphs = {c: stack[i] for i, c in enumerate(chars)}
        return atlas
