"""``satwatch index build|info``: build the similar-event index from an archive, or describe one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from satwatch.cli import add_config_argument
from satwatch.services.config import Settings, load_settings
from satwatch.services.retrieval.provenance import BUILD_FILE, IndexProvenance, check_provenance


def default_index_dir(settings: Settings) -> Path:
    """Where the detector keeps its index: ``<detector.state_dir>/index``."""
    return Path(settings.detector.state_dir) / "index"


def frame_vector_dir(index_dir: Path, encoder_sha256: str) -> Path:
    """Per-frame embeddings live beside the index, one folder per encoder model."""
    return index_dir / "frame_vectors" / encoder_sha256[:16]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "index",
        help="build or inspect the similar-event (HNSW) index",
        description=(
            "The similar-event index holds one embedding per 6-hour window (the mean of its frames' "
            "embeddings) in an HNSW graph, with each window's satellite, start, end and frame times."
        ),
    )
    # --config belongs to each action (a parent-level option would be reset by the action's default).
    sub = parser.add_subparsers(dest="index_command", metavar="ACTION", required=True)

    build = sub.add_parser(
        "build",
        help="embed every window of an archive into the index",
        description=(
            "Embed every window of a KMA-named archive and add it to the index. Each frame is encoded once "
            "and its embedding cached beside the index, so a rerun (or an interrupted build) skips frames "
            "and windows already done. HNSW parameters come from the [detector] config section "
            "(index_m, index_ef_construction, index_ef, index_max_elements)."
        ),
    )
    add_config_argument(build)
    build.add_argument("--archive", required=True, metavar="DIR", help="archive folder of KMA-named PNG files")
    build.add_argument(
        "--out", metavar="DIR", help="index folder (default: <detector.state_dir>/index from the config)"
    )
    build.add_argument(
        "--model-dir", metavar="DIR", help="folder with encoder.onnx + card (default: config, else packaged model)"
    )
    build.add_argument("--satellite", default="COMS-1", help="satellite name recorded for the archive's windows")
    build.add_argument("--stride", type=int, default=1, help="index every N-th window (default 1: every window)")
    build.add_argument("--workers", type=int, default=2, help="threads for PNG decoding and ONNX inference (default 2)")
    build.add_argument("--batch", type=int, default=32, help="frames encoded per ONNX call (default 32)")
    build.add_argument(
        "--min-frames",
        type=int,
        help="also index part-filled windows holding at least this many frames (default: full windows only; "
        "a window is the latest 20 frames within 6 hours for COMS-1, so missing frames are spanned)",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.set_defaults(func=run_build)

    info = sub.add_parser(
        "info",
        help="print size, parameters, time coverage and memory of an index",
        description="Describe a saved index: windows, satellites, time coverage, HNSW parameters and memory.",
    )
    add_config_argument(info)
    info.add_argument("--index", metavar="DIR", help="index folder (default: <detector.state_dir>/index)")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(func=run_info)


def run_build(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from satwatch.services.frames.archive import Archive
    from satwatch.services.models.embedding import FrameEncoder
    from satwatch.services.retrieval.index import FrameVectorStore, SimilarityIndex, WindowRecord, window_id
    from satwatch.services.retrieval.search import ensure_frame_vectors

    settings = load_settings(args.config)
    det = settings.detector
    out = Path(args.out) if args.out else default_index_dir(settings)
    if args.stride < 1 or args.workers < 1 or args.batch < 1:
        raise ValueError("--stride, --workers and --batch must be at least 1")
    archive = Archive(args.archive, args.satellite)
    encoder = FrameEncoder.load(args.model_dir or det.model_dir, threads=args.workers)
    sha = encoder.card.sha256
    archive.require_frames()
    size = det.window_size or archive.profile.window_frames
    check_provenance(out, IndexProvenance(encoder.card.name, sha, size))
    windows = archive.windows(size, args.stride, args.min_frames)
    index = SimilarityIndex.open_or_create(
        out,
        dim=encoder.dim,
        max_elements=max(det.index_max_elements, len(windows)),
        m=det.index_m,
        ef_construction=det.index_ef_construction,
        ef=det.index_ef,
    )
    todo = [w for w in windows if not index.contains(window_id(archive.satellite, w[-1]))]
    print(
        f"archive {archive.root}: {len(archive)} frames, {len(windows)} windows of up to {size} frames "
        f"(stride {args.stride}); {len(windows) - len(todo)} already indexed, {len(todo)} to add"
    )
    out.mkdir(parents=True, exist_ok=True)
    store = FrameVectorStore(frame_vector_dir(out, sha), encoder.dim)
    needed = [t for w in todo for t in w]
    encoded = ensure_frame_vectors(
        archive, needed, encoder, store, batch=args.batch, workers=args.workers, progress=not args.quiet
    )
    added = 0
    step = 5000
    try:
        with tqdm(total=len(todo), desc="index windows", unit="window", disable=args.quiet or not todo) as bar:
            for lo in range(0, len(todo), step):
                chunk = todo[lo : lo + step]
                flat = store.get_many(archive.satellite, [t for w in chunk for t in w]).astype(np.float64)
                starts = np.cumsum([0] + [len(w) for w in chunk[:-1]])
                vecs = np.add.reduceat(flat, starts, axis=0) / np.array([len(w) for w in chunk])[:, None]
                records = [WindowRecord.from_times(archive.satellite, w) for w in chunk]
                added += index.add_many(records, vecs.astype(np.float32))
                bar.update(len(chunk))
    finally:
        # Save even when interrupted: what was added is complete and the rest resumes next run.
        index.save(out)
    print(f"encoded {encoded} frames, added {added} windows; index {out} now holds {len(index)} windows")
    return 0


def format_info(info: dict[str, Any]) -> str:
    """Human-readable lines for ``SimilarityIndex.info()``."""
    mib = info["memory_bytes_estimate"] / 2**20
    lines = [
        f"windows:        {info['size']:,}",
        f"satellites:     {', '.join(f'{s} ({n:,})' for s, n in info['satellites'].items()) or '-'}",
        f"time coverage:  {info['first_start'] or '-'} .. {info['last_end'] or '-'}",
        f"vectors:        dim {info['dim']}, space {info['space']}",
        f"HNSW:           M={info['m']} ef_construction={info['ef_construction']} ef={info['ef']} "
        f"max_elements={info['max_elements']:,}",
        f"memory:         ~{mib:,.1f} MiB estimated ({info['bytes_per_vector']:.0f} bytes per vector)",
    ]
    if "disk_bytes" in info:
        lines.append(f"on disk:        {info['disk_bytes'] / 2**20:,.1f} MiB")
    return "\n".join(lines)


def run_info(args: argparse.Namespace) -> int:
    from satwatch.services.retrieval.index import SimilarityIndex

    settings = load_settings(args.config)
    path = Path(args.index) if args.index else default_index_dir(settings)
    index = SimilarityIndex.load(path)
    info = index.info()
    info["path"] = str(path)
    info["disk_bytes"] = sum(p.stat().st_size for p in path.glob("snap-*/*") if p.is_file())
    build_file = path / BUILD_FILE
    if build_file.is_file():
        info["build"] = json.loads(build_file.read_text())
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(f"index:          {path}")
        print(format_info(info))
        if "build" in info:
            print(f"encoder:        {info['build'].get('encoder')} ({str(info['build'].get('encoder_sha256'))[:12]})")
    return 0
