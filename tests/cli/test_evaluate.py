from pathlib import Path

import pytest

from satwatch.cli import build_parser, main
from satwatch.services.detection.quality import QUALITY_KINDS


def test_evaluate_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    for opt in ("--out", "--model-dir", "--archive", "--skip-encoder", "--skip-anomaly"):
        assert opt in out


def test_evaluate_defaults() -> None:
    args = build_parser().parse_args(["evaluate"])
    assert str(args.out) == "docs/report" and args.model_dir is None


def test_evaluate_rejects_missing_archive(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    rc = main(["evaluate", "--archive", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err


def test_evaluate_writes_the_encoder_report_from_an_archive(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The shipped encoder over a real (simulated, PNG) archive: report, plots and the bounding table."""
    import json

    archive, out = tmp_path / "archive", tmp_path / "report"
    assert main(["simulate", "--out", str(archive), "--days", "1", "--seed", "5", "--quiet"]) == 0
    assert main(["evaluate", "--archive", str(archive), "--skip-anomaly", "--out", str(out), "--no-progress"]) == 0
    text = (out / "README.md").read_text()
    assert "## Frame encoder" in text and "What bounds it" in text
    assert (out / "encoder_scatter.png").stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())["encoder"]
    refs = metrics["reference_distances"]
    assert len(refs) == 4
    assert set(refs["L2 between window-mean CDFs"]) == {"all", "disjoint", "study_triplets"}
    assert metrics["study_triplet_pairs"]["pairs"] > 0
    # On any archive the metric itself, orderless, tracks the ground truth closely (similarity vs distance).
    ks = refs["KS statistic on window-mean CDFs (not Euclidean)"]
    assert ks["all"] < -0.8
    assert -1.0 <= metrics["all_pairs"]["pearson"] < 0.0


def test_evaluate_scores_a_labelled_archive_with_an_autoencoder_only_folder(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A researcher's archive and labels (TSV, no region), a --model-dir holding only an autoencoder (the shipped
    one, copied as a 'train autoencoder --out' folder would hold it): per-kind report, every frame's scores."""
    import json
    import logging
    import shutil

    from satwatch.services.detection.scores import COLUMNS, read_scores
    from satwatch.services.models.modelcard import packaged_model_dir
    from satwatch.services.training.labels import load_labels

    archive, out, model = tmp_path / "archive", tmp_path / "report", tmp_path / "ae"
    simulate = ["simulate", "--out", str(archive), "--days", "1", "--seed", "4001", "--geography", "7", "--quiet"]
    assert main(simulate) == 0
    events = load_labels(archive / "labels.json")
    (archive / "labels.json").unlink()
    labels = tmp_path / "events.tsv"
    labels.write_text("".join(f"{e.kind}\t{e.start.isoformat()}\t{e.end.isoformat()}\n" for e in events))
    model.mkdir()
    for name in ("autoencoder.onnx", "autoencoder.card.json"):
        shutil.copy(packaged_model_dir() / name, model / name)
    scores = tmp_path / "scores.tsv"
    with caplog.at_level(logging.INFO, logger="satwatch.services.models.locate"):
        rc = main(
            [
                "evaluate",
                "--archive",
                str(archive),
                "--labels",
                str(labels),
                "--model-dir",
                str(model),
                "--skip-encoder",
                "--out",
                str(out),
                "--scores-out",
                str(scores),
                "--no-progress",
            ]  # fmt: skip
        )
    assert rc == 0
    assert "has no encoder: using the shipped encoder" in caplog.text
    text = (out / "README.md").read_text()
    assert f"archive {archive.name} with labels events.tsv" in text and "its unlabelled frames" in text
    m = json.loads((out / "metrics.json").read_text())["autoencoder"]
    kinds = {e.kind for e in events}
    assert set(m["per_kind"]) == kinds and m["events"] == len(events)
    for kind in kinds:
        assert f"| {kind} |" in text
    rows = read_scores(scores)
    assert list(rows[0]) == list(COLUMNS) and len(rows) == m["frames"] == 96
    for r in rows:  # the terms add up to the score; labels and the alert the detector raises are recorded
        assert float(r["pixel"]) + float(r["consistency"]) + float(r["lines"]) == pytest.approx(float(r["score"]), 1e-4)
        above = float(r["score"]) > float(r["threshold"])
        assert r["alert"] in {"", "anomaly", *QUALITY_KINDS}
        assert r["alert"] != "anomaly" or above
        assert r["alert"] != "" or not above
    assert sum(1 for r in rows if r["labels"]) == m["event_frames"] > 0
    # Beside the autoencoder alone, the detector's decision: faults by the data-quality checks, by route.
    decision = m["decision"]
    assert "## What the detector decides" in text and set(decision["per_kind"]) == kinds
    assert {v["route"] for k, v in decision["per_kind"].items() if k in QUALITY_KINDS} <= {"data_quality"}
    faults = {r["alert"] for r in rows if r["alert"] not in ("", "anomaly")}
    assert faults and faults <= set(QUALITY_KINDS)


def test_evaluate_labels_need_an_archive(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    labels = tmp_path / "l.tsv"
    labels.write_text("")
    assert main(["evaluate", "--labels", str(labels), "--out", str(tmp_path / "r")]) == 2
    assert "give --archive" in capsys.readouterr().err


def test_evaluate_on_the_real_frames_with_no_event_labelled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The study's 25 real COMS-1 frames (1500 x 1300, title band, overlays, two missing times) as an archive
    with an empty labels file: every frame scored, false alerts counted on all of them at the 15-minute cadence."""
    import json

    from satwatch.services.detection.scores import read_scores
    from satwatch.services.models.anomaly import AnomalyScorer
    from satwatch.services.models.modelcard import packaged_model_dir
    from tests.helpers import shared_data

    raw = shared_data("study", "raw_images")
    labels, out, scores = tmp_path / "none.tsv", tmp_path / "report", tmp_path / "scores.tsv"
    labels.write_text("kind\tstart\tend\n")
    argv = ["evaluate", "--archive", str(raw), "--labels", str(labels), "--skip-encoder", "--out", str(out)]
    assert main([*argv, "--scores-out", str(scores), "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())["autoencoder"]
    rows = read_scores(scores)
    assert len(rows) == m["frames"] == 25 and m["event_frames"] == 0
    assert m["normal_days"] == pytest.approx(25 / 96)
    above = sum(float(r["score"]) > float(r["threshold"]) for r in rows)
    assert m["false_alerts_per_day"] == pytest.approx(above / (25 / 96))
    text = (out / "README.md").read_text()
    assert "its unlabelled frames" in text and "anomaly_maps.png" not in text  # no event, no maps promised
    # No --model-dir: the archive's COMS-1 profile names the set trained for real imagery (autoencoder v2):
    # no real frame is an instrument fault, a model mismatch or a weather alert.
    assert "from `onnx_models/autoencoder-v2`" in text, "the report names the folder that scored"
    assert "temporal-novelty term" in text and "patch-texture term" in text, "and how v2 scores"
    v2 = AnomalyScorer.load(packaged_model_dir() / "autoencoder-v2").threshold
    assert all(float(r["threshold"]) == pytest.approx(v2) for r in rows), "scored by the v2 autoencoder"
    assert m["decision"]["normal_faults_by_kind"] == {}
    assert m["decision"]["false_alerts_per_day"]["weather"] == 0.0 and above == 0
    # The procedural simulator's set (the shipped root) does not fit real imagery: every frame is the
    # operators' model_mismatch, none a weather alert, and the report says so.
    root = str(packaged_model_dir())
    assert main([*argv, "--model-dir", root, "--scores-out", str(scores), "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())["autoencoder"]
    text = (out / "README.md").read_text()
    assert m["decision"]["normal_faults_by_kind"] == {"model_mismatch": 25}
    assert m["decision"]["false_alerts_per_day"]["weather"] == 0.0
    assert {r["alert"] for r in read_scores(scores)} == {"model_mismatch"}
    assert "25 of 25 frames are imagery this model set was not trained for" in text


def test_a_procedural_archive_is_evaluated_with_the_simulators_set_by_default(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Its simulation.json says procedural: no --model-dir means the set trained on that scene, not COMS-1's."""
    import json

    from satwatch.services.detection.scores import read_scores
    from satwatch.services.models.anomaly import AnomalyScorer

    archive, out, scores = tmp_path / "archive", tmp_path / "report", tmp_path / "scores.tsv"
    assert main(["simulate", "--out", str(archive), "--days", "0.25", "--seed", "4001", "--quiet"]) == 0
    assert "serve it with `satwatch detect --model-dir onnx_models`" in capsys.readouterr().out
    argv = ["evaluate", "--archive", str(archive), "--labels", str(archive / "labels.json"), "--skip-encoder"]
    assert main([*argv, "--out", str(out), "--scores-out", str(scores), "--no-progress"]) == 0
    assert "(no --model-dir: a procedural simulated archive, served by the set trained on that simulator)" in (
        capsys.readouterr().out
    )
    root = AnomalyScorer.load(None).threshold
    assert all(float(r["threshold"]) == pytest.approx(root) for r in read_scores(scores))
    m = json.loads((out / "metrics.json").read_text())["autoencoder"]
    assert m["decision"]["false_alerts_per_day"]["weather"] <= 4.0, "not an alert every frame"


def _real_frames_three_times(folder: Path) -> Path:
    """The study's 25 real frames (6.5 hours) linked three times in a row under later times: 75 frames, enough
    for the encoder's test block (the last 60%) to hold windows that share no frame."""
    import re
    from datetime import datetime, timedelta

    from tests.helpers import shared_data

    raw = shared_data("study", "raw_images")
    for copy in range(3):
        for png in sorted(raw.rglob("*.png")):
            stamp = re.search(r"(\d{12})\.png$", png.name)
            assert stamp is not None
            t = datetime.strptime(stamp.group(1), "%Y%m%d%H%M") + copy * timedelta(minutes=15 * 27)
            day = folder / f"{t:%Y%m%d%H%M}_image"
            day.mkdir(parents=True, exist_ok=True)
            (day / png.name.replace(stamp.group(1), f"{t:%Y%m%d%H%M}")).symlink_to(png)
    return folder


@pytest.mark.slow
def test_the_encoder_report_needs_no_pytorch_and_serves_real_frames_by_their_profile(tmp_path: Path) -> None:
    """``evaluate --archive`` on real COMS-1 frames in a process where importing torch fails: the encoder report
    is written, by COMS-1's own models (encoder v3, autoencoder v2) with no --model-dir and no --labels."""
    import json
    import subprocess
    import sys

    from satwatch.services.models.modelcard import packaged_model_dir

    archive, out = _real_frames_three_times(tmp_path / "real"), tmp_path / "report"
    argv = ["evaluate", "--archive", str(archive), "--skip-anomaly", "--out", str(out), "--no-progress"]
    code = (
        "import sys; sys.modules['torch'] = None  # any import of torch fails\n"
        "from satwatch.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    shipped = packaged_model_dir()
    assert (
        f"models: encoder {shipped / 'encoder-v3'}, autoencoder {shipped / 'autoencoder-v2'} "
        "(no --model-dir: the COMS-1 profile's set)" in done.stdout
    )
    text = (out / "README.md").read_text()
    assert "## Frame encoder (v3." in text and (out / "encoder_scatter.png").stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())["encoder"]
    assert metrics["test_windows"] == 7 and -1.0 <= metrics["all_pairs"]["pearson"] < 0.0


def test_an_archive_too_short_for_the_encoder_report_says_so() -> None:
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from satwatch.services.training.data import FrameSet
    from satwatch.services.training.report import encoder_test_windows

    def frames(n: int) -> FrameSet:
        times = [datetime(2011, 3, 3, tzinfo=UTC) + i * timedelta(minutes=15) for i in range(n)]
        return FrameSet("COMS-1", times, np.zeros((n, 4, 2, 2), np.uint8), [()] * n)

    with pytest.raises(ValueError, match=r"18 frames .* hold 0 window\(s\).*at least 67 frames.*--skip-encoder"):
        encoder_test_windows(frames(30))  # the test block, its last 60%: 18 frames
    with pytest.raises(ValueError, match=r"36 frames .* hold 5 window\(s\), none disjoint"):
        encoder_test_windows(frames(60))
    assert len(encoder_test_windows(frames(67))) == 6


def test_an_archive_without_labels_is_scored_as_normal_frames_not_the_simulated_week(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """``--archive`` without ``--labels`` on the 25 real study frames (no labels file of their own): the report
    scores those frames, all as normal weather (false alerts, score distribution against the threshold), with
    the archive's model set, and says so; it never falls back to the simulated held-out week."""
    import json

    from tests.helpers import shared_data

    raw = shared_data("study", "raw_images")
    out = tmp_path / "report"
    assert main(["evaluate", "--archive", str(raw), "--skip-encoder", "--out", str(out), "--no-progress"]) == 0
    assert "autoencoder-v2" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())["autoencoder"]
    assert m["frames"] == 25 and m["event_frames"] == 0
    assert m["normal_days"] == pytest.approx(25 / 96)
    d = m["normal_scores"]
    assert d["frames"] == 25 and d["above_threshold"] == 0 and d["max"] < d["threshold"]
    assert m["false_alerts_per_day"] == 0.0 and m["decision"]["false_alerts_per_day"]["weather"] == 0.0
    text = (out / "README.md").read_text()
    assert f"archive {raw.name} without labels" in text and "all counted as normal weather" in text
    assert "No labelled event frames" in text and "Scores of the 25 normal frames" in text
    assert "held-out simulation" not in text and "Bar for ROC AUC" not in text and "| event kind |" not in text
    assert "give --labels FILE to measure detection" in text
