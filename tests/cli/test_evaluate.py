import pytest

from satwatch.cli import build_parser, main


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
