from datetime import timedelta

import numpy as np

from satwatch.services.metric.groundtruth import frame_signature, window_signature, window_similarity
from satwatch.services.retrieval.index import Neighbour, WindowRecord
from satwatch.services.retrieval.stream_signatures import StreamSignatures
from tests.helpers import T0, make_frame
from tests.services.detection.stand_ins import make_detector

Q = timedelta(minutes=15)


def test_signatures_survive_in_the_disk_cache(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frame = make_frame(T0)
    s = StreamSignatures(tmp_path, memory_frames=1)
    s.add("COMS-1", T0, frame.data)
    s.add("COMS-1", T0 + Q, make_frame(T0 + Q).data)  # pushes the first out of memory
    s.flush()
    fresh = StreamSignatures(tmp_path)
    sig = fresh.frame("COMS-1", T0)
    assert sig is not None
    np.testing.assert_array_equal(sig.cum, frame_signature(frame.data, s.spec).cum)
    assert fresh.window("COMS-1", [T0, T0 + 2 * Q]) is None  # a frame never seen


def test_rerank_orders_by_exact_similarity(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = StreamSignatures()
    frames = [make_frame(T0 + i * Q, value=50 + 40 * (i % 3)) for i in range(6)]
    for f in frames:
        s.add("COMS-1", f.time, f.data)
    query_times = [frames[0].time, frames[3].time]
    cands = [
        Neighbour(
            WindowRecord(f"w{i}", "COMS-1", frames[i].time, frames[i + 1].time, (frames[i].time, frames[i + 1].time)),
            0.1 * i,
        )
        for i in range(4)
    ]
    ranked = s.rerank("COMS-1", query_times, cands)
    sims = [n.similarity for n in ranked]
    assert sims == sorted(sims, reverse=True)
    q = window_signature([frame_signature(frames[0].data, s.spec), frame_signature(frames[3].data, s.spec)])
    for n in ranked:
        i = int(n.record.window_id[1:])
        expected = window_similarity(
            q, window_signature([frame_signature(frames[i].data, s.spec), frame_signature(frames[i + 1].data, s.spec)])
        )
        assert abs(n.similarity - expected) < 1e-12


def test_detector_alerts_carry_exact_similarity(tmp_path) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path, StreamSignatures(tmp_path / "sig"), persistent=False, min_frames_for_search=4)
    for i in range(24):
        det.process(make_frame(T0 + i * Q, value=60 + 5 * (i % 4)))
    out = det.process(make_frame(T0 + 24 * Q, value=230))
    assert out.alert is not None and len(out.alert.similar) == 3
    sims = [e.similarity for e in out.alert.similar]
    assert all(x is not None and 0.0 < x <= 1.0 for x in sims) and sims == sorted(sims, reverse=True)


def test_rerank_of_a_part_filled_query_compares_the_latest_frames() -> None:
    s = StreamSignatures()
    frames = [make_frame(T0 + i * Q, value=50 + 40 * (i % 3)) for i in range(6)]
    for f in frames:
        s.add("COMS-1", f.time, f.data)
    cands = [
        Neighbour(WindowRecord.from_times("COMS-1", [f.time for f in frames[i : i + 3]]), 0.1 * i) for i in range(3)
    ]
    # A query of one frame (the window just after a gap) against windows of three: their last frames compared.
    ranked = s.rerank("COMS-1", [frames[5].time], cands)
    assert [n.frames_compared for n in ranked] == [1, 1, 1]
    q = window_signature([frame_signature(frames[5].data, s.spec)])
    for n in ranked:
        last = frame_signature(frames[[f.time for f in frames].index(n.record.end)].data, s.spec)
        assert abs(n.similarity - window_similarity(q, window_signature([last]))) < 1e-12
    assert ranked[0].record.end == frames[2].time  # the window ending in a frame as bright as frame 5
    full = s.rerank("COMS-1", [f.time for f in frames[3:6]], cands)
    assert [n.frames_compared for n in full] == [3, 3, 3]


def test_detector_reranks_a_part_filled_window_after_a_gap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    det = make_detector(tmp_path, StreamSignatures(tmp_path / "sig"), persistent=False)
    for i in range(24):
        det.process(make_frame(T0 + i * Q, value=60 + 5 * (i % 4)))
    # Ten hours missing: the window after the gap holds 2 frames, the indexed windows 4.
    after = T0 + 24 * Q + timedelta(hours=10)
    det.process(make_frame(after, value=70))
    out = det.process(make_frame(after + Q, value=230))
    assert out.window_frames == 2
    assert [n.frames_compared for n in out.neighbours] == [2, 2, 2]
    assert out.alert is not None and len(out.alert.similar) == 3
    sims = [e.similarity for e in out.alert.similar]
    assert all(x is not None and 0.0 < x <= 1.0 for x in sims) and sims == sorted(sims, reverse=True)
