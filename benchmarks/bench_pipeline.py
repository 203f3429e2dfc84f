"""Pipeline benchmark: frames/s through the real embedded broker and per-stage detector timings.

    python benchmarks/bench_pipeline.py [--frames 400] [--live 100] [--model-dir DIR] [--scene texture]

Simulates frames in memory first (not timed), publishes them to the embedded Tansu broker (producer rate),
then runs the detector consumer over the topic (end-to-end rate from first consumed message to last processed
frame) and reports per-stage p50/p99 from per-call timings. Without --model-dir the detector is pinned to the
shipped root set (onnx_models/: the procedural simulator's own), not the satellite profile's default.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import tempfile
import threading
import time
from collections import defaultdict
from time import perf_counter

import numpy as np

from satwatch.broker import EmbeddedBroker
from satwatch.consumers.detector import DetectorConsumer
from satwatch.producers.publisher import FramePublisher, make_producer
from satwatch.services.config import Settings
from satwatch.services.detection.detector import build_detector
from satwatch.services.detection.metrics import DetectorMetrics
from satwatch.services.models.modelcard import packaged_model_dir
from satwatch.services.simulator.scene import SimConfig
from satwatch.services.simulator.scenes import open_scene
from satwatch.topics import ensure_topics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=400, help="frames to stream (15-minute cadence)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--live", type=int, default=100, help="frames then sent one at a time, as a live feed")
    ap.add_argument("--live-interval", type=float, default=0.25, help="seconds between live frames")
    ap.add_argument(
        "--model-dir",
        help="folder with both models' ONNX files and cards (default: the shipped root onnx_models/, the set made "
        "for the procedural scene; e.g. onnx_models/autoencoder-v2 for real imagery)",
    )
    ap.add_argument(
        "--scene",
        choices=("procedural", "texture"),
        default="procedural",
        help="procedural (synthetic fields) or texture (real COMS clouds moved and evolved; slow to simulate)",
    )
    ap.add_argument("--textures", default=SimConfig.textures, help="real frames the texture scene takes clouds from")
    args = ap.parse_args()
    # The profile's default set is made for real imagery; the benchmark names its set so its figures stay comparable.
    model_dir = args.model_dir or str(packaged_model_dir())
    print(f"models: {model_dir}{'' if args.model_dir else ' (shipped root set, pinned: --model-dir not given)'}")
    print(f"scene: {args.scene}")

    cfg = SimConfig(seed=args.seed, days=(args.frames + args.live) / 96, scene=args.scene, textures=args.textures)
    sim = open_scene(cfg)
    t0 = perf_counter()
    everything = list(sim.frames())
    frames, live = everything[: args.frames], everything[args.frames :]
    sim_s = perf_counter() - t0
    print(f"simulated {len(frames)} frames in {sim_s:.1f} s ({len(frames) / sim_s:.1f} frames/s, not part of the rate)")

    cpu: dict[str, dict[str, float]] = {}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as state:
        s = Settings()
        s.kafka.bootstrap_servers = broker.bootstrap_servers
        s.kafka.partitions = 1
        s.detector.state_dir = state
        s.detector.model_dir = model_dir
        ensure_topics(s.kafka)
        producer = make_producer(s.kafka)
        publisher = FramePublisher(producer, s.kafka, source="bench")
        t0 = perf_counter()
        for f in frames:
            publisher.publish(f)
        publisher.flush()
        produce_s = perf_counter() - t0
        producer.close()

        metrics = DetectorMetrics()
        samples: dict[str, list[float]] = defaultdict(list)
        metrics.stage_listeners.append(lambda name, dt: samples[name].append(dt))
        detector = build_detector(s, metrics)
        done = threading.Event()
        marks: dict[str, float] = {}
        count = {"n": 0}

        def on_outcome(_o: object) -> None:
            count["n"] += 1
            if count["n"] == 1:
                marks["first"] = perf_counter()
                cpu["first"] = thread_cpu(broker.pid)
            if count["n"] == len(frames):
                marks["last"] = perf_counter()
                cpu["last"] = thread_cpu(broker.pid)
                done.set()

        consumer = DetectorConsumer(s, detector, on_outcome=on_outcome)
        t_start = perf_counter()
        worker = threading.Thread(target=consumer.run, name="consumer loop (main work)")
        worker.start()
        done.wait(600)
        replay_samples = {k: list(v) for k, v in samples.items()}
        # Live feed: one frame at a time, each processed alone (batch of one), as at a forecast centre.
        samples.clear()
        producer = make_producer(s.kafka)
        publisher = FramePublisher(producer, s.kafka, source="bench-live")
        target = len(frames) + len(live)
        for f in live:
            publisher.publish(f)
            publisher.flush()
            time.sleep(args.live_interval)
        deadline = time.monotonic() + 60
        while count["n"] < target and time.monotonic() < deadline:
            time.sleep(0.1)
        producer.close()
        consumer.stop()
        worker.join(60)

    e2e_s = marks["last"] - marks["first"]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"producer: {len(frames)} frames in {produce_s:.2f} s = {len(frames) / produce_s:.0f} frames/s "
        "(shrink + encode + send, acks=all, idempotent)"
    )
    print(
        f"detector end to end: {len(frames) - 1} frames in {e2e_s:.2f} s = {(len(frames) - 1) / e2e_s:.0f} frames/s "
        f"(consumer group join + first poll took {marks['first'] - t_start:.1f} s)"
    )
    if "first" in cpu and "last" in cpu:
        n = len(frames) - 1
        spent = {k: cpu["last"][k] - cpu["first"].get(k, 0.0) for k in cpu["last"]}
        total = sum(v for k, v in spent.items() if k != "broker process" and not k.startswith("machine"))
        budget = 1000 * e2e_s / n * (os.cpu_count() or 1)
        print(
            f"\nCPU time during the replay, ms per frame ({os.cpu_count()} cores: {budget:.1f} CPU-ms a frame "
            f"elapsed; load average {os.getloadavg()[0]:.2f} at the end)"
        )
        for k, v in sorted(spent.items(), key=lambda kv: -kv[1]):
            if v * 1000 / n >= 0.05 and not k.startswith("machine"):
                print(f"  {k:<40} {1000 * v / n:7.2f}")
        print(f"  {'detector process, all threads':<40} {1000 * total / n:7.2f}")
        if "machine busy" in spent:
            # On a shared machine: what other processes took, and what no one used (the pipeline's own gaps).
            others = spent["machine busy"] - total - spent.get("broker process", 0.0)
            print(f"  {'other processes on the machine':<40} {1000 * others / n:7.2f}")
            print(f"  {'idle cores':<40} {1000 * spent['machine idle'] / n:7.2f}")
    for title, table in (("replay (batched per poll)", replay_samples), ("live (one frame at a time)", samples)):
        print(f"\n{title}\nstage            calls    p50 ms    p99 ms   mean ms")
        for name in (
            "decode",
            "signature",
            "embed",
            "anomaly",
            "signature_store",
            "quality",
            "search",
            "rerank",
            "alert_store",
            "index_add",
            "total",
        ):
            ms = np.asarray(table.get(name, []), dtype=np.float64) * 1000
            if ms.size:
                p50, p99 = np.percentile(ms, [50, 99])
                print(f"{name:<15} {ms.size:6d} {p50:9.2f} {p99:9.2f} {ms.mean():9.2f}")
    print("(replay 'total' is per batch; live 'total' is per frame: decode excluded, it is timed on its own)")


def thread_cpu(broker_pid: int | None) -> dict[str, float]:
    """CPU seconds so far of each thread of this process (Python threads by name, the rest, onnxruntime's
    pools and the like, as "native threads"), of the broker process, and the whole machine's busy and idle
    core-seconds, from /proc (Linux; empty elsewhere)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = defaultdict(float)

    def seconds(stat: str) -> float:
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as fh:
                name = names.get(int(tid), "native threads (onnxruntime pools, ...)")
                out[re.sub(r"_\d+$", "", name)] += seconds(fh.read())
        if broker_pid is not None:
            with open(f"/proc/{broker_pid}/stat") as fh:
                out["broker process"] += seconds(fh.read())
        with open("/proc/stat") as fh:  # all cores: user nice system idle iowait irq softirq steal
            ticks = [int(v) / tick for v in fh.readline().split()[1:9]]
        out["machine busy"] = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
        out["machine idle"] = ticks[3] + ticks[4]
    except OSError:
        return {}
    return dict(out)


if __name__ == "__main__":
    main()
