"""The training and certified defenses: MART, TRADES and ℓ∞-dist; CAS and CASLCNet (MART +
CAS, Eqs. 8–9) live in `cas_defenses`. DEFENSES lists every one the plugin registers.

Budgets are options in mV; the inner attacks run in eval mode, from x + 0.001·N(0, 1) (model
units) for MART/TRADES/CASLCNet and a uniform start for CAS, with no data-range clamp.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from ecgarena import Classifier, FitContext, Options, UserError, fit_classifier
from pydantic import Field

from .base import AdversarialTraining, require_net
from .cas_defenses import CAS, CASLCNetDefense
from .certified import CertifiedClassifier, fit_linf_dist
from .linf_dist import LinfDistNet
from .losses import mart_example, mart_loss, trades_example, trades_loss

__all__ = ["CAS", "DEFENSES", "MART", "TRADES", "CASLCNetDefense", "LinfDist"]


class MART(AdversarialTraining):
    """MART (Wang et al. ICLR 2020): misclassification-aware boosted CE + β·weighted KL."""

    name: ClassVar[str] = "mart"
    beta: float = Field(6.0, ge=0, le=100, description="weight of the robust KL term")

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        task, gen = ctx.info.task, self.generator(ctx)

        def loss(clf: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            std = float(clf.standardize.std)
            adv = mart_example(clf, x, y, task, self.eps_mv, self.step, self.steps, std, gen)
            return mart_loss(clf(x), clf(adv), y, task, self.beta)

        return fit_classifier(classifier, ctx, loss=loss, description=f"train {self.name}")


class TRADES(AdversarialTraining):
    """TRADES (Zhang et al. ICML 2019): task loss on x + β·KL(p(x) ‖ p(x'))."""

    name: ClassVar[str] = "trades"
    beta: float = Field(6.0, ge=0, le=100, description="weight of the KL term (1/λ)")

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        task, gen = ctx.info.task, self.generator(ctx)

        def loss(clf: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            std = float(clf.standardize.std)
            adv = trades_example(clf, x, task, self.eps_mv, self.step, self.steps, std, gen)
            return trades_loss(clf(x), clf(adv), y, task, self.beta)

        return fit_classifier(classifier, ctx, loss=loss, description=f"train {self.name}")


# linf-dist trains a fixed number of epochs; the core's TrainSpec.epochs became an
# early-stopping cap (100), so by default it keeps the former fixed count
LINF_DIST_EPOCHS = 8


class LinfDist(Options):
    """ℓ∞-distance net training (Zhang et al. 2021, v1): hinge loss on the worst margin at
    ε_train, ℓp schedule 8 → ∞; certifies ℓ∞ radii in mV (margin/2 × std). Multilabel tasks
    certify each label by the sign of its 1-Lipschitz logit (radius min_c |g_c|)."""

    name: ClassVar[str] = "linf-dist"
    kind: ClassVar[str] = "certified"

    eps_mv: float = Field(0.05, gt=0, le=5, description="test budget reported in training (mV)")
    train_eps_mv: float = Field(
        0.15, gt=0, le=5, description="hinge-loss budget ε_train (mV); 3× the test ε"
    )
    lr: float = Field(0.02, gt=0, le=1, description="Adam learning rate (cosine-decayed)")
    mix: float = Field(0.75, ge=0, le=1, description="hinge: weight of the worst-margin term")
    p_start: float = Field(8.0, ge=1, le=1000)
    p_end: float = Field(1000.0, ge=1, le=100_000, description="p = ∞ after the ramp")
    ramp_start: float = Field(0.125, ge=0, lt=1, description="share of training at p_start")
    ramp_end: float = Field(0.9375, gt=0, le=1, description="share of training when p = ∞")
    epochs: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="epochs, all trained (the ℓp schedule spans them, no early stopping); "
        f"None: the run's train epochs, at most {LINF_DIST_EPOCHS} (train epochs is an "
        "early-stopping cap, 100 by default)",
    )

    def training_epochs(self, ctx: FitContext) -> int:
        """`epochs`, or the train spec's epoch cap limited to LINF_DIST_EPOCHS."""
        if self.epochs is not None:
            return self.epochs
        return min(ctx.train_spec.epochs, LINF_DIST_EPOCHS)

    def build(self, ctx: FitContext) -> CertifiedClassifier:
        net = ctx.build_net()
        require_net(net, LinfDistNet, self.name, "linf-dist-net")
        if self.ramp_end <= self.ramp_start:
            raise UserError(
                f"defense {self.name!r}: ramp_end {self.ramp_end:g} must exceed "
                f"ramp_start {self.ramp_start:g}"
            )
        notes = f"ℓ∞-dist net, hinge at ε_train {self.train_eps_mv:g} mV; ℓ∞ radii in mV"
        return CertifiedClassifier(net, ctx.info.task, notes)

    def train(self, classifier: CertifiedClassifier, ctx: FitContext) -> dict[str, Any]:
        return fit_linf_dist(
            classifier,
            ctx,
            eps_train_mv=self.train_eps_mv,
            eps_test_mv=self.eps_mv,
            lr=self.lr,
            mix=self.mix,
            p_start=self.p_start,
            p_end=self.p_end,
            ramp=(self.ramp_start, self.ramp_end),
            description=f"train {self.name}",
            epochs=self.training_epochs(ctx),
        )


DEFENSES = (MART, TRADES, CAS, CASLCNetDefense, LinfDist)
