"""The texture scene, checked against the real COMS frames it is made from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from satwatch.services.frames.archive import Archive
from satwatch.services.frames.frame import CHANNELS, read_image
from satwatch.services.frames.profiles import get_profile
from satwatch.services.simulator.calibration import wasserstein_1d
from satwatch.services.simulator.scene import SceneSimulator, SimConfig
from satwatch.services.simulator.texture import TextureSimulator
from satwatch.services.simulator.texturebank import TextureBank, TextureError, build_bank
from satwatch.services.simulator.titleband import BAND_ROWS, GlyphAtlas, title_text

RAW = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "study" / "raw_images"
pytestmark = pytest.mark.skipif(not RAW.is_dir(), reason="needs ../shared/data/study/raw_images")


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> TextureBank:
    return build_bank(RAW, factor=4, cache_dir=tmp_path_factory.mktemp("bank"))


def _cfg(**kw: object) -> SimConfig:
    base = {"seed": 5, "days": 0.5, "scene": "texture", "start": datetime(2011, 3, 3, tzinfo=UTC), "textures": str(RAW)}
    base.update(kw)
    return SimConfig(**base)  # type: ignore[arg-type]


def test_title_band_glyphs_rebuild_a_real_band_exactly() -> None:
    folders = sorted(RAW.iterdir())
    atlas = GlyphAtlas()
    for d in folders[:-1]:
        for c in CHANNELS:
            t = datetime.strptime(d.name[:12], "%Y%m%d%H%M")
            atlas.learn(read_image(next(d.glob(f"*_{c}_*"))), title_text(c, t))
    last = folders[-1]
    t = datetime.strptime(last.name[:12], "%Y%m%d%H%M")
    real = read_image(next(last.glob("*_ir01_*")))
    # The last frame's own band, drawn from glyphs cut from the other frames only.
    assert np.array_equal(atlas.render(title_text("ir01", t), real.shape[1]), real[:BAND_ROWS])


def test_bank_holds_every_real_frame_at_the_shrunk_scale(bank: TextureBank) -> None:
    assert bank.shape == (300, 375)
    assert len(bank.times) == 25
    assert set(bank.departures) == {"ir01", "ir02", "wv"}
    assert 0.005 < float(bank.overlay_cover.mean()) < 0.03  # KMA's coastlines and grid, about 1.3% of pixels


def test_a_folder_without_frames_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(TextureError, match="real"):
        build_bank(tmp_path / "missing")
    with pytest.raises(TextureError, match="two or more"):
        build_bank(tmp_path)


def test_same_seed_same_frames_and_frames_the_detector_accepts(bank: TextureBank) -> None:
    a = list(TextureSimulator(_cfg(days=0.05), bank).frames())
    b = list(TextureSimulator(_cfg(days=0.05), bank).frames())
    c = list(TextureSimulator(_cfg(days=0.05, seed=6), bank).frames())
    assert [f.data.tobytes() for f in a] == [f.data.tobytes() for f in b]
    assert a[0].data.tobytes() != c[0].data.tobytes()
    assert a[0].data.shape == get_profile("COMS-1").shrunk_shape


def test_values_are_far_closer_to_real_frames_than_the_procedural_scene(bank: TextureBank) -> None:
    real = list(Archive(RAW).frames())
    tex = [f for f in TextureSimulator(_cfg(days=0.6, events=False), bank).frames() if 6 <= f.time.hour <= 13][::3]
    pro = [
        f for f in SceneSimulator(_cfg(days=0.6, events=False, scene="procedural")).frames() if 6 <= f.time.hour <= 13
    ][::3]
    for c in range(4):
        r = np.concatenate([f.data[c].ravel() for f in real])
        w_tex = wasserstein_1d(np.concatenate([f.data[c].ravel() for f in tex]), r)
        w_pro = wasserstein_1d(np.concatenate([f.data[c].ravel() for f in pro]), r)
        assert w_tex < 8.0, (CHANNELS[c], w_tex)
        assert w_tex * 4 < w_pro, (CHANNELS[c], w_tex, w_pro)


def test_frames_change_between_frames_about_as_much_as_real_ones(bank: TextureBank) -> None:
    real = np.stack([f.data for f in Archive(RAW).frames()]).astype(float)
    sim = np.stack([f.data for f in TextureSimulator(_cfg(days=0.3, events=False), bank).frames()]).astype(float)
    real_change = np.abs(np.diff(real[:8], axis=0)).mean()  # the first eight are 15 minutes apart
    sim_change = np.abs(np.diff(sim, axis=0)).mean()
    assert 0.5 * real_change < sim_change < 1.5 * real_change


def test_events_are_drawn_where_and_when_their_labels_say(bank: TextureBank) -> None:
    cfg = _cfg(days=1.5)
    with_events = TextureSimulator(cfg, bank)
    without = list(TextureSimulator(_cfg(days=1.5, events=False), bank).frames())
    assert with_events.events, "a day and a half holds events"
    for f, g in zip(with_events.frames(), without, strict=True):
        diff = np.argwhere((f.data != g.data).any(axis=0))
        active = with_events.labels_at(f.time)
        if not active:
            assert diff.size == 0
            continue
        for y, x in diff[:: max(1, len(diff) // 200)]:
            assert any(e.bbox[0] <= x < e.bbox[2] and e.bbox[1] <= y < e.bbox[3] for e in active)


def test_open_scene_refuses_a_size_that_is_neither_native_nor_shrunk(bank: TextureBank) -> None:
    with pytest.raises(ValueError, match="native"):
        TextureSimulator(_cfg(width=400, height=300), bank)
