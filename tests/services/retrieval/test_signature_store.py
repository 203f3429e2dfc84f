"""The packed signature store an index build writes for the search re-rank: what it stores is what the
metric computes, on the study's real frames; it survives a reopen; the build fills it and a search uses it
without decoding a frame."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from satwatch.services.frames.archive import Archive
from satwatch.services.metric.groundtruth import GridSpec, frame_signature, window_signature, window_similarity
from satwatch.services.retrieval.search import ArchiveSignatures
from satwatch.services.retrieval.signature_store import FrameSignatureStore, signature_store_dir
from tests.helpers import shared_data

SPEC = GridSpec(n=24, bins=20, mode="general")


def test_real_frames_round_trip_exactly(tmp_path: Path) -> None:
    archive = Archive(shared_data("study", "raw_images"))
    times = archive.times[:3]
    sigs = [frame_signature(archive.load(t).data, SPEC) for t in times]
    store = FrameSignatureStore(tmp_path / "s", SPEC)
    assert store.put_many("COMS-1", times, sigs) == 3
    assert store.put_many("COMS-1", times[:1], sigs[:1]) == 0  # already there
    again = FrameSignatureStore(tmp_path / "s", SPEC)
    assert (
        len(again) == 3
        and again.get("GK-2A", times[0]) is None
        and again.get("COMS-1", times[-1] + timedelta(1)) is None
    )
    for t, s in zip(times, sigs, strict=True):
        got = again.get("COMS-1", t)
        assert got is not None and np.array_equal(got.cum, s.cum) and np.array_equal(got.cell_pixels, s.cell_pixels)
        assert got.shape == s.shape == (300, 375) and got.channels == 4
    # Stored values are exact: the same similarity to 1e-12 as from the frames themselves.
    a, b = window_signature(sigs[:2]), window_signature([again.get("COMS-1", t) for t in times[1:]])  # type: ignore[misc]
    assert window_similarity(a, b) == pytest.approx(window_similarity(a, window_signature(sigs[1:])), abs=1e-12)
    assert window_similarity(a, b) < 1.0
    with pytest.raises(ValueError, match="spec"):
        again.put_many(
            "COMS-1",
            [times[0] - timedelta(hours=1)],
            [frame_signature(archive.load(times[0]).data, GridSpec(n=4, bins=20, mode="general"))],
        )


def test_archive_signatures_sign_once_and_store_on_flush(tmp_path: Path) -> None:
    archive = Archive(shared_data("study", "raw_images"))
    store_dir = signature_store_dir(tmp_path / "index", SPEC)
    lookup = ArchiveSignatures(archive, store_dir=store_dir)
    times = archive.times[:4]
    assert lookup.missing(times) == times
    first = lookup.window(times)  # signed from the PNGs
    assert lookup.pending == 4 and lookup.flush() == 4 and lookup.pending == 0
    fresh = ArchiveSignatures(archive, store_dir=store_dir)
    assert fresh.missing(times) == []
    second = fresh.window(times)
    assert fresh.pending == 0  # nothing signed: everything came from the store
    assert window_similarity(first, second) == pytest.approx(1.0, abs=1e-15)
