"""Adversarial distillation training — the defense the CPR seed calls CardioDefense (Shao et al.,
BSPC 2024), after Papernot et al.'s defensive distillation (METHODS.md §5).

1. A teacher is trained with its logits divided by a temperature T.
2. The student learns the teacher's softened labels at the same T, on clean records and on PGD
   examples crafted against the student as it trains (soft labels of the clean record).
3. The student is deployed at T = 1.
The exact ADT loss and T were not verified against the paper: T = 10, an equal clean/adversarial
mix and the T² scaling of Hinton et al. are this plugin's stated choices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import ecgarena
import torch
import torch.nn.functional as F
from ecgarena import (
    Classifier,
    ClassifierInfo,
    FitContext,
    Options,
    ThreatModel,
    fit_classifier,
    pgd,
    task_loss,
)
from pydantic import Field


def soft_labels(logits: torch.Tensor, temperature: float, task: str) -> torch.Tensor:
    """The teacher's softened targets: softmax(z/T), or per-label sigmoid(z/T)."""
    z = logits / temperature
    return torch.sigmoid(z) if task == "multilabel" else z.softmax(1)


def distillation_loss(
    student_logits: torch.Tensor, targets: torch.Tensor, temperature: float, task: str
) -> torch.Tensor:
    """T² × the cross-entropy of the student at temperature T against soft targets."""
    z = student_logits / temperature
    if task == "multilabel":
        ce = F.binary_cross_entropy_with_logits(z, targets)
    else:
        ce = -(targets * z.log_softmax(1)).sum(1).mean()
    return temperature**2 * ce


class AdversarialDistillation(Options):
    """Distil a temperature-T teacher into a student on clean and PGD examples; deploy at T=1."""

    name: ClassVar[str] = "adversarial-distillation"
    kind: ClassVar[str] = "training"

    temperature: float = Field(10.0, ge=1, le=1000, description="distillation temperature T")
    eps_mv: float = Field(0.05, gt=0, le=5, description="PGD ℓ∞ budget for the student (mV)")
    steps: int = Field(5, ge=1, le=100, description="PGD steps per batch")
    adversarial_weight: float = Field(0.5, ge=0, le=1, description="weight of the PGD term")

    def build(self, ctx: FitContext) -> Classifier:
        notes = f"student distilled at T={self.temperature:g} on clean + PGD ({self.eps_mv:g} mV)"
        return Classifier(ctx.build_net(), info=ClassifierInfo(notes=notes))

    def train(self, classifier: Classifier, ctx: FitContext) -> dict[str, Any]:
        task, temp = ctx.info.task, self.temperature
        teacher = Classifier(ctx.build_net())
        teacher_summary = fit_classifier(
            teacher,
            ctx,
            loss=lambda clf, x, y, class_weight=None: task_loss(
                clf(x) / temp, y, task, class_weight
            ),
            description="train teacher",
        )
        teacher.requires_grad_(False).eval()
        threat = ThreatModel(norm="linf", budget_mv=self.eps_mv)
        gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
        w = self.adversarial_weight

        def loss(clf: Classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                targets = soft_labels(teacher(x), temp, task)
            delta = pgd(clf, x, y, threat, task, steps=self.steps, generator=gen)
            clean = distillation_loss(clf(x), targets, temp, task)
            adversarial = distillation_loss(clf(x + delta), targets, temp, task)
            return (1 - w) * clean + w * adversarial

        summary = fit_classifier(classifier, ctx, loss=loss, description=f"train {self.name}")
        teacher_keys = ("epochs_run", "best_val_score", "seconds")
        return {**summary, "teacher": {k: teacher_summary[k] for k in teacher_keys}}


@ecgarena.hookimpl
def ecgarena_register_defenses(register: Callable[[type], None]) -> None:
    register(AdversarialDistillation)
