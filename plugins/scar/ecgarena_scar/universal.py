"""SCAR's universal perturbation: normalised SGD on one `v (1, leads, time)` whose every update
is low-passed (zero-phase Butterworth), Gaussian-smoothed and projected onto per-lead budgets.

Paper form (seed Eqs. 1–5): the projection Π_ε is element-wise, v_l ← clip(v_l, −ε_l, ε_l)
(`clip`, the default), and the update's smoothing window is W = 25 taps = 50 ms at 500 Hz (the
same 50 ms in taps at other rates: 5 taps at 100 Hz). Our choices, as the seed gives none:
filter order 4 applied zero-phase, σ = 8 ms, the step size, epochs and stopping rule.

Clipping a band-limited v adds harmonics: after 20 updates on white gradients (100–500 Hz,
2 or 12 leads) the worst lead holds ≈ 0.6–1.4 % of its energy above 25 Hz at the default step
0.1, ≈ 2–4 % at step 0.5 and ≈ 6–9 % at step 3 (the core audit allows 2 %; full fits on toy
data stayed ≤ 0.2 %). So `clip` declares no band limit: it cannot promise one. The two
band-keeping variants, named options, declare the cut-off: `clip-filter` clips, low-passes
the clipped v again and rescales each lead into its budget; `rescale` (METHODS.md §3 (a)) only
rescales each lead as a whole — linear, band-exact, but one peak shrinks the whole lead.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from ecgarena import (
    Classifier,
    Options,
    ThreatModel,
    eval_mode,
    gaussian_kernel,
    loss_and_grad,
    lowpass,
    project,
    rescale_into,
    samples,
    smooth,
)
from pydantic import Field

Projection = Literal["clip", "clip-filter", "rescale"]
BAND_KEEPING: tuple[str, ...] = ("clip-filter", "rescale")  # projections that keep the band
CUTOFF_HZ = 15.0  # the seed's band limit
WINDOW_MS = 50.0  # W = 25 taps at 500 Hz
SIGMA_MS = 8.0  # σ = 4 samples at 500 Hz (our choice)


def smoothing_kernel(
    fs: float, window_ms: float = WINDOW_MS, sigma_ms: float = SIGMA_MS
) -> torch.Tensor:
    """SCAR's W-tap Gaussian at `fs`: `window_ms` in odd taps (25 at 500 Hz, 5 at 100 Hz)."""
    return gaussian_kernel(samples(window_ms, fs), sigma_ms * fs / 1000)


def band_limit(
    x: torch.Tensor, fs: float, cutoff_hz: float, order: int, kernel: torch.Tensor
) -> torch.Tensor:
    """F_low then the W-tap smoothing: zero-phase Butterworth low-pass, then `kernel`."""
    return smooth(lowpass(x, fs, cutoff_hz, order), kernel)


class BandOptions(Options):
    """How each update is band-limited: Butterworth cut-off/order, then a Gaussian window."""

    cutoff_hz: float = Field(CUTOFF_HZ, gt=0, description="low-pass cut-off of every update (Hz)")
    order: int = Field(4, ge=1, le=10, description="Butterworth order (applied forward-backward)")
    window_ms: float = Field(WINDOW_MS, gt=0, le=1000, description="Gaussian smoothing window (ms)")
    sigma_ms: float = Field(SIGMA_MS, gt=0, le=500, description="Gaussian σ (ms)")
    step: float = Field(0.1, gt=0, le=10, description="update RMS as a fraction of max ε")
    projection: Projection = Field(
        "clip",
        description="clip (the paper's element-wise Π_ε; no band declared), or the "
        "band-keeping clip-filter / rescale",
    )

    @property
    def band_hz(self) -> float | None:
        """The band limit v keeps under this projection (None for element-wise clipping)."""
        return self.cutoff_hz if self.projection in BAND_KEEPING else None

    def kernel(self, fs: float) -> torch.Tensor:
        """The Gaussian smoothing kernel at `fs` (25 taps, σ 4 samples at 500 Hz)."""
        return smoothing_kernel(fs, self.window_ms, self.sigma_ms)

    def direction(self, grad: torch.Tensor, fs: float, kernel: torch.Tensor) -> torch.Tensor:
        """Low-pass, smooth and normalise an update direction to unit RMS."""
        g = band_limit(grad, fs, self.cutoff_hz, self.order, kernel)
        return g * math.sqrt(g.numel()) / (g.norm() + 1e-12)

    def update(
        self,
        v: torch.Tensor,
        grad: torch.Tensor,
        threat: ThreatModel,
        fs: float,
        kernel: torch.Tensor,
    ) -> torch.Tensor:
        """One ascent step on `v` along the band-limited direction, then the projection."""
        eps_max = max(threat.lead_budgets(v.shape[1]))
        v = v + self.step * eps_max * self.direction(grad, fs, kernel)
        if self.projection == "rescale":
            return rescale_into(v, threat)
        if self.projection == "clip":
            return project(v, threat)
        return rescale_into(lowpass(project(v, threat), fs, self.cutoff_hz, self.order), threat)


def universal_grad(
    clf: Classifier, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor, task: str
) -> torch.Tensor:
    """Gradient of the summed task loss at x + v with respect to the shared v `(1, L, T)`."""
    with eval_mode(clf):
        _, grad = loss_and_grad(clf, x, v.expand_as(x), y, task)
    return grad.sum(0, keepdim=True)
