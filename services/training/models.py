"""PyTorch definitions of the frame encoder and the time-conditioned anomaly autoencoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Pixel thresholds of the encoder's fixed front end: per-cell empirical CDFs at these grey levels. They
#: are the ground-truth metric's bin edges for 20 bins (pixel v is in bin floor(v / 255 * 20), so
#: "v < 12.75 k" is "bin < k"); comparisons of integer-valued floats are exact in PyTorch and ONNX Runtime.
CDF_THRESHOLDS = tuple(12.75 * k for k in range(1, 21))
#: Front-end cell size (rows, cols): the ground-truth metric's 24x24 grid on a 347x300 frame.
CDF_CELL = (15, 13)


class CdfFrontEnd(nn.Module):
    """Fixed (parameter-free) layer: fraction of each cell's pixels below each threshold, per channel.

    This mirrors what the ground-truth metric compares (per-cell grey-level distributions) while shrinking
    a 4x347x300 frame to 4*K x 23 x 23 before any learned layer.
    """

    def __init__(self, thresholds: tuple[float, ...] = CDF_THRESHOLDS, cell: tuple[int, int] = CDF_CELL) -> None:
        super().__init__()
        self.register_buffer("thresholds", torch.tensor(thresholds, dtype=torch.float32).view(1, 1, -1, 1, 1))
        self.cell = cell
        self.k = len(thresholds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        thresholds: torch.Tensor = self.thresholds  # type: ignore[assignment]
        below = (x.unsqueeze(2) < thresholds).to(x.dtype)
        return F.avg_pool2d(below.reshape(n, c * self.k, h, w), self.cell, self.cell)


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
        self, height: int = 347, width: int = 300, channels: int = 4, dim: int = 128, cell_dim: int = 8
    ) -> None:
        super().__init__()
        self.front = CdfFrontEnd()
        grid = (height // CDF_CELL[0], width // CDF_CELL[1])
        self.body = EncoderBody(channels * self.front.k, grid, dim, cell_dim)
        self.config = {"height": height, "width": width, "channels": channels, "dim": dim, "cell_dim": cell_dim}

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
    input is accepted and ignored). Returns the reconstruction (the predicted mean) and the error map.
    """

    #: Variance floor (a standard deviation of about 0.6 grey levels) keeps the likelihood finite.
    LOG_VAR_MIN = -12.0
    LOG_VAR_MAX = 0.0

    def __init__(
        self, channels: int = 4, widths: tuple[int, ...] = (16, 32, 48), latent: int = 8, cond_dim: int = 4
    ) -> None:
        super().__init__()
        self.config = {"channels": channels, "widths": list(widths), "latent": latent, "cond_dim": cond_dim}
        chans = [channels, *widths]
        self.encoder = nn.Sequential(*[_down(chans[i], chans[i + 1]) for i in range(len(widths))])
        self.to_latent = nn.Conv2d(widths[-1], latent, 1)
        self.from_latent = nn.Conv2d(latent, widths[-1], 1)
        self.latent_film = FiLM(cond_dim, widths[-1]) if cond_dim else None
        rev = list(reversed(widths))
        self.ups = nn.ModuleList([_Up(rev[i], rev[i + 1], cond_dim) for i in range(len(rev) - 1)])
        self.last_up = _Up(rev[-1], rev[-1], cond_dim)
        # Two heads rather than one split in two: the exported graph then keeps static channel counts.
        self.out_mean = nn.Conv2d(rev[-1], channels, 3, padding=1)
        self.out_log_var = nn.Conv2d(rev[-1], channels, 3, padding=1)

    def predict(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted mean and log-variance, each (N,C,H,W)."""
        z = self.to_latent(self.encoder(x))
        h = self.from_latent(z)
        if self.latent_film is not None:
            h = self.latent_film(h, cond)
        h = F.gelu(h)
        for up in self.ups:
            h = up(h, cond)
        h = self.last_up(h, cond)
        log_var = self.out_log_var(h).clamp(self.LOG_VAR_MIN, self.LOG_VAR_MAX)
        return torch.sigmoid(self.out_mean(h)), log_var

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
