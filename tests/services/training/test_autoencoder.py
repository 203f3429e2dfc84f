from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from satwatch.services.frames.frame import CHANNELS, Frame  # noqa: E402
from satwatch.services.models.anomaly import AnomalyScorer  # noqa: E402
from satwatch.services.training.autoencoder import (  # noqa: E402
    AE_NORMALISATION,
    CHECK_MARGIN,
    calibrate_threshold,
    export_autoencoder,
    fit_consistency,
    fit_scan_lines,
    frame_outputs,
    model_scores,
    prepare_inputs,
    train_autoencoder,
    with_consistency,
)
from satwatch.services.training.data import FrameSet  # noqa: E402
from satwatch.services.training.models import ConditionedAutoencoder  # noqa: E402


def test_calibrated_threshold_bounds_false_alerts() -> None:
    scores = np.random.default_rng(0).gamma(2.0, 1.0, 960)  # ten days of normal frames
    for rate in (0.5, 1.0, 3.0):
        thr = calibrate_threshold(scores, rate)
        assert (scores > thr).sum() <= rate * 10
        assert (scores > thr).sum() >= rate * 10 - 1
    assert calibrate_threshold(scores, 0.0) > scores.max()


def test_conditioning_changes_output_only_when_enabled() -> None:
    x = torch.rand(2, 4, 96, 80)
    c1, c2 = torch.zeros(2, 4), torch.ones(2, 4)
    for cond_dim, differs in ((4, True), (0, False)):
        torch.manual_seed(0)
        m = ConditionedAutoencoder(cond_dim=cond_dim)
        # FiLM starts as identity; perturb it so the time input matters
        for p in m.parameters():
            p.data += 0.05 * torch.randn_like(p)
        r1, _ = m(x, c1)
        r2, _ = m(x, c2)
        assert (not torch.allclose(r1, r2)) == differs


def test_position_planes_let_the_output_depend_on_where_a_pixel_is() -> None:
    x = torch.full((1, 4, 96, 80), 0.5)
    c = torch.zeros(1, 4)
    for coords in (False, True):
        torch.manual_seed(0)
        recon, _ = ConditionedAutoencoder(coords=coords)(x, c)
        inner = recon[0, :, 16:-16, 16:-16]  # away from the zero padding at the borders
        varies = bool((inner.amax(dim=(1, 2)) - inner.amin(dim=(1, 2)) > 1e-4).any())
        assert varies == coords


def test_folding_the_position_planes_keeps_the_output() -> None:
    torch.manual_seed(1)
    m = ConditionedAutoencoder(coords=True).eval()
    for p in m.parameters():
        p.data += 0.05 * torch.randn_like(p)
    x, c = torch.rand(2, 4, 96, 80), torch.rand(2, 4)
    with torch.no_grad():
        before = m(x, c)
        m.fold_position(96, 80)
        after = m(x, c)
    assert m.folded and m.out_mean.in_channels == m.last_up.conv.out_channels
    for a, b in zip(before, after, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_resume_refuses_a_checkpoint_of_another_network(tmp_path: Path) -> None:
    xt, ct = prepare_inputs(_frames(8, 1), progress=False)
    train_autoencoder(xt, ct, xt, ct, tmp_path, epochs=1, batch_size=8, progress=False, position=False)
    with pytest.raises(ValueError, match="different network"):
        train_autoencoder(
            xt, ct, xt, ct, tmp_path / "b", epochs=2, batch_size=8, resume=tmp_path / "autoencoder.ckpt", progress=False
        )


def _frames(n: int, seed: int) -> FrameSet:
    rng = np.random.default_rng(seed)
    t0 = datetime(2024, 7, 1, tzinfo=UTC)
    yy, xx = np.mgrid[0:300, 0:375]
    data = np.empty((n, 4, 300, 375), dtype=np.uint8)
    for i in range(n):
        wave = 100 + 60 * np.sin(xx / 40.0 + i / 5.0) * np.cos(yy / 50.0)
        data[i] = np.clip(wave[None] + rng.normal(0, 3, (4, 300, 375)), 0, 255)
    return FrameSet("COMS-1", [t0 + timedelta(minutes=15 * i) for i in range(n)], data)


def test_tiny_autoencoder_trains_exports_and_scores(tmp_path: Path) -> None:
    xt, ct = prepare_inputs(_frames(24, 1), progress=False)
    xv, cv = prepare_inputs(_frames(8, 2), progress=False)
    h, w = AE_NORMALISATION.height, AE_NORMALISATION.width
    assert xt.shape == (24, 8, h, w) and xt.dtype == np.float32 and 0 <= xt.min() and xt[:, :4].max() <= 1
    res = train_autoencoder(xt, ct, xv, cv, tmp_path, epochs=2, batch_size=8, progress=False)
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert (tmp_path / "autoencoder.ckpt").is_file()
    more = train_autoencoder(
        xt, ct, xv, cv, tmp_path, epochs=3, batch_size=8, resume=tmp_path / "autoencoder.ckpt", progress=False
    )
    assert [h["epoch"] for h in more.history] == [1, 2, 3]
    thr = calibrate_threshold(model_scores(more.model, xv, cv), 1.0)
    card = export_autoencoder(more.model, tmp_path, thr, {}, "tiny", 1.0)
    assert card.thresholds["anomaly"] == pytest.approx(thr)
    scorer = AnomalyScorer.load(tmp_path)
    fs = _frames(1, 3)
    res_onnx = scorer.score(Frame("COMS-1", fs.times[0], CHANNELS, fs.data[0]))
    x1, c1 = prepare_inputs(fs, progress=False)
    assert res_onnx.score == pytest.approx(float(model_scores(more.model, x1, c1)[0]), rel=1e-3, abs=1e-6)


def _split_window_frames(n: int, seed: int, jump: float = 0.0) -> FrameSet:
    """Frames whose channels track each other (ir02 = ir01 - 3, swir and wv offset), optionally one jumped."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2024, 7, 1, tzinfo=UTC)
    yy, xx = np.mgrid[0:300, 0:375]
    data = np.empty((n, 4, 300, 375), dtype=np.uint8)
    for i in range(n):
        base = 110 + rng.uniform(-30, 30) + 40 * np.sin(xx / 30.0 + rng.uniform(0, 6)) * np.cos(yy / 45.0)
        planes = np.stack([base, base - 3, base + 10, 0.5 * base + 60]) + rng.normal(0, 1, (4, 300, 375))
        planes[1] += jump
        data[i] = np.clip(planes, 0, 255)
    return FrameSet("COMS-1", [t0 + timedelta(minutes=15 * i) for i in range(n)], data)


def test_consistency_catches_a_calibration_jump_and_exports(tmp_path: Path) -> None:
    xt, ct = prepare_inputs(_split_window_frames(24, 1), progress=False)
    xv, cv = prepare_inputs(_split_window_frames(8, 2), progress=False)
    xj, cj = prepare_inputs(_split_window_frames(4, 3, jump=20.0), progress=False)
    check = fit_consistency(xt, ct, groups=4)
    with torch.no_grad():
        normal = check(torch.from_numpy(xv), torch.from_numpy(cv)).numpy()
        jumped = check(torch.from_numpy(xj), torch.from_numpy(cj)).numpy()
    assert jumped.min() > 10 * max(1.0, normal.max())
    torch.manual_seed(0)
    scored, scoring = with_consistency(ConditionedAutoencoder(channels=8), xt, ct, xv, cv, groups=4)
    assert scoring.aggregate == "with_consistency" and scoring.consistency_output == "consistency"
    assert scoring.consistency_gate == pytest.approx(CHECK_MARGIN * normal.max(), rel=1e-4)
    valid = model_scores(scored, xv, cv, scoring=scoring)
    assert model_scores(scored, xj, cj, scoring=scoring).min() > valid.max()
    thr = calibrate_threshold(valid, 1.0)
    card = export_autoencoder(scored, tmp_path, thr, {}, "tiny", 1.0, scoring=scoring)
    names = ["reconstruction", "error", "consistency", "lines", "texture", "texture_map"]
    assert [o.name for o in card.outputs] == names
    scorer = AnomalyScorer.load(tmp_path)
    fs = _split_window_frames(1, 3, jump=20.0)
    got = scorer.score(Frame("COMS-1", fs.times[0], CHANNELS, fs.data[0]))
    assert got.is_anomaly
    assert got.score == pytest.approx(float(model_scores(scored, xj[:1], cj[:1], scoring=scoring)[0]), rel=1e-3)


def _striped(fs: FrameSet, channel: int, period: int, amplitude: float) -> FrameSet:
    data = fs.data.astype(np.float32)
    data[:, channel, 100:220:period, :] += amplitude
    return FrameSet(fs.satellite, fs.times, np.clip(data, 0, 255).astype(np.uint8))


def test_scan_line_check_catches_striping_through_onnx(tmp_path: Path) -> None:
    """Stripes too faint for the worst pixels lift the scan-line term far past its gate; normal frames stay under."""
    xt, ct = prepare_inputs(_split_window_frames(24, 1), progress=False)
    xv, cv = prepare_inputs(_split_window_frames(8, 2), progress=False)
    check, gate = fit_scan_lines(xt)
    striped_fs = _striped(_split_window_frames(4, 3), channel=2, period=4, amplitude=15.0)
    xs, cs = prepare_inputs(striped_fs, progress=False)
    with torch.no_grad():
        normal, striped = check(torch.from_numpy(xv)).numpy(), check(torch.from_numpy(xs)).numpy()
    assert normal.max() < gate < striped.min() / 2
    torch.manual_seed(0)
    scored, scoring = with_consistency(ConditionedAutoencoder(channels=8), xt, ct, xv, cv, groups=4)
    assert scoring.lines_output == "lines" and scoring.lines_gate == pytest.approx(gate)
    out = frame_outputs(scored, xs, cs)
    cons, lines = out.consistency, out.lines
    assert cons is not None and lines is not None and lines.min() > gate
    valid = model_scores(scored, xv, cv, scoring=scoring)
    assert model_scores(scored, xs, cs, scoring=scoring).min() > valid.max()
    export_autoencoder(scored, tmp_path, calibrate_threshold(valid, 1.0), {}, "tiny", 1.0, scoring=scoring)
    got = AnomalyScorer.load(tmp_path).score(Frame("COMS-1", striped_fs.times[0], CHANNELS, striped_fs.data[0]))
    assert got.is_anomaly
    assert got.score == pytest.approx(float(model_scores(scored, xs[:1], cs[:1], scoring=scoring)[0]), rel=1e-3)


def _cloudy_frames(n: int, seed: int, disc: bool = False) -> FrameSet:
    """Frames of rough, textured cloud (as real cloud fields are); with ``disc`` a smooth, uniformly cold round
    cell of radius 25 px sits in the middle, the kind of weather an autoencoder reproduces all too well."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2024, 7, 1, tzinfo=UTC)
    yy, xx = np.mgrid[0:300, 0:375]
    data = np.empty((n, 4, 300, 375), dtype=np.uint8)
    for i in range(n):
        base = 120 + 30 * np.sin(xx / 40.0 + rng.uniform(0, 6)) + rng.normal(0, 14, (300, 375))
        if disc:
            inside = (xx - 187) ** 2 + (yy - 150) ** 2 < 25**2
            base = np.where(inside, 235.0, base)
        data[i] = np.clip(np.stack([base, base - 3, base + 10, 0.5 * base + 60]), 0, 255)
    return FrameSet("COMS-1", [t0 + timedelta(minutes=15 * i) for i in range(n)], data)


def test_texture_check_flags_smooth_cold_cloud_through_onnx(tmp_path: Path) -> None:
    """A smooth, uniformly cold cell among rough normal cloud: the patch-texture term rises past every normal
    frame's, and the exported graph gives the scorer the same standardised term."""
    xt, ct = prepare_inputs(_cloudy_frames(48, 1), progress=False)
    xv, cv = prepare_inputs(_cloudy_frames(16, 2), progress=False)
    xd, cd = prepare_inputs(_cloudy_frames(4, 3, disc=True), progress=False)
    torch.manual_seed(0)
    scored, scoring = with_consistency(ConditionedAutoencoder(channels=8), xt, ct, xv, cv, groups=4)
    assert scoring.texture_output == "texture" and scoring.texture_scale > 0
    normal = frame_outputs(scored, xv, cv).texture
    cell = frame_outputs(scored, xd, cd).texture
    assert normal is not None and cell is not None and cell.min() > 2 * normal.max()
    valid = model_scores(scored, xv, cv, scoring=scoring)
    export_autoencoder(scored, tmp_path, calibrate_threshold(valid, 1.0), {}, "tiny", 1.0, scoring=scoring)
    fs = _cloudy_frames(1, 3, disc=True)
    got = AnomalyScorer.load(tmp_path).score(Frame("COMS-1", fs.times[0], CHANNELS, fs.data[0]))
    want = (cell[0] - scoring.texture_center) / scoring.texture_scale
    assert got.texture == pytest.approx(float(want), rel=1e-3) and got.is_anomaly
    # The texture term carries the score, so the heat map is the patch map and its peak lies on the cell.
    y, x = np.unravel_index(int(np.argmax(got.heatmap)), got.heatmap.shape)
    assert abs(x / got.heatmap.shape[1] - 0.5) < 0.12 and abs(y / got.heatmap.shape[0] - 0.5) < 0.12
    # Without the check (a v1 model) nothing changes: the scoring has no texture term.
    _, plain = with_consistency(ConditionedAutoencoder(channels=8), xt, ct, xv, cv, groups=4, texture=False)
    assert plain.texture_output is None


def test_texture_check_computes_the_suns_height_in_the_graph_as_the_simulator_does() -> None:
    from satwatch.services.models.anomaly import time_features
    from satwatch.services.simulator.sun import cos_solar_zenith
    from satwatch.services.training.models import PatchTexture

    check = PatchTexture(4, 152, 176)
    lat = np.linspace(50, 5, check.rows)[:, None].repeat(check.cols, 1)
    lon = np.linspace(105, 155, check.cols)[None, :].repeat(check.rows, 0)
    check.set_geometry(lat, lon)
    times = [datetime(2011, 3, 3, 6, 45, tzinfo=UTC), datetime(2024, 6, 21, 3, 0, tzinfo=UTC)]
    times.append(datetime(2024, 12, 21, 11, 30, tzinfo=UTC))  # night over the whole area
    got = check.cos_zenith(torch.from_numpy(time_features(times))).numpy()
    for t, row in zip(times, got, strict=True):
        want = cos_solar_zenith(lat.ravel(), lon.ravel(), t)
        assert np.abs(row - want).max() < 0.01
    assert got[1].max() > 0.9 and got[2].max() == 0.0


def test_calibration_records_what_normal_frames_typical_error_reaches_and_the_scorer_compares(
    tmp_path: Path,
) -> None:
    """The card keeps the largest median error of the normal validation frames; through ONNX, the scorer
    divides each frame's median error by it, so the calibration frame that set it sits at exactly 1."""
    xt, ct = prepare_inputs(_cloudy_frames(24, 1), progress=False)
    valid_fs = _cloudy_frames(8, 2)
    xv, cv = prepare_inputs(valid_fs, progress=False)
    torch.manual_seed(0)
    scored, scoring = with_consistency(ConditionedAutoencoder(channels=8), xt, ct, xv, cv, groups=4)
    typical = frame_outputs(scored, xv, cv).typical
    assert scoring.domain_error_max == pytest.approx(float(typical.max()))
    valid = model_scores(scored, xv, cv, scoring=scoring)
    export_autoencoder(scored, tmp_path, calibrate_threshold(valid, 1.0), {}, "tiny", 1.0, scoring=scoring)
    scorer = AnomalyScorer.load(tmp_path)
    got = scorer.score_batch([valid_fs.frame(i) for i in range(len(valid_fs))])
    ratios = np.array([g.domain_ratio for g in got])
    assert ratios.max() == pytest.approx(1.0, rel=1e-3)
    assert not any(g.out_of_domain for g in got)
