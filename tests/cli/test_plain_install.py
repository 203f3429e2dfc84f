"""A plain install (no extras) runs the detector: nothing on its path imports what only an extra installs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from satwatch.cli import OPTIONAL_MODULES, main

#: Runs in a fresh interpreter where every extra-only module (and the dev tools) fails to import.
BLOCKED = """
import sys
from importlib.abc import MetaPathFinder

BLOCKED = {blocked!r}

class Block(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: not in a plain install)", name=name)
        return None

sys.meta_path.insert(0, Block())
"""

DETECTOR = """
from satwatch.cli import main
from satwatch.services.config import Settings
from satwatch.services.detection.detector import build_detector

try:
    main(["detect", "--help"])
except SystemExit as done:
    assert done.code == 0, done.code
try:
    import onnx  # noqa: F401
except ModuleNotFoundError:
    print("onnx blocked")
settings = Settings()
settings.detector.state_dir = {state!r}
detector = build_detector(settings)
print("threshold", detector.threshold)
detector.close()
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_detector_builds_from_shipped_models_without_any_extra(tmp_path: Path) -> None:
    blocked = set(OPTIONAL_MODULES) | {"scipy", "yaml", "httpx", "playwright", "pytest"}
    code = BLOCKED.format(blocked=blocked) + DETECTOR.format(state=str(tmp_path / "state"))
    done = _run(code)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "onnx blocked" in done.stdout and "threshold" in done.stdout


def test_missing_extra_is_a_one_line_error_naming_it(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import satwatch.cli.broker as broker_cli

    def needs_plot(args: object) -> int:
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    monkeypatch.setattr(broker_cli, "run", needs_plot)
    assert main(["broker", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'satwatch[plot]'" in err and len(err.strip().splitlines()) == 1
