"""What the PGD-based training defenses share: ε and step options in mV, the seeded generator,
and the error for a defense given the wrong model."""

from __future__ import annotations

from typing import ClassVar

import torch
from ecgarena import Classifier, ClassifierInfo, FitContext, Options, UserError
from pydantic import Field


def require_net(net: torch.nn.Module, kind: type, defense: str, model: str) -> None:
    """A UserError naming the defense, the model it needs and the one it got."""
    if not isinstance(net, kind):
        raise UserError(
            f"defense {defense!r} needs model {model!r}; got a {type(net).__name__} "
            f"(use --model {model})"
        )


class AdversarialTraining(Options):
    """Shared options of the PGD-based training defenses (ε and step in mV)."""

    kind: ClassVar[str] = "training"
    step_fraction: ClassVar[float] = 0.25  # the default inner step, as a share of ε

    eps_mv: float = Field(0.05, gt=0, le=5, description="ℓ∞ training budget (mV)")
    steps: int = Field(10, ge=1, le=100, description="inner-attack sign steps")
    step_mv: float | None = Field(
        None, gt=0, le=5, description="inner-attack step (mV); default ε/4"
    )

    @property
    def step(self) -> float:
        """The inner step in mV: `step_mv`, else `step_fraction`·ε."""
        return self.step_mv if self.step_mv is not None else self.eps_mv * self.step_fraction

    def notes(self) -> str:
        return f"{self.name} training, ε {self.eps_mv:g} mV, {self.steps} steps of {self.step:g} mV"

    def build(self, ctx: FitContext) -> Classifier:
        return Classifier(ctx.build_net(), info=ClassifierInfo(notes=self.notes()))

    def generator(self, ctx: FitContext) -> torch.Generator:
        return torch.Generator(device=ctx.device).manual_seed(ctx.seed)
