"""PyTorch definitions of the frame encoder and the time-conditioned anomaly autoencoder."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: The ground-truth metric the encoder imitates: its general mode, 24 x 24 cells, 20 bins.
GT_GRID = 24
GT_BINS = 20


def cdf_thresholds(bins: int = GT_BINS) -> tuple[float, ...]:
    """Grey levels t_k (k = 1..bins) with ``v < t_k`` exactly when pixel v falls in a bin below k.

    Taken from the ground-truth metric's own float32 bin table (``floor(v / 255 * bins)``), halfway between
    the last grey level of bin k-1 and the first of bin k, so integer-valued pixels compare exactly in
    PyTorch and ONNX Runtime whatever the float rounding of ``v / 255 * bins``.
    """
    from satwatch.services.metric.groundtruth import bin_values

    table = bin_values(np.arange(256, dtype=np.uint8), bins).astype(np.int64)
    return tuple(float(np.flatnonzero(table >= k)[0]) - 0.5 for k in range(1, bins + 1))


def cell_pooling(size: int, n: int = GT_GRID) -> np.ndarray:
    """(n, size) averaging matrix over the metric's general-mode cells along one axis.

    Cell boundaries are ``np.array_split``'s, exactly as in ``satwatch.services.metric.groundtruth`` (general
    mode): on a 375 x 300 frame (width x height), rows of 13 then 12 pixels and columns of 16 then 15.
    """
    out = np.zeros((n, size), dtype=np.float64)
    for i, part in enumerate(np.array_split(np.arange(size), n)):
        out[i, part] = 1.0 / len(part)
    return out


class CdfFrontEnd(nn.Module):
    """Fixed (parameter-free) layer: per channel and cell, the grey-level distribution the metric compares.

    The cells and bin edges are exactly the ground-truth metric's (general mode, 24 x 24 cells, 20 bins).
    The uneven cells are averaged by two fixed matrix products (rows, then columns). ``features``:

    * ``"cdf"``: the fraction of the cell's pixels below each of the 20 bin edges, i.e. the empirical CDF
      the metric compares with the Kolmogorov-Smirnov statistic (4*20 x 24 x 24 per frame);
    * ``"sqrt_hist"``: the square root of the fraction of pixels in each of the 21 bins (4*21 x 24 x 24).
      Euclidean distance between these is the Hellinger distance between the cells' distributions, which
      tracks the metric's KS statistic far better than Euclidean distance between CDFs does: on 200
      windows of the simulated test block, the L2 distance of window-mean features correlates with the ground truth at
      Pearson -0.958 (disjoint pairs -0.923) against -0.941 (-0.881) for CDFs. Behind the present body
      (8 numbers per cell, then 128) it did worse than CDFs (validation -0.845 against -0.887): the
      per-cell squeeze loses what it gains, so the default stays ``"cdf"``.
    """

    def __init__(
        self,
        height: int = 300,
        width: int = 375,
        grid: int = GT_GRID,
        bins: int = GT_BINS,
        features: str = "cdf",
    ) -> None:
        super().__init__()
        if features not in ("cdf", "sqrt_hist"):
            raise ValueError(f"front-end features must be 'cdf' or 'sqrt_hist', got {features!r}")
        thresholds = cdf_thresholds(bins)
        self.register_buffer("thresholds", torch.tensor(thresholds, dtype=torch.float32).view(1, 1, -1, 1, 1))
        self.register_buffer("rows", torch.from_numpy(cell_pooling(height, grid)).float())
        self.register_buffer("cols", torch.from_numpy(cell_pooling(width, grid).T.copy()).float())
        self.features = features
        self.k = len(thresholds) + (1 if features == "sqrt_hist" else 0)
        self.grid = (grid, grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        thresholds: torch.Tensor = self.thresholds  # type: ignore[assignment]
        rows: torch.Tensor = self.rows  # type: ignore[assignment]
        cols: torch.Tensor = self.cols  # type: ignore[assignment]
        edges = thresholds.shape[2]
        below = (x.unsqueeze(2) < thresholds).to(x.dtype).reshape(n, c * edges, h, w)
        cdf = torch.matmul(rows, torch.matmul(below, cols))
        if self.features == "cdf":
            return cdf
        cdf = cdf.reshape(n, c, edges, self.grid[0], self.grid[1])
        hist = torch.cat([cdf[:, :, :1], cdf[:, :, 1:] - cdf[:, :, :-1], 1.0 - cdf[:, :, -1:]], dim=2)
        return torch.sqrt(hist.clamp(min=0.0)).reshape(n, c * self.k, self.grid[0], self.grid[1])


class EncoderBody(nn.Module):
    """Learned part of the encoder: per-cell projection of the CDF vector, then one projection to ``dim``.

    Deliberately (almost) linear: initialised from principal components of training features it already
    preserves distances between CDF maps, and the log-ratio loss then only has to reshape them. A deeper
    convolutional body overfitted the few hundred training windows.
    """

    def __init__(self, in_channels: int, grid: tuple[int, int], dim: int = 128, cell_dim: int = 8) -> None:
        super().__init__()
        self.cell = nn.Conv2d(in_channels, cell_dim, 1)
        self.proj = nn.Linear(cell_dim * grid[0] * grid[1], dim)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.proj(self.cell(feats).flatten(1))

    @torch.no_grad()
    def init_pca(self, feats: torch.Tensor) -> None:
        """Set both projections to principal components of (N, C, gh, gw) training features."""
        x = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1]).double()
        mu = x.mean(0)
        _, _, vt = torch.linalg.svd(x - mu, full_matrices=False)
        k = self.cell.out_channels
        w = vt[:k]
        self.cell.weight.copy_(w.float()[:, :, None, None])
        assert self.cell.bias is not None
        self.cell.bias.copy_((-(w @ mu)).float())
        g = self.cell(feats).flatten(1).double()
        mg = g.mean(0)
        _, _, vt2 = torch.linalg.svd(g - mg, full_matrices=False)
        d = min(self.proj.out_features, vt2.shape[0])
        weight = torch.zeros_like(self.proj.weight, dtype=torch.float64)
        weight[:d] = vt2[:d]
        self.proj.weight.copy_(weight.float())
        self.proj.bias.copy_((-(weight @ mg)).float())


class FrameEncoderNet(nn.Module):
    """Raw pixel values (N,4,H,W) float -> (N, dim) embedding. Training feeds the body precomputed features."""

    def __init__(
        self,
        height: int = 300,
        width: int = 375,
        channels: int = 4,
        dim: int = 128,
        cell_dim: int = 8,
        features: str = "cdf",
    ) -> None:
        super().__init__()
        self.front = CdfFrontEnd(height, width, features=features)
        self.body = EncoderBody(channels * self.front.k, self.front.grid, dim, cell_dim)
        self.config: dict[str, Any] = {
            "height": height,
            "width": width,
            "channels": channels,
            "dim": dim,
            "cell_dim": cell_dim,
            "features": features,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.front(x))


class FiLM(nn.Module):
    """Per-channel scale and shift predicted from the conditioning vector."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.lin = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.lin(cond).chunk(2, dim=1)
        return x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


def _down(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GELU())


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.film = FiLM(cond_dim, cout) if cond_dim else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        if self.film is not None:
            x = self.film(x, cond)
        return F.gelu(x)


class ConditionedAutoencoder(nn.Module):
    """Convolutional autoencoder over (N,C,H,W) inputs in [0,1]; decoder FiLM-conditioned on time features.

    The decoder predicts, per pixel and plane, a mean and a log-variance (a Gaussian likelihood), so cloud
    edges that are hard to reconstruct are expected to be uncertain and smooth areas to be exact. The error
    map is the per-pixel negative log-likelihood averaged over planes: a fault in a clear, smooth area
    stands out however small its grey-level change. With ``cond_dim=0`` it is the unconditioned baseline (the time
    input is accepted and ignored). With ``coords`` the encoder's input and the output heads also get two planes
    of pixel position (row and column, -1 to 1), so what is normal may depend on where in the image it is.
    Returns the reconstruction (the predicted mean) and the error map.
    """

    #: Variance floor (a standard deviation of about 0.6 grey levels) keeps the likelihood finite.
    LOG_VAR_MIN = -12.0
    LOG_VAR_MAX = 0.0

    def __init__(
        self,
        channels: int = 4,
        widths: tuple[int, ...] = (16, 32, 48),
        latent: int = 8,
        cond_dim: int = 4,
        coords: bool = False,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "channels": channels,
            "widths": list(widths),
            "latent": latent,
            "cond_dim": cond_dim,
            "coords": coords,
        }
        self.coords = coords
        self.folded = False
        extra = 2 if coords else 0
        chans = [channels + extra, *widths]
        self.encoder = nn.Sequential(*[_down(chans[i], chans[i + 1]) for i in range(len(widths))])
        self.to_latent = nn.Conv2d(widths[-1], latent, 1)
        self.from_latent = nn.Conv2d(latent, widths[-1], 1)
        self.latent_film = FiLM(cond_dim, widths[-1]) if cond_dim else None
        rev = list(reversed(widths))
        self.ups = nn.ModuleList([_Up(rev[i], rev[i + 1], cond_dim) for i in range(len(rev) - 1)])
        self.last_up = _Up(rev[-1], rev[-1], cond_dim)
        # Two heads rather than one split in two: the exported graph then keeps static channel counts.
        self.out_mean = nn.Conv2d(rev[-1] + extra, channels, 3, padding=1)
        self.out_log_var = nn.Conv2d(rev[-1] + extra, channels, 3, padding=1)

    @staticmethod
    def _position(like: torch.Tensor) -> torch.Tensor:
        """(1, 2, H, W) planes of row and column position, each from -1 to 1, at ``like``'s size."""
        _, _, h, w = like.shape
        ys = torch.linspace(-1.0, 1.0, h, dtype=like.dtype, device=like.device).view(1, 1, h, 1).expand(1, 1, h, w)
        xs = torch.linspace(-1.0, 1.0, w, dtype=like.dtype, device=like.device).view(1, 1, 1, w).expand(1, 1, h, w)
        return torch.cat([ys, xs], dim=1)

    def _first_conv(self) -> nn.Conv2d:
        return cast(nn.Conv2d, cast(nn.Sequential, self.encoder[0])[0])

    def _conv(self, conv: nn.Conv2d, h: torch.Tensor, folded: str) -> torch.Tensor:
        """``conv`` over ``h`` with the position planes appended (when the model has them).

        In training this is the convolution of ``h`` plus that of the position planes, which with zero
        padding equals convolving their concatenation. After :meth:`fold_position` the second term is the
        constant buffer named ``folded``.
        """
        if not self.coords:
            return conv(h)
        if self.folded:
            return conv(h) + cast(torch.Tensor, getattr(self, folded))
        c = h.shape[1]
        stride, padding = conv.stride, conv.padding
        body = F.conv2d(h, conv.weight[:, :c], conv.bias, stride, padding)
        return body + F.conv2d(self._position(h), conv.weight[:, c:], None, stride, padding)

    def fold_position(self, height: int, width: int) -> None:
        """Fold the position planes into constant maps for inputs of ``height`` x ``width`` (for export).

        Each convolution that reads the planes is split into one over the image's own channels and a
        constant per-pixel map (the planes' share, the same for every frame). The exported graph then has
        plain convolutions, which onnxruntime runs in its fast blocked layout; a convolution whose weights
        are sliced, or whose input has 10 or 18 channels, runs about 1.5 times slower there.
        """
        if not self.coords or self.folded:
            return
        first = cast(nn.Sequential, self.encoder[0])
        # The first convolution reads the input, the two heads the decoder's output: both height x width.
        targets = {
            "_first_position": (first, 0, self._first_conv()),
            "_mean_position": (self, "out_mean", self.out_mean),
            "_log_var_position": (self, "out_log_var", self.out_log_var),
        }
        with torch.no_grad():
            for name, (owner, key, conv) in targets.items():
                c = conv.in_channels - 2
                pos = self._position(conv.weight.new_zeros(1, 1, height, width))
                stride, padding = conv.stride, conv.padding
                self.register_buffer(name, F.conv2d(pos, conv.weight[:, c:], None, stride, padding))
                plain = nn.Conv2d(c, conv.out_channels, conv.kernel_size, stride, padding)  # type: ignore[arg-type]
                plain = plain.to(conv.weight.device, conv.weight.dtype)
                plain.weight.copy_(conv.weight[:, :c])
                assert conv.bias is not None and plain.bias is not None
                plain.bias.copy_(conv.bias)
                if isinstance(owner, nn.Sequential):
                    owner[cast(int, key)] = plain
                else:
                    setattr(owner, cast(str, key), plain)
        self.folded = True

    def predict(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted mean and log-variance, each (N,C,H,W)."""
        first = cast(nn.Sequential, self.encoder[0])
        h = first[1](self._conv(self._first_conv(), x, "_first_position"))
        z = self.to_latent(self.encoder[1:](h))
        h = self.from_latent(z)
        if self.latent_film is not None:
            h = self.latent_film(h, cond)
        h = F.gelu(h)
        for up in self.ups:
            h = up(h, cond)
        h = self.last_up(h, cond)
        # With position planes, where a pixel lies (its latitude, its coast) shapes what is normal there.
        log_var = self._conv(self.out_log_var, h, "_log_var_position").clamp(self.LOG_VAR_MIN, self.LOG_VAR_MAX)
        return torch.sigmoid(self._conv(self.out_mean, h, "_mean_position")), log_var

    def nll(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Mean Gaussian negative log-likelihood per element (up to a constant): the training loss."""
        mean, log_var = self.predict(x, cond)
        return 0.5 * (log_var + (x - mean) ** 2 * torch.exp(-log_var)).mean()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.predict(x, cond)
        # Per-pixel negative log-likelihood, shifted to be >= 0. The log-variance term matters: input the
        # model has never seen (a calibration jump) tends to inflate the predicted variance, which alone
        # would shrink the squared standardised residual and hide the fault.
        nll = 0.5 * (log_var - self.LOG_VAR_MIN + (x - mean) ** 2 * torch.exp(-log_var))
        return mean, nll.mean(dim=1)


class ChannelConsistency(nn.Module):
    """Frame-level check that the channels agree: each channel's frame mean against a prediction of it.

    Pixel-level scores cannot see a calibration jump (a whole channel offset by tens of grey levels): every
    pixel moves a little and nothing stands out locally. Across channels it is glaring: the split-window
    infrared pair (ir01, ir02) and water vapour track each other's frame means to a fraction of a grey
    level. Channel c's mean is predicted linearly from the *other* channels' means, the sin/cos of UTC time
    of day (short-wave infrared follows the sun) and their products; ``weight`` (fitted by least squares,
    the channel's own terms zero) and ``scale`` (residual spread) are fixed buffers. Output: the largest
    ``|mean - prediction| / scale`` over channels, (N,).
    """

    # Buffers, declared so that type checkers know them as tensors (nn.Module's __getattr__ does not say).
    weight: torch.Tensor
    scale: torch.Tensor

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("weight", torch.zeros(channels, self.n_features(channels)))
        self.register_buffer("scale", torch.ones(channels))

    @staticmethod
    def n_features(channels: int) -> int:
        return 1 + channels + 2 + 2 * channels

    @staticmethod
    def feature_mask(channels: int) -> torch.Tensor:
        """(channels, n_features) booleans: which features may predict which channel (not its own mean)."""
        mask = torch.ones(channels, ChannelConsistency.n_features(channels), dtype=torch.bool)
        for c in range(channels):
            mask[c, 1 + c] = False
            mask[c, 3 + channels + c] = False
            mask[c, 3 + 2 * channels + c] = False
        return mask

    def means(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, : self.channels].mean(dim=(2, 3))

    def features(self, m: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        day = cond[:, :2]
        return torch.cat([torch.ones_like(m[:, :1]), m, day, m * day[:, :1], m * day[:, 1:2]], dim=1)

    def residuals(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        m = self.means(x)
        weight = self.weight
        return m - self.features(m, cond) @ weight.T

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale = self.scale
        return (self.residuals(x, cond).abs() / scale).amax(dim=1)


class ScanLineCheck(nn.Module):
    """Frame-level check for striping: each channel's row means, which a striped channel makes zig-zag.

    A detector fault that offsets every n-th scan line by tens of grey levels changes each pixel too little
    for the heat map's worst pixels to notice, but averaged along a full row normal weather is smooth, so the
    second difference of the row-mean profile, ``r[y] - (r[y-1] + r[y+1]) / 2``, jumps. ``scale`` (a fixed
    buffer) is its RMS over normal frames per channel. Output: the largest ``|second difference| / scale``
    over rows and channels, (N,).
    """

    scale: torch.Tensor  # a buffer

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("scale", torch.ones(channels))

    def zigzag(self, x: torch.Tensor) -> torch.Tensor:
        """|second difference| of each channel's row-mean profile, (N, channels, H - 2)."""
        r = x[:, : self.channels].mean(dim=3)
        return (r[:, :, 1:-1] - 0.5 * (r[:, :, :-2] + r[:, :, 2:])).abs()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale
        return (self.zigzag(x).amax(dim=2) / scale[None, :]).amax(dim=1)


class PatchTexture(nn.Module):
    """Frame-level check that each patch of the scene looks like what normal weather puts at that place and hour.

    Reconstruction error cannot see weather that is *smoother* than normal: an autoencoder reproduces a round,
    uniformly cold convective cell or a typhoon's smooth spiral bands more easily than ordinary cloud texture.
    Each patch of ``patch`` x ``patch`` model pixels is described per channel by its mean, its spread, the mean
    of the model input's per-pixel spread planes (texture finer than a model pixel) and its mean absolute
    gradient, plus sin/cos of the time of day and the cosine of the sun's zenith angle over the patch (computed
    in the graph from the time input and the patch's latitude and longitude, ``sun``: the 3.7 um channel
    follows the sun, whose height at a given UTC hour changes with the season). A Gaussian per patch position
    (``mean``, and ``whiten`` with ``|whiten @ (f - mean)|`` its Mahalanobis distance), fitted on normal
    frames, says how unusual each patch is. Output: the mean of the ``top`` largest patch distances, (N,);
    :meth:`distances` gives the map.
    """

    mean: torch.Tensor  # (positions, features), a buffer
    whiten: torch.Tensor  # (positions, features, features), a buffer
    sun: torch.Tensor  # (4, positions): sin and cos of latitude, cos and sin of longitude; a buffer

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        patch: int = 8,
        top: int = 8,
        described: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.channels, self.patch, self.top = channels, patch, top
        #: The channels whose patches are described (indices into the frame's channels; default all).
        self.described = tuple(range(channels)) if described is None else tuple(described)
        self.rows, self.cols = height // patch, width // patch
        positions, dim = self.rows * self.cols, self.n_features(len(self.described))
        self.register_buffer("mean", torch.zeros(positions, dim))
        self.register_buffer("whiten", torch.eye(dim).repeat(positions, 1, 1))
        self.register_buffer("sun", torch.zeros(4, positions))

    @staticmethod
    def n_features(channels: int) -> int:
        return 4 * channels + 3

    def set_geometry(self, lat: np.ndarray, lon: np.ndarray) -> None:
        """Latitude and longitude (degrees, each (rows, cols)) of the patch centres, for the sun's height."""
        la, lo = np.radians(np.asarray(lat, np.float64)).ravel(), np.radians(np.asarray(lon, np.float64)).ravel()
        self.sun.copy_(torch.from_numpy(np.stack([np.sin(la), np.cos(la), np.cos(lo), np.sin(lo)])).float())

    def cos_zenith(self, cond: torch.Tensor) -> torch.Tensor:
        """(N, positions) cosine of the solar zenith angle, 0 at night, from the time features (sin/cos of the
        UTC day fraction d and the year fraction y): hour angle 2 pi d + lon - pi, declination
        23.44 deg x sin(2 pi y - 2 pi 80 / 365) (good to a degree or so, plenty for the sun's height)."""
        sd, cd, sy, cy = cond[:, 0:1], cond[:, 1:2], cond[:, 2:3], cond[:, 3:4]
        sin_lat, cos_lat, cos_lon, sin_lon = self.sun[0], self.sun[1], self.sun[2], self.sun[3]
        cos_hour = -(cd * cos_lon - sd * sin_lon)
        phase = 2 * np.pi * 80.0 / 365.0
        sin_dec = np.sin(np.radians(23.44)) * (sy * np.cos(phase) - cy * np.sin(phase))
        cos_dec = (1 - sin_dec * sin_dec).clamp(min=0.0).sqrt()
        return (sin_lat * sin_dec + cos_lat * cos_dec * cos_hour).clamp(min=0.0)

    def features(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """(N, positions, features): the patch descriptors of the ``described`` channels (the model input's
        first ``channels`` planes are means, the next ``channels`` their spread)."""
        c, k, keep = self.channels, self.patch, list(self.described)
        x = x[:, :, : self.rows * k, : self.cols * k]
        m = x[:, keep]
        spread = x[:, [c + i for i in keep]]
        gx = F.pad((m[:, :, :, 1:] - m[:, :, :, :-1]).abs(), (1, 0))
        gy = F.pad((m[:, :, 1:, :] - m[:, :, :-1, :]).abs(), (0, 0, 1, 0))
        mean = F.avg_pool2d(m, k)
        std = (F.avg_pool2d(m * m, k) - mean * mean).clamp(min=0.0).sqrt()
        feats = torch.cat([mean, std, F.avg_pool2d(spread, k), F.avg_pool2d(gx + gy, k)], dim=1)  # (N, 4d, r, q)
        feats = feats.flatten(2).transpose(1, 2)  # (N, positions, 4d)
        day = cond[:, None, :2].expand(-1, feats.shape[1], -1)
        return torch.cat([feats, day, self.cos_zenith(cond)[:, :, None]], dim=2)

    def distances(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Each patch's Mahalanobis distance from normal at its position, (N, positions)."""
        centred = self.features(x, cond) - self.mean[None]
        return torch.einsum("pij,npj->npi", self.whiten, centred).pow(2).sum(dim=2).sqrt()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.distances(x, cond).topk(self.top, dim=1).values.mean(dim=1)


class ScoredAutoencoder(nn.Module):
    """The autoencoder plus its frame-level checks (channel consistency, scan lines), exported as one graph."""

    def __init__(
        self,
        autoencoder: ConditionedAutoencoder,
        consistency: ChannelConsistency,
        lines: ScanLineCheck,
        texture: PatchTexture | None = None,
    ) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.consistency = consistency
        self.lines = lines
        self.texture = texture
        self.config: dict[str, Any] = {
            **autoencoder.config,
            "consistency": True,
            "lines": True,
            "texture": texture is not None,
        }

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mean, error = self.autoencoder(x, cond)
        out = (mean, error, self.consistency(x, cond), self.lines(x))
        if self.texture is None:
            return out
        # The frame's texture term and its map (N, rows, cols): where the scene is unlike normal weather.
        d = self.texture.distances(x, cond)
        score = d.topk(self.texture.top, dim=1).values.mean(dim=1)
        return (*out, score, d.reshape(-1, self.texture.rows, self.texture.cols))


class WindowHistEncoderNet(nn.Module):
    """Encoder v2: a window's mean per-cell histograms -> (N, dim) embedding.

    Input (N, C*(B+1), n, n): per channel and cell of the ground-truth grid, the fraction of pixels in each
    of the metric's B+1 bins, averaged over the window's frames (a running mean, so a new frame costs O(1)).
    The square root is taken *after* the mean: Euclidean distance between square roots of window-mean
    histograms (Hellinger) tracks the metric at -0.948 on the simulated test block, against -0.931 for the
    mean of the frames' square roots, the best a mean of frame embeddings can do. A linear map, started
    from principal components of training windows, then squeezes it to ``dim`` numbers.
    """

    def __init__(self, channels: int = 4, grid: int = GT_GRID, bins: int = GT_BINS, dim: int = 128) -> None:
        super().__init__()
        self.in_shape = (channels * (bins + 1), grid, grid)
        self.proj = nn.Linear(int(np.prod(self.in_shape)), dim)
        self.config = {"channels": channels, "grid": grid, "bins": bins, "dim": dim}

    def roots(self, hist: torch.Tensor) -> torch.Tensor:
        """Square roots of the window-mean histograms, flattened (N, C*(B+1)*n*n)."""
        return torch.sqrt(hist.clamp(min=0.0)).flatten(1)

    def forward(self, hist: torch.Tensor) -> torch.Tensor:
        return self.proj(self.roots(hist))

    @torch.no_grad()
    def init_pca(self, hist: torch.Tensor) -> None:
        """Set the map to the principal components of training windows' square-root features."""
        x = self.roots(hist).double()
        mu = x.mean(0)
        _, _, vt = torch.linalg.svd(x - mu, full_matrices=False)
        d = min(self.proj.out_features, vt.shape[0])
        weight = torch.zeros_like(self.proj.weight, dtype=torch.float64)
        weight[:d] = vt[:d]
        self.proj.weight.copy_(weight.float())
        self.proj.bias.copy_((-(weight @ mu)).float())
