"""Benchmark the nowcasts: skill by lead time (15 min .. 3 h) of analogs against persistence and optical flow.

Run: python benchmarks/bench_nowcast.py [--days 4] [--seed 7] [--every 1] [--plot docs/img/nowcast_skill.png]
     python benchmarks/bench_nowcast.py --scene texture [--past DIR] [--dev DIR] [--heldout DIR] [--every 1]

``--scene texture`` measures where analogs have a chance: streams of the texture scene (real COMS cloud
fields, whose windows are as alike as a real week's). Three archives, each written by ``satwatch simulate
--scene texture`` if its folder does not exist yet: the past (seed 501, 8 days from 2024-03-01, events on),
a development period (seed 801, 2 days from 2024-06-01) on which ``analog_blend``'s weights are fitted per
lead, and the held-out days (seed 701, 4 days from 2024-05-01) on which every method is scored; analogs for
both come from the past only. Issue times run every ``--every`` hours from the first full window to three
hours before the end.

Without it, two held-out sets:

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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.profiles import get_profile
from satwatch.services.nowcast.analog import frame_at
from satwatch.services.nowcast.blend import BlendFit, BlendWeights
from satwatch.services.nowcast.forecast import FrameSource, MemorySource, load_shrunk
from satwatch.services.nowcast.run import Nowcaster, NowcastOptions, NowcastRun, hindcast, issue_times
from satwatch.services.nowcast.summary import alert_summary
from satwatch.services.nowcast.verify import SCORED_CHANNEL, LeadScores, Scoreboard, cold_cloud_grey, skill_table
from satwatch.services.simulator.scene import GENERATOR_VERSION, SceneSimulator, SimConfig, write_archive

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


#: The texture-scene archives: (default folder, seed, days, first frame).
TEXTURE_SETS = {
    "past": (Path("var/tex-train"), 501, 8.0, datetime(2024, 3, 1, tzinfo=UTC)),
    "dev": (Path("var/tex-dev"), 801, 2.0, datetime(2024, 6, 1, tzinfo=UTC)),
    "heldout": (Path("var/tex-heldout"), 701, 4.0, datetime(2024, 5, 1, tzinfo=UTC)),
}


def texture_archive(name: str, folder: Path | None) -> MemorySource:
    """One texture-scene archive in memory, simulated into ``folder`` first if it is not there."""
    default, seed, days, start = TEXTURE_SETS[name]
    folder = folder or default
    if not folder.is_dir():
        t0 = time.perf_counter()
        write_archive(SimConfig(seed=seed, days=days, start=start, scene="texture"), folder, progress=False)
        took = time.perf_counter() - t0
        print(f"{name}: simulated {folder} (seed {seed}, {days:g} days) in {took:.0f} s", flush=True)
    archive = Archive(folder, "COMS-1")
    archive.require_frames()
    return MemorySource([archive.load(t) for t in archive.times])


def _issues(source: FrameSource, every: float) -> list[datetime]:
    first = source.times[0] + timedelta(hours=6)
    return issue_times(source, first, source.times[-1] - timedelta(hours=3), timedelta(hours=every))


def _sims(runs_sims: list[float]) -> str:
    n = max(len(runs_sims), 1)
    return f"analog similarity mean {sum(runs_sims) / n:.3f}, best {max(runs_sims, default=float('nan')):.3f}"


def fit_blend(past: FrameSource, dev: FrameSource, every: float, k: int) -> tuple[BlendWeights, BlendWeights]:
    """The blends' weights per lead, least squares on the scored channel over the development period: with the
    latest frame as the base (``analog_blend``) and with the optical-flow forecast (``analog_flow_blend``)."""
    profile = get_profile("COMS-1")
    options = NowcastOptions(methods=("analog", "analog_change", "optical_flow"), k=k)
    nowcaster = Nowcaster(dev, profile, options, past=past)
    fit, flow_fit, sims = BlendFit(), BlendFit(), []
    t0 = time.perf_counter()
    times = _issues(dev, every)
    for t in times:
        run = nowcaster.issue(t)
        sims += [a.similarity for a in run.analogs]
        if "analog" not in run.forecasts:
            continue
        ch = run.input.channels.index(SCORED_CHANNEL)
        last = run.input.frames[-1, ch].astype("float64")
        for i, lead in enumerate(nowcaster.leads):
            obs_t = frame_at(dev, t, lead, profile.cadence / 2)
            if obs_t is None:
                continue
            comp = run.forecasts["analog"].fields[i, ch]
            tend = run.forecasts["analog_change"].fields[i, ch] - last
            observed = load_shrunk(dev, obs_t)[ch]
            fit.add(lead, last, tend, comp, observed)
            flow_fit.add(lead, run.forecasts["optical_flow"].fields[i, ch], tend, comp, observed)
    about = f"dev {dev.times[0]:%Y-%m-%d}..{dev.times[-1]:%Y-%m-%d}, {len(times)} issue times, k={k}"
    weights, flow_weights = fit.weights(about), flow_fit.weights(about + ", optical flow base")
    print(f"dev: {len(times)} issue times in {time.perf_counter() - t0:.0f} s; {_sims(sims)}", flush=True)
    for name, w in (("blend", weights), ("flow blend", flow_weights)):
        print(
            f"{name} weights (lead min: a tendency, b composite): "
            + ", ".join(f"{m}: {a:+.3f} {b:.3f}" for m, (a, b) in w.weights.items()),
            flush=True,
        )
    return weights, flow_weights


def digest_errors(
    run: NowcastRun, held: FrameSource, past: FrameSource, weights: BlendWeights, out: dict[str, dict[int, list[float]]]
) -> None:
    """The alert digest's cold-cloud cover at +1/+2/+3 h against what happened: today's cover (persistence),
    the analogs' (as alerts carried it), and blended towards today's by the fitted weights."""
    if not run.analogs:
        return
    cadence = get_profile("COMS-1").cadence
    latest, chans, t = run.input.frames[-1], run.input.channels, run.input.issued
    raw = alert_summary(latest, chans, t, run.analogs, past, cadence)
    blended = alert_summary(latest, chans, t, run.analogs, past, cadence, blend=weights)
    if raw is None or blended is None:
        return
    ch, thr = chans.index(SCORED_CHANNEL), cold_cloud_grey()
    for o_raw, o_bl in zip(raw.outlook, blended.outlook, strict=True):
        obs_t = frame_at(held, t, o_raw.lead, cadence / 2)
        if obs_t is None:
            continue
        obs = float((load_shrunk(held, obs_t)[ch] >= thr).mean())
        h = int(o_raw.lead.total_seconds() // 3600)
        for name, pred in (
            ("today's (persist)", raw.cold_fraction_now),
            ("analogs", o_raw.cold_fraction),
            ("blended", o_bl.cold_fraction),
        ):
            out.setdefault(name, {}).setdefault(h, []).append(100 * abs(pred - obs))


def texture(args: argparse.Namespace) -> list[LeadScores]:
    """Skill by lead on the texture scene's held-out days, analog_blend fitted on the development period."""
    past = texture_archive("past", args.past)
    dev = texture_archive("dev", args.dev)
    held = texture_archive("heldout", args.heldout)
    print(f"past {len(past.times)} frames, dev {len(dev.times)}, held-out {len(held.times)}", flush=True)
    weights, flow_weights = fit_blend(past, dev, args.every, args.k)
    if args.weights_out:
        args.weights_out.write_text(weights.to_json() + "\n")
        flow_out = args.weights_out.with_name(args.weights_out.stem + "-flow" + args.weights_out.suffix)
        flow_out.write_text(flow_weights.to_json() + "\n")
    methods = ("persistence", "optical_flow", "analog", "analog_change", "analog_blend", "analog_flow_blend")
    options = NowcastOptions(methods=methods, k=args.k, cell_histograms=True, blend=weights, flow_blend=flow_weights)
    nowcaster = Nowcaster(held, get_profile("COMS-1"), options, past=past)
    board, sims = Scoreboard(), []
    t0 = time.perf_counter()
    times = _issues(held, args.every)
    days: dict[str, Scoreboard] = {}
    digest: dict[str, dict[int, list[float]]] = {}
    for t in times:
        run = nowcaster.issue(t)
        sims += [a.similarity for a in run.analogs]
        nowcaster.verify(run, board)
        nowcaster.verify(run, days.setdefault(f"{t:%Y-%m-%d}", Scoreboard()))
        digest_errors(run, held, past, weights, digest)
    print(f"held-out: {len(times)} issue times in {time.perf_counter() - t0:.0f} s; {_sims(sims)}", flush=True)
    print("alert digest, cold-cloud cover at +1/+2/+3 h, mean absolute error in points of cover (cases):")
    for name, errs in digest.items():
        print(f"  {name:>18}: " + ", ".join(f"{np.mean(e):.2f} ({len(e)})" for e in errs.values()), flush=True)
    print("by held-out day, 1 h lead, CSI / MAE K:", flush=True)
    for day, b in days.items():
        one = [s for s in b.table() if s.lead == timedelta(hours=1) and s.method != "analog_cells"]
        print(f"  {day} ({one[0].cases} cases): " + ", ".join(f"{s.method} {s.csi:.3f} / {s.mae_k:.2f}" for s in one))
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
    parser.add_argument("--scene", choices=("procedural", "texture"), default="procedural")
    parser.add_argument("--past", type=Path, help="texture: the past archive (simulated there if missing)")
    parser.add_argument("--dev", type=Path, help="texture: the development period archive")
    parser.add_argument("--heldout", type=Path, help="texture: the held-out archive")
    parser.add_argument(
        "--weights-out", type=Path, help="texture: write analog_blend's fitted weights (JSON; and NAME-flow.json)"
    )
    args = parser.parse_args()

    if args.scene == "texture":
        tex = texture(args)
        print(skill_table(tex), flush=True)
        if args.markdown:
            print(markdown(tex), flush=True)
        if args.plot:
            from satwatch.services.nowcast.plot import plot_skill

            plot_skill(tex, args.plot, f"texture scene, held-out days (8 days of past, k={args.k})")
            print(f"plot: {args.plot}", flush=True)
        return

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
