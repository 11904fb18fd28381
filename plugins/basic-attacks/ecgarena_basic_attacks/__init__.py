"""Baseline attacks: random noise within the budget, FGSM, PGD and MI-FGSM (ℓ∞ / ℓ2, per-lead
budgets), and Carlini–Wagner ℓ2."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

import ecgarena
import torch
from ecgarena import Options, fgsm, lead_budget, mi_fgsm, pgd, random_in_ball
from pydantic import Field

from .cw import CWL2Attack


class _PerSample(Options):
    """Options shared by the per-record attacks: the norm of the ball."""

    norm: Literal["linf", "l2"] = "linf"

    def threat_model(self, budget_mv: float | list[float]) -> ecgarena.ThreatModel:
        return ecgarena.ThreatModel(norm=self.norm, budget_mv=budget_mv)


class NoiseAttack(_PerSample):
    """Random perturbation inside the budget: the floor every real attack must beat."""

    name: ClassVar[str] = "noise"
    distribution: Literal["uniform", "sign"] = Field(
        "uniform", description="uniform in the ball, or ±ε per sample (ℓ∞ corners)"
    )

    def run(self, classifier, x, y, threat, ctx: ecgarena.AttackContext) -> torch.Tensor:
        if self.distribution == "sign" and threat.norm == "linf":
            signs = torch.randint(0, 2, x.shape, generator=ctx.generator, device=x.device) * 2 - 1
            return signs.to(x.dtype) * lead_budget(threat, x.shape[1], x)
        return random_in_ball(tuple(x.shape), threat, ctx.generator, x.device).to(x.dtype)


class FGSMAttack(_PerSample):
    """Fast gradient sign method (Goodfellow et al. 2015): one full-budget step."""

    name: ClassVar[str] = "fgsm"
    stronger_than: ClassVar[tuple[str, ...]] = ("noise",)
    target: int | None = Field(None, ge=0, description="class index for a targeted attack")

    def threat_model(self, budget_mv: float | list[float]) -> ecgarena.ThreatModel:
        return ecgarena.ThreatModel(
            norm=self.norm, budget_mv=budget_mv, targeted=self.target is not None
        )

    def run(self, classifier, x, y, threat, ctx: ecgarena.AttackContext) -> torch.Tensor:
        return fgsm(classifier, x, y, threat, ctx.info.task, self.target)


class PGDAttack(FGSMAttack):
    """Projected gradient descent (Madry et al. 2018) with random start and restarts."""

    name: ClassVar[str] = "pgd"
    stronger_than: ClassVar[tuple[str, ...]] = ("noise", "fgsm")
    steps: int = Field(10, ge=1, le=10_000)
    step_size: float = Field(0.25, gt=0, le=2, description="step as a fraction of ε")
    random_start: bool = True
    restarts: int = Field(1, ge=1, le=100)

    def run(self, classifier, x, y, threat, ctx: ecgarena.AttackContext) -> torch.Tensor:
        return pgd(
            classifier,
            x,
            y,
            threat,
            ctx.info.task,
            steps=self.steps,
            step_size=self.step_size,
            random_start=self.random_start,
            restarts=self.restarts,
            generator=ctx.generator,
            target=self.target,
        )


class MIFGSMAttack(FGSMAttack):
    """Momentum iterative FGSM (Dong et al. 2018): α = ε/steps, decay μ, no random start."""

    name: ClassVar[str] = "mi-fgsm"
    steps: int = Field(10, ge=1, le=10_000)
    decay: float = Field(1.0, ge=0, le=10, description="momentum μ")

    def run(self, classifier, x, y, threat, ctx: ecgarena.AttackContext) -> torch.Tensor:
        return mi_fgsm(
            classifier,
            x,
            y,
            threat,
            ctx.info.task,
            steps=self.steps,
            decay=self.decay,
            target=self.target,
        )


@ecgarena.hookimpl
def ecgarena_register_attacks(register: Callable[[type], None]) -> None:
    register(NoiseAttack)
    register(FGSMAttack)
    register(PGDAttack)
    register(MIFGSMAttack)
    register(CWL2Attack)
