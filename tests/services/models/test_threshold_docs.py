"""One threshold story: no document suggests an anomaly threshold off the model card's scale."""

from __future__ import annotations

import re
from pathlib import Path

from satwatch.services.models.modelcard import load_card, packaged_model_dir

ROOT = Path(__file__).resolve().parents[3]
SUGGESTION = re.compile(
    r"(?:anomaly_threshold\s*=\s*|ANOMALY_THRESHOLD[=:]\s*\"?|--threshold[ =]|threshold=)([0-9]*\.?[0-9]+)"
)


def test_documented_threshold_overrides_are_on_the_cards_scale() -> None:
    card = load_card(packaged_model_dir() / "autoencoder.card.json")
    calibrated = card.thresholds["anomaly"]
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "deploy").rglob("*.yml"))]
    found = []
    for path in files:
        for m in SUGGESTION.finditer(path.read_text()):
            value = float(m.group(1))
            found.append(value)
            assert calibrated / 4 <= value <= calibrated * 8, (
                f"{path.relative_to(ROOT)} suggests threshold {value}, off the scale of the card's {calibrated:.3g}"
            )
    assert found  # the docs do show an override somewhere
