from pathlib import Path

import pytest

from satwatch.cli import build_parser, main


def test_train_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for opt in ("--archive", "--out", "--epochs", "--batch-size", "--lr", "--seed", "--device", "--resume"):
        assert opt in out
    assert "encoder" in out and "autoencoder" in out


def test_train_parses_arguments() -> None:
    args = build_parser().parse_args(["train", "encoder", "--out", "x", "--epochs", "3", "--device", "cpu"])
    assert args.model == "encoder" and args.epochs == 3 and str(args.out) == "x"


def test_train_rejects_missing_archive(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    rc = main(["train", "autoencoder", "--archive", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_labels_need_an_archive(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    labels = tmp_path / "events.tsv"
    labels.write_text("fog\t2024-07-01T06:00Z\t2024-07-01T07:00Z\n")
    rc = main(["train", "autoencoder", "--labels", str(labels), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "give --archive DIR too" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--labels" in capsys.readouterr().out


def test_train_encoder_defaults_to_v2_and_takes_extra_archives() -> None:
    args = build_parser().parse_args(["train", "encoder", "--out", "x", "--archive", "a", "--extra-archive", "b"])
    assert args.arch == "v2" and [str(p) for p in args.archive] == ["a"]  # --archive repeats (the autoencoder's)
    assert [str(p) for p in args.extra_archive] == ["b"]
    assert build_parser().parse_args(["train", "encoder", "--out", "x", "--arch", "v1"]).arch == "v1"


def test_train_encoder_parts_default_to_the_shipped_window_mean() -> None:
    args = build_parser().parse_args(["train", "encoder", "--out", "x"])
    assert (args.parts, args.dim) == (1, 128)  # v2.0, the shipped map of the window mean
    args = build_parser().parse_args(["train", "encoder", "--out", "x", "--parts", "2", "--dim", "256"])
    assert (args.parts, args.dim) == (2, 256)


def test_train_encoder_takes_the_v22_recipe() -> None:
    args = build_parser().parse_args(["train", "encoder", "--out", "x"])
    assert (args.map, args.part_filled, args.valid_archive) == ("linear", 0.0, None)
    argv = ["train", "encoder", "--out", "x", "--parts", "2", "--dim", "256", "--map", "conv", "--part-filled", "0.3"]
    args = build_parser().parse_args([*argv, "--valid-archive", "v"])
    assert (args.map, args.part_filled, [str(p) for p in args.valid_archive]) == ("conv", 0.3, ["v"])


def test_train_encoder_sketch_learns_nothing_so_takes_no_training_archives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    args = build_parser().parse_args(
        ["train", "encoder", "--out", "x", "--map", "sketch", "--parts", "2", "--dim", "256"]
    )
    assert (args.map, args.parts, args.dim) == ("sketch", 2, 256)
    rc = main(["train", "encoder", "--map", "sketch", "--extra-archive", str(tmp_path), "--out", str(tmp_path / "o")])
    assert rc == 2 and "learns nothing" in capsys.readouterr().err


def test_the_closing_line_says_when_there_was_nothing_to_rank() -> None:
    from satwatch.cli.train import autoencoder_summary

    cal = {"calibration": {"frames": 480, "hours_covered": 24}}
    # An archive of normal weather only: no ROC AUC to print, and no "nan".
    normal = autoencoder_summary("out", 4.2, {**cal, "conditioned": {"roc_auc": float("nan")}})
    assert "nan" not in normal and "holds no labelled event, so no ROC AUC" in normal
    assert "threshold 4.2 (calibrated on 480 normal frames, 24 of 24 hours)" in normal
    scored = {**cal, "conditioned": {"roc_auc": 0.95123, "false_alerts_per_day": 0.5}, "test_data": {}}
    assert autoencoder_summary("out", 4.2, scored).endswith("held-out ROC AUC 0.9512, false alerts/day 0.50")
