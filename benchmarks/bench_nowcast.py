"""Benchmark the nowcasts: skill by lead time (15 min .. 3 h) of analogs against persistence and optical flow.

Run: python benchmarks/bench_nowcast.py [--days 4] [--seed 7] [--every 1] [--plot docs/img/nowcast_skill.png]

Two held-out sets:

1. **Simulated**: one simulated COMS-1 stream (375 x 300, 4 channels, events on) of ``--days`` days (the past)
   followed by one more day (the queries) and three hours (their truth). A nowcast is issued every ``--every``
   hours of the held-out day; analogs are the ``--k`` most similar past windows by the exact ground-truth
   metric, admitted only if what followed them ended before the query window began.
2. **Real**: the study's 25 COMS-1 frames (``../shared/data/study/raw_images``, 2011-03-03 06:45..13:15,
   08:30 and 11:30 missing): persistence and optical flow issued at every frame with three frames before it,
   verified at each lead the day still holds (fewer cases at long leads; none past 6.5 h of data). Analogs
   cannot be verified here: no past window has three hours after it that end before a query window begins.

Scores on ir01 with pysteps: CSI and FSS (9 px) of cold cloud (<= 235 K), MAE in kelvin; and the study's cell
similarity. Prints the tables (markdown with --markdown) and the seconds each part took.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta
from pathlib import Path

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.profiles import get_profile
from satwatch.services.nowcast.forecast import MemorySource
from satwatch.services.nowcast.run import Nowcaster, NowcastOptions, hindcast
from satwatch.services.nowcast.verify import LeadScores, Scoreboard, skill_table
from satwatch.services.simulator.scene import GENERATOR_VERSION, SceneSimulator, SimConfig

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "study" / "raw_images"


def markdown(scores: list[LeadScores], leads: tuple[int, ...] = (15, 30, 60, 120, 180)) -> str:
    """Markdown rows: lead, then CSI / FSS / MAE / cell per method, at a few leads."""
    methods = list(dict.fromkeys(s.method for s in scores))
    by = {(s.method, int(s.lead.total_seconds() // 60)): s for s in scores}
    out = [
        "| lead | cases | " + " | ".join(f"{m} CSI / FSS / MAE K / cell" for m in methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for m in leads:
        first = by.get((methods[0], m))
        if first is None:
            continue
        cells = []
        for meth in methods:
            s = by.get((meth, m))
            if s is None:
                cells.append("-")
            elif s.method == "analog_cells":
                cells.append(f"- / - / - / {s.cell_similarity:.3f}")
            else:
                cells.append(f"{s.csi:.3f} / {s.fss:.3f} / {s.mae_k:.2f} / {s.cell_similarity:.3f}")
        out.append(f"| {m // 60}:{m % 60:02d} | {first.cases} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def simulated(days: float, seed: int, every: float, k: int) -> list[LeadScores]:
    t0 = time.perf_counter()
    cfg = SimConfig(seed=seed, days=days + 1 + 3 / 24)
    frames = list(SceneSimulator(cfg).frames())
    took = time.perf_counter() - t0
    print(f"simulated {len(frames)} frames (seed {seed}, generator v{GENERATOR_VERSION}) in {took:.0f} s", flush=True)
    source = MemorySource(frames)
    options = NowcastOptions(
        methods=("persistence", "optical_flow", "analog", "analog_change"), k=k, cell_histograms=True
    )
    nowcaster = Nowcaster(source, get_profile(cfg.satellite), options)
    first = cfg.start + timedelta(days=days)
    issues = [first + timedelta(hours=every * i) for i in range(int(24 / every))]
    t0 = time.perf_counter()
    board = Scoreboard()
    sims = []
    for t in issues:
        run = nowcaster.issue(t)
        sims += [a.similarity for a in run.analogs]
        nowcaster.verify(run, board)
    print(
        f"held-out day {first:%Y-%m-%d}: {len(issues)} issue times in {time.perf_counter() - t0:.0f} s; "
        f"analog similarity mean {sum(sims) / max(len(sims), 1):.3f}, best {max(sims, default=float('nan')):.3f}",
        flush=True,
    )
    return board.table()


def real(data: Path) -> list[LeadScores]:
    t0 = time.perf_counter()
    archive = Archive(data, "COMS-1")
    archive.require_frames()
    source = MemorySource([archive.load(t) for t in archive.times])  # shrunk once by the Nowcaster's cache
    options = NowcastOptions(methods=("persistence", "optical_flow", "optical_flow_darts"))
    nowcaster = Nowcaster(source, archive.profile, options)
    board = hindcast(nowcaster, archive.times[3:-1])
    print(f"real COMS frames: {len(archive.times) - 4} issue times in {time.perf_counter() - t0:.0f} s", flush=True)
    return board.table()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=4.0, help="simulated past before the held-out day")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--every", type=float, default=1.0, help="hours between issue times on the held-out day")
    parser.add_argument("--k", type=int, default=5, help="analogs")
    parser.add_argument("--real", type=Path, default=REAL, help="the study's real frames")
    parser.add_argument("--no-real", action="store_true", help="skip the real frames (about 5 minutes)")
    parser.add_argument("--plot", type=Path, help="skill-by-lead picture (simulated); the real one beside it")
    parser.add_argument("--markdown", action="store_true", help="also print markdown tables")
    args = parser.parse_args()

    sim = simulated(args.days, args.seed, args.every, args.k)
    print(skill_table(sim), flush=True)
    rl: list[LeadScores] = []
    if args.real.is_dir() and not args.no_real:
        rl = real(args.real)
        print(skill_table(rl), flush=True)
    elif not args.no_real:
        print(f"the study's real frames are not in {args.real}: real part skipped", flush=True)
    if args.markdown:
        print(markdown(sim), flush=True)
        if rl:
            print(markdown(rl), flush=True)
    if args.plot:
        from satwatch.services.nowcast.plot import plot_skill

        plot_skill(sim, args.plot, f"simulated held-out day ({args.days:g} days of past, k={args.k})")
        if rl:
            other = args.plot.with_name(args.plot.stem + "_real" + args.plot.suffix)
            plot_skill(rl, other, "real COMS-1 frames, 2011-03-03 06:45..13:15")
        print(f"plots: {args.plot}", flush=True)


if __name__ == "__main__":
    main()
