"""The re-rank's pair memo: the same similarities as ``similarity_one_to_many``, bit for bit, call after call."""

from dataclasses import replace

import numpy as np

from satwatch.services.metric.compare import PairMemo, similarity_one_to_many, similarity_one_to_many_memo
from satwatch.services.metric.groundtruth import GridSpec, frame_signature, window_signature
from satwatch.services.simulator.scene import SceneSimulator, SimConfig


def test_memo_gives_the_plain_similarities_bit_for_bit_across_calls() -> None:
    spec = GridSpec(n=24, bins=20, mode="general")
    frames = list(SceneSimulator(SimConfig(seed=23, days=60 / 96)).frames())
    sigs = [replace(frame_signature(f.data, spec), key=f"frame {i}") for i, f in enumerate(frames)]
    memo = PairMemo()
    length = 8
    for end in range(40, 60):  # a run of alerts: the query moves on a frame at a time
        query = window_signature(sigs[end - length : end])
        # Sliding past windows (sharing frames), one part-filled window and one the query overlaps.
        many = [window_signature(sigs[e - length : e]) for e in range(length, 30, 2)]
        many += [window_signature(sigs[3:7]), window_signature(sigs[end - 10 : end - 2])]
        want = similarity_one_to_many(query, many)
        got = similarity_one_to_many_memo(query, many, memo)
        assert np.array_equal(got, want), end
    assert memo.hits > memo.misses > 0  # later queries found most of their frame pairs already compared
    # Signatures without keys, and candidates that share no frame, take the plain route: still the same numbers.
    plain = [frame_signature(f.data, spec) for f in frames[:12]]
    q, few = window_signature(plain[:4]), [window_signature(plain[4:8]), window_signature(plain[8:12])]
    assert np.array_equal(similarity_one_to_many_memo(q, few, memo), similarity_one_to_many(q, few))
    assert similarity_one_to_many_memo(q, [], memo).size == 0
