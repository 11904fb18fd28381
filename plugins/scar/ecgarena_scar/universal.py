"""SCAR's universal perturbation: normalised SGD on one `v (1, leads, time)` whose every update
is low-passed (zero-phase Butterworth), Gaussian-smoothed and projected onto per-lead budgets.

Projections onto the per-lead budgets: `clip-filter` (default) clips, low-passes the clipped v
again and rescales each lead into its budget, so v stays in the range of the low-pass filter
and within budget; `rescale` (METHODS.md §3 (a)) only rescales each lead as a whole — linear,
band-exact, but one peak shrinks the whole lead; `clip` (§3 (b)) clips and so adds harmonics.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from ecgarena.constraints import project, rescale_into
from ecgarena.filters import gaussian_kernel, lowpass, samples, smooth
from ecgarena.gradients import eval_mode, loss_and_grad
from ecgarena.protocols import Classifier
from ecgarena.specs import ThreatModel
from pydantic import BaseModel, ConfigDict, Field

Projection = Literal["clip-filter", "rescale", "clip"]


class BandOptions(BaseModel):
    """How each update is band-limited: Butterworth cut-off/order, then a Gaussian window."""

    model_config = ConfigDict(extra="forbid")

    cutoff_hz: float = Field(15.0, gt=0, description="low-pass cut-off of every update (Hz)")
    order: int = Field(4, ge=1, le=10, description="Butterworth order (applied forward-backward)")
    window_ms: float = Field(50.0, gt=0, le=1000, description="Gaussian smoothing window (ms)")
    sigma_ms: float = Field(8.0, gt=0, le=500, description="Gaussian σ (ms)")
    step: float = Field(0.1, gt=0, le=10, description="update RMS as a fraction of max ε")
    projection: Projection = Field(
        "clip-filter", description="clip-filter or rescale (both band-limited), or clip"
    )

    def kernel(self, fs: float) -> torch.Tensor:
        """The Gaussian smoothing kernel at `fs` (25 taps, σ 4 samples at 500 Hz)."""
        return gaussian_kernel(samples(self.window_ms, fs), self.sigma_ms * fs / 1000)

    def direction(self, grad: torch.Tensor, fs: float, kernel: torch.Tensor) -> torch.Tensor:
        """Low-pass, smooth and normalise an update direction to unit RMS."""
        g = smooth(lowpass(grad, fs, self.cutoff_hz, self.order), kernel)
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
