"""Adversarial training against SCAR: `scar-at` trains on x + v with a universal v refreshed
as training goes; `hybrid-at` mixes PGD and SCAR examples in every batch."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from ecgarena import (
    Classifier,
    ClassifierInfo,
    FitContext,
    PrecordialProfile,
    ThreatModel,
    fit_classifier,
    pgd,
)
from pydantic import Field

from .universal import BandOptions, universal_grad


class SCARTraining(BandOptions, PrecordialProfile):
    """Universal adversarial training on x + v, v refreshed by SCAR steps as training goes.

    Every `refresh_every` batches v takes one SCAR step on the current batch.
    """

    name: ClassVar[str] = "scar-at"
    kind: ClassVar[str] = "training"

    eps_mv: float = Field(0.2, gt=0, le=5, description="SCAR budget on V2–V6 (mV)")
    refresh_every: int = Field(1, ge=1, le=1000, description="batches between v updates")

    def build(self, ctx: FitContext) -> Classifier:
        return Classifier(ctx.build_net(), info=ClassifierInfo(notes=self.summary()))

    def summary(self) -> str:
        return f"trained on SCAR v (ε {self.eps_mv:g} mV V2–V6, {self.cutoff_hz:g} Hz)"

    def scar_threat(self, ctx: FitContext) -> ThreatModel:
        budget = self.expand_budget(self.eps_mv, ctx.info.leads)
        return ThreatModel(budget_mv=budget, band_hz=self.band_hz, universal=True)

    def universal_augment(self, ctx: FitContext):
        """A closure that keeps v across batches and returns x + v (v refreshed as it goes)."""
        threat, kernel = self.scar_threat(ctx), self.kernel(ctx.info.fs)
        state = {"v": torch.zeros((1, len(ctx.info.leads), ctx.info.n_samples), device=ctx.device)}
        state["batches"] = 0

        def augment(clf: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if state["batches"] % self.refresh_every == 0:
                grad = universal_grad(clf, x, y, state["v"], ctx.info.task)
                state["v"] = self.update(state["v"], grad, threat, ctx.info.fs, kernel)
            state["batches"] += 1
            return x + state["v"]

        return augment

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        augment = self.universal_augment(ctx)
        return fit_classifier(classifier, ctx, augment=augment, description=f"train {self.name}")


class HybridTraining(SCARTraining):
    """Each batch: a `pgd_fraction` share of PGD examples, the rest SCAR (x + v) examples."""

    name: ClassVar[str] = "hybrid-at"
    pgd_fraction: float = Field(0.5, ge=0, le=1, description="share of PGD examples per batch")
    pgd_eps_mv: float = Field(0.05, gt=0, le=5, description="PGD ℓ∞ budget (mV)")
    pgd_steps: int = Field(5, ge=1, le=100)

    def summary(self) -> str:
        return f"{self.pgd_fraction:.0%} PGD (ε {self.pgd_eps_mv:g} mV) + " + super().summary()

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        universal = self.universal_augment(ctx)
        threat = ThreatModel(norm="linf", budget_mv=self.pgd_eps_mv)
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed)

        def augment(clf: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            k = int(round(len(x) * self.pgd_fraction))
            delta = pgd(
                clf, x[:k], y[:k], threat, ctx.info.task, steps=self.pgd_steps, generator=gen
            )
            return torch.cat([x[:k] + delta, universal(clf, x[k:], y[k:])])

        return fit_classifier(classifier, ctx, augment=augment, description=f"train {self.name}")
