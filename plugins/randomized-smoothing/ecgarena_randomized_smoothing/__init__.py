"""Randomized smoothing (Cohen et al. 2019): Gaussian-noise training, a smoothed classifier
attacked through its expectation over noise (EOT), and certified ℓ2 radii in mV."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import ecgarena
import torch
from ecgarena import FitContext, Options, fit_classifier
from pydantic import Field

from .smoothing import ABSTAIN, SmoothedClassifier

__all__ = ["ABSTAIN", "RandomizedSmoothing", "SmoothedClassifier"]


class RandomizedSmoothing(Options):
    """Train on x + N(0, σ²); predict with the smoothed classifier; certify ℓ2 radii (mV)."""

    name: ClassVar[str] = "randomized-smoothing"
    kind: ClassVar[str] = "certified"

    sigma_mv: float = Field(0.1, gt=0, le=5, description="noise σ in mV (training and smoothing)")
    samples: int = Field(16, ge=1, le=10_000, description="noise draws behind each logit (EOT)")
    n0: int = Field(100, ge=1, le=1_000_000, description="certify: selection draws")
    n: int = Field(1000, ge=1, le=10_000_000, description="certify: estimation draws")
    alpha: float = Field(0.001, gt=0, lt=0.5, description="certify: failure probability")
    batch: int = Field(1000, ge=1, le=100_000, description="noisy copies per forward pass")

    def build(self, ctx: FitContext) -> SmoothedClassifier:
        return SmoothedClassifier(
            ctx.build_net(),
            self.sigma_mv,
            self.samples,
            ctx.info.task,
            ctx.seed,
            self.batch,
            self.n0,
            self.n,
            self.alpha,
        )

    def train(self, classifier: SmoothedClassifier, ctx: FitContext) -> dict[str, Any]:
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed)

        def augment(clf, x, y):
            return x + torch.randn(x.shape, generator=gen, device=x.device) * self.sigma_mv

        return fit_classifier(classifier, ctx, augment=augment, description=f"train {self.name}")


@ecgarena.hookimpl
def ecgarena_register_defenses(register: Callable[[type], None]) -> None:
    register(RandomizedSmoothing)
