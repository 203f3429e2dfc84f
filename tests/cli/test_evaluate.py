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
