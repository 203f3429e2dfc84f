"""``satwatch detect --model-dir``: one DIR, or PROFILE=DIR per satellite profile."""

from __future__ import annotations

import argparse

import pytest

from satwatch.cli.detect import apply_detector_overrides, parse_model_dirs
from satwatch.services.config import Settings


def _args(*model_dirs: str) -> argparse.Namespace:
    return argparse.Namespace(
        state_dir=None, model_dir=list(model_dirs), threshold=None, metrics_port=None, group_id=None
    )


def test_profile_pairs_become_model_dirs() -> None:
    s = apply_detector_overrides(_args("COMS-1=onnx_models", "GK-2A=models/gk2a"), Settings())
    assert s.detector.model_dirs == {"COMS-1": "onnx_models", "GK-2A": "models/gk2a"}
    assert s.detector.model_dir is None


def test_one_plain_dir_is_the_single_model_set() -> None:
    s = apply_detector_overrides(_args("models/v2"), Settings())
    assert s.detector.model_dir == "models/v2" and s.detector.model_dirs == {}


def test_plain_and_paired_together_are_refused() -> None:
    with pytest.raises(SystemExit, match="not both"):
        parse_model_dirs(["models/v2", "GK-2A=models/gk2a"])
