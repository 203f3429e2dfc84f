"""Who built an index: the encoder (name and sha256) and the window length, kept beside the index.

Embeddings of different encoders, or windows of different lengths, do not mix: an index opened with another
encoder would answer every query with nonsense and never say so. Every place that opens an index (the
detector, ``index build``, ``search``) checks what it brings against what built the index.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

#: File beside the index snapshot that records its provenance.
BUILD_FILE = "build.json"


def default_index_dir(state_dir: str | Path, encoder: tuple[str, str] | None = None) -> Path:
    """Where the detector keeps its index: ``<detector.state_dir>/index``, or, for an ``encoder`` (name,
    sha256) other than the one that built that index, ``<state_dir>/indexes/<name>-<sha256[:12]>``.

    A change of encoder (an upgrade whose satellite profile names a new one, a ``model_dir`` set or unset)
    then starts that encoder's own index beside the old one instead of stopping the detector; switching back
    finds the old index where it was. ``search`` and ``index build`` given the same encoder find the same
    folder.
    """
    first = Path(state_dir) / "index"
    if encoder is None:
        return first
    built = read_provenance(first)
    if built is None or built.encoder_sha256 == encoder[1]:
        return first
    name, sha = encoder
    return Path(state_dir) / "indexes" / f"{name}-{sha[:12]}"


class IndexMismatchError(ValueError):
    """An index opened with an encoder or window length other than the ones that built it."""


@dataclass(frozen=True)
class IndexProvenance:
    """The encoder and window length an index's vectors come from."""

    encoder: str
    encoder_sha256: str
    window_size: int | None  # None: recorded before window lengths were (only the encoder is checked)


def read_provenance(directory: str | Path) -> IndexProvenance | None:
    """The recorded provenance, or None for an index that predates it (or does not exist yet)."""
    path = Path(directory) / BUILD_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    try:
        size = data.get("window_size")
        return IndexProvenance(str(data["encoder"]), str(data["encoder_sha256"]), None if size is None else int(size))
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexMismatchError(f"{path} is damaged ({exc}); rebuild the index or restore the file") from exc


def check_provenance(directory: str | Path, mine: IndexProvenance) -> None:
    """Refuse an index built by another encoder or window length; record ``mine`` where nothing is recorded."""
    path = Path(directory)
    built = read_provenance(path)
    if built is None:
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / (BUILD_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(mine), indent=2) + "\n")
        os.replace(tmp, path / BUILD_FILE)
        return
    if built.encoder_sha256 != mine.encoder_sha256:
        raise IndexMismatchError(
            f"index {path} was built by encoder {built.encoder} (sha256 {built.encoder_sha256[:12]}), but the "
            f"loaded encoder is {mine.encoder} (sha256 {mine.encoder_sha256[:12]}): embeddings of different models "
            "do not mix. Use the encoder that built it (detector.model_dir), or build a new index "
            "(satwatch index build --out NEW_DIR)"
        )
    if built.window_size is not None and built.window_size != mine.window_size:
        raise IndexMismatchError(
            f"index {path} holds windows of {built.window_size} frames, but windows of {mine.window_size} are "
            "configured (detector.window_size): set it back, or build a new index"
        )
