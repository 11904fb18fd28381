"""Baseline defenses: none (ERM), median-filter preprocessing (BPDA), a denoising-autoencoder
purifier, PGD adversarial training."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

import ecgarena
from ecgarena import (
    Classifier,
    ClassifierInfo,
    FitContext,
    Options,
    ThreatModel,
    fit_classifier,
    pgd,
)
from pydantic import Field

from .denoiser import DenoisingAutoencoder, train_denoiser
from .median import MedianFilter


class NoDefense(Options):
    """Empirical risk minimisation: the undefended baseline."""

    name: ClassVar[str] = "none"
    kind: ClassVar[str] = "none"

    def build(self, ctx: FitContext) -> Classifier:
        return Classifier(ctx.build_net())

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        return fit_classifier(classifier, ctx, description=f"train {self.name}")


class MedianDefense(NoDefense):
    """Running median of each lead before the classifier (trained on filtered signals).

    Attacked end to end: `gradient="bpda"` passes the gradient straight through the median,
    `"exact"` differentiates the median itself (it routes to the median sample).
    """

    name: ClassVar[str] = "median"
    kind: ClassVar[str] = "preprocessing"
    window_ms: float = Field(50.0, gt=0, le=500, description="window length (odd samples ≥ 1)")
    gradient: Literal["bpda", "exact"] = "bpda"

    def build(self, ctx: FitContext) -> Classifier:
        k = max(1, int(round(self.window_ms * ctx.info.fs / 1000)) // 2 * 2 + 1)
        info = ClassifierInfo(
            differentiable=False, gradient=self.gradient, notes=f"median window {k} samples"
        )
        return Classifier(
            ctx.build_net(), preprocess=MedianFilter(k, self.gradient == "bpda"), info=info
        )


class DenoiserDefense(NoDefense):
    """Purifier: a 1-D denoising autoencoder trained on noisy→clean, then the classifier trained
    on its reconstructions. Attacked end to end through the autoencoder (`gradient="exact"`) or
    with BPDA (identity backward)."""

    name: ClassVar[str] = "denoising-autoencoder"
    kind: ClassVar[str] = "preprocessing"
    noise_mv: float = Field(0.05, gt=0, le=5, description="training noise σ (mV)")
    width: int = Field(32, ge=4, le=256)
    denoiser_epochs: int = Field(5, ge=1, le=500)
    gradient: Literal["exact", "bpda"] = "exact"

    def build(self, ctx: FitContext) -> Classifier:
        dae = DenoisingAutoencoder(len(ctx.info.leads), self.width, bpda=self.gradient == "bpda")
        info = ClassifierInfo(
            differentiable=True,
            gradient=self.gradient,
            notes=f"denoising autoencoder (σ {self.noise_mv:g} mV) before the classifier",
        )
        return Classifier(ctx.build_net(), preprocess=dae, info=info)

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        dae = classifier.preprocess
        history = train_denoiser(
            dae,
            ctx.train.x,
            self.noise_mv,
            self.denoiser_epochs,
            ctx.train_spec.batch_size,
            ctx.train_spec.lr,
            ctx.device,
            ctx.seed,
        )
        dae.requires_grad_(False)  # frozen while the classifier learns its reconstructions
        summary = fit_classifier(classifier, ctx, description=f"train {self.name}")
        dae.requires_grad_(True)
        return {**summary, "denoiser_mse_mv2": history}


class PGDTraining(NoDefense):
    """Madry adversarial training: each batch is replaced (or partly replaced) by PGD examples."""

    name: ClassVar[str] = "pgd-at"
    kind: ClassVar[str] = "training"
    eps_mv: float = Field(0.05, gt=0, le=5, description="training budget ℓ∞ in mV")
    steps: int = Field(5, ge=1, le=100)
    step_size: float = Field(0.5, gt=0, le=2, description="fraction of ε per step")
    clean_fraction: float = Field(0.0, ge=0, lt=1, description="share of each batch left clean")

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        threat = ThreatModel(norm="linf", budget_mv=self.eps_mv)
        import torch

        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed)

        def augment(clf, x, y):
            k = int(round(len(x) * self.clean_fraction))
            delta = pgd(
                clf,
                x[k:],
                y[k:],
                threat,
                ctx.info.task,
                steps=self.steps,
                step_size=self.step_size,
                generator=gen,
            )
            return torch.cat([x[:k], x[k:] + delta])

        return fit_classifier(classifier, ctx, augment=augment, description=f"train {self.name}")


@ecgarena.hookimpl
def ecgarena_register_defenses(register: Callable[[type], None]) -> None:
    register(NoDefense)
    register(MedianDefense)
    register(DenoiserDefense)
    register(PGDTraining)
