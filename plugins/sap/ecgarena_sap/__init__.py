"""SAP: smooth adversarial perturbations (Han et al., Nature Medicine 2020; ADV_ECG).

PGD warm start (20 steps, α = ε/10, no random start), then 40 sign steps on θ with the
perturbation S(θ) — a mean of Gaussian smoothings — so the result is smooth by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import ecgarena
import torch
from ecgarena.constraints import lead_budget, project
from ecgarena.gradients import eval_mode, per_sample_loss, pgd
from ecgarena.protocols import AttackContext, Classifier
from ecgarena.specs import ThreatModel
from pydantic import BaseModel, ConfigDict, Field

from .smoothing import SIGMAS, SIZES, kernel_bank, mean_kernel, padding_mask, smooth


class SAPAttack(BaseModel):
    """Smooth adversarial perturbation: per-record, ℓ∞ budget per lead, Gaussian-smoothed."""

    model_config = ConfigDict(extra="forbid")
    name: ClassVar[str] = "sap"

    pgd_steps: int = Field(20, ge=0, le=10_000, description="PGD warm-start steps")
    steps: int = Field(40, ge=1, le=10_000, description="SAP steps on θ (2 × PGD steps)")
    step_size: float = Field(0.1, gt=0, le=2, description="α as a fraction of ε (1 µV of 10)")
    kernel_sizes: tuple[int, ...] = Field(SIZES, min_length=1, description="sizes at 300 Hz")
    sigmas: tuple[float, ...] = Field(SIGMAS, min_length=1, description="σ at 300 Hz, samples")
    keep_padding: bool = Field(True, description="δ = 0 on zero-padded record ends")

    def threat_model(self, budget_mv: float | list[float]) -> ThreatModel:
        return ThreatModel(norm="linf", budget_mv=budget_mv)

    def kernel(self, fs: float) -> torch.Tensor:
        """The mean smoothing kernel at the dataset's rate."""
        return mean_kernel(kernel_bank(fs, self.kernel_sizes, self.sigmas))

    def run(
        self,
        classifier: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        ctx: AttackContext,
    ) -> torch.Tensor:
        task = ctx.info.task
        kernel = self.kernel(ctx.info.fs)
        alpha = self.step_size * lead_budget(threat, x.shape[1], x)
        theta = (
            pgd(
                classifier,
                x,
                y,
                threat,
                task,
                steps=self.pgd_steps,
                step_size=self.step_size,
                random_start=False,
            )
            if self.pgd_steps
            else torch.zeros_like(x)
        )
        with eval_mode(classifier):
            for _ in range(self.steps):
                theta = theta.detach().requires_grad_(True)
                loss = per_sample_loss(classifier(x + smooth(theta, kernel)), y, task).sum()
                (grad,) = torch.autograd.grad(loss, theta)
                theta = project(theta.detach() + alpha * grad.sign(), threat)
        delta = smooth(theta.detach(), kernel)
        if self.keep_padding:
            delta = delta.masked_fill(padding_mask(x), 0.0)
        return delta


@ecgarena.hookimpl
def ecgarena_register_attacks(register: Callable[[type], None]) -> None:
    register(SAPAttack)
