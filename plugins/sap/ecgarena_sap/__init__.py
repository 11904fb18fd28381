"""SAP: smooth adversarial perturbations (Han et al., Nature Medicine 2020; ADV_ECG).

PGD warm start (20 steps, α = ε/10, no random start), then 40 sign steps on θ with the
perturbation S(θ) — a mean of Gaussian smoothings — so the result is smooth by construction.

Paper form: 300 Hz, kernel sizes 5, 7, 11, 15, 19 × σ 1, 3, 5, 7, 10 samples. Our choice at
other rates (`smoothing.py`): the same durations in samples, with every kernel kept at least
`min_taps` = 3 taps (at 100 Hz the size-5 kernels would otherwise be 1-tap identities);
`min_taps=1` is the plain duration rescaling. The report lists the taps used at the run's rate
(the same in every batch call of a cell: they depend on the rate and the options only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import ecgarena
import torch
from ecgarena import (
    AttackContext,
    Attacked,
    Classifier,
    ClassifierInfo,
    FitContext,
    Options,
    ThreatModel,
    eval_mode,
    fit_classifier,
    lead_budget,
    per_sample_loss,
    pgd,
    project,
)
from pydantic import Field, field_validator

from .smoothing import (
    MIN_TAPS,
    REFERENCE_FS,
    SIGMAS,
    SIZES,
    kernel_bank,
    mean_kernel,
    padding_mask,
    scaled_size,
    smooth,
)


class SAPAttack(Options):
    """Smooth adversarial perturbation: per-record, ℓ∞ budget per lead, Gaussian-smoothed."""

    name: ClassVar[str] = "sap"
    stronger_than: ClassVar[tuple[str, ...]] = ("noise",)

    pgd_steps: int = Field(20, ge=0, le=10_000, description="PGD warm-start steps")
    steps: int = Field(40, ge=1, le=10_000, description="SAP steps on θ (2 × PGD steps)")
    step_size: float = Field(0.1, gt=0, le=2, description="α as a fraction of ε (1 µV of 10)")
    kernel_sizes: tuple[int, ...] = Field(SIZES, min_length=1, description="sizes at 300 Hz")
    sigmas: tuple[float, ...] = Field(SIGMAS, min_length=1, description="σ at 300 Hz, samples")
    keep_padding: bool = Field(True, description="δ = 0 on zero-padded record ends")
    min_taps: int = Field(
        MIN_TAPS, ge=1, le=99, description="rescaled kernels keep ≥ this many taps (odd)"
    )

    @field_validator("min_taps")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"min_taps must be odd, got {value}")
        return value

    @staticmethod
    def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
        """The kernel taps of the cell: every batch call reports the same (same rate)."""
        return reports[0]

    def tap_report(self, fs: float) -> dict[str, Any]:
        """The kernel taps used at rate `fs` (sizes are given at 300 Hz)."""
        return {
            "fs_hz": fs,
            "reference_fs_hz": REFERENCE_FS,
            "kernel_sizes_at_reference": list(self.kernel_sizes),
            "kernel_taps": self.kernel_taps(fs),
            "min_taps": self.min_taps,
        }

    def threat_model(self, budget_mv: float | list[float]) -> ThreatModel:
        return ThreatModel(norm="linf", budget_mv=budget_mv)

    def kernel(self, fs: float) -> torch.Tensor:
        """The mean smoothing kernel at the dataset's rate."""
        return mean_kernel(kernel_bank(fs, self.kernel_sizes, self.sigmas, self.min_taps))

    def kernel_taps(self, fs: float) -> list[int]:
        """Taps of each kernel size at `fs` (the 300 Hz sizes, rescaled)."""
        return [scaled_size(s, fs, self.min_taps) for s in self.kernel_sizes]

    def run(
        self,
        classifier: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ThreatModel,
        ctx: AttackContext,
    ) -> Attacked:
        task, fs = ctx.info.task, ctx.info.fs
        kernel = self.kernel(fs)
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
        return Attacked(delta, self.tap_report(fs))


class SAPTraining(Options):
    """Adversarial training on SAP examples (the CPR seed's "oracle" defense)."""

    name: ClassVar[str] = "sap-at"
    kind: ClassVar[str] = "training"

    eps_mv: float = Field(0.05, gt=0, le=5, description="training budget ℓ∞ per lead (mV)")
    pgd_steps: int = Field(5, ge=0, le=100, description="PGD warm-start steps per batch")
    steps: int = Field(10, ge=1, le=200, description="SAP steps per batch")
    clean_fraction: float = Field(0.0, ge=0, lt=1, description="share of each batch left clean")

    def build(self, ctx: FitContext) -> Classifier:
        notes = f"trained on SAP examples (ε {self.eps_mv:g} mV, {self.steps} steps)"
        return Classifier(ctx.build_net(), info=ClassifierInfo(notes=notes))

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        sap = SAPAttack(pgd_steps=self.pgd_steps, steps=self.steps)
        threat = sap.threat_model(self.eps_mv)
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
        actx = AttackContext(ctx.info, ctx.device, gen)

        def augment(clf: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            k = int(round(len(x) * self.clean_fraction))
            return torch.cat([x[:k], x[k:] + sap.run(clf, x[k:], y[k:], threat, actx).delta])

        return fit_classifier(classifier, ctx, augment=augment, description=f"train {self.name}")


@ecgarena.hookimpl
def ecgarena_register_attacks(register: Callable[[type], None]) -> None:
    register(SAPAttack)


@ecgarena.hookimpl
def ecgarena_register_defenses(register: Callable[[type], None]) -> None:
    register(SAPTraining)
