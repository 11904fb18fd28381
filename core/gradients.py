"""Gradient-based attack primitives (FGSM, PGD) shared by attack plugins and adversarial
training. Budgets come from a ThreatModel in mV; there is no [0, 1] clamp anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .constraints import lead_budget, project, random_in_ball
from .specs import ThreatModel


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode, and restore each one's own flag afterwards."""
    was = [m.training for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in zip(model.modules(), was):
            m.training = flag


def per_sample_loss(
    logits: torch.Tensor, y: torch.Tensor, task: str, target: int | None = None
) -> torch.Tensor:
    """The loss an attack ascends, per record: task loss, or minus the loss towards `target`."""
    if target is not None:
        if task == "multilabel":
            goal = F.one_hot(torch.full_like(y[:, 0], target).long(), y.shape[1]).float()
            return -F.binary_cross_entropy_with_logits(logits, goal, reduction="none").mean(1)
        return -F.cross_entropy(logits, torch.full_like(y, target).long(), reduction="none")
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, y.float(), reduction="none").mean(1)
    return F.cross_entropy(logits, y.long(), reduction="none")


def loss_and_grad(
    model: nn.Module,
    x: torch.Tensor,
    delta: torch.Tensor,
    y: torch.Tensor,
    task: str,
    target: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-record attack loss at x + δ and its gradient with respect to δ."""
    delta = delta.detach().requires_grad_(True)
    loss = per_sample_loss(model(x + delta), y, task, target)
    (grad,) = torch.autograd.grad(loss.sum(), delta)
    return loss.detach(), grad.detach()


def ascent_direction(grad: torch.Tensor, threat: ThreatModel) -> torch.Tensor:
    """Steepest-ascent direction of unit size: sign for ℓ∞, normalised gradient for ℓ2."""
    if threat.norm == "linf":
        return grad.sign()
    dims = (2,) if isinstance(threat.budget_mv, list) else (1, 2)
    return grad / grad.norm(dim=dims, keepdim=True).clamp_min(1e-12)


def step_scale(threat: ThreatModel, like: torch.Tensor) -> torch.Tensor:
    """ε per lead for ℓ∞ (or per-lead ℓ2); the scalar ε for a whole-record ℓ2 budget."""
    eps = lead_budget(threat, like.shape[1], like)
    return eps if threat.norm == "linf" or isinstance(threat.budget_mv, list) else eps[:, :1]


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    task: str,
    target: int | None = None,
) -> torch.Tensor:
    """One full-budget step along the ascent direction; returns δ."""
    with eval_mode(model):
        _, grad = loss_and_grad(model, x, torch.zeros_like(x), y, task, target)
    return project(ascent_direction(grad, threat) * step_scale(threat, x), threat)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    task: str,
    *,
    steps: int = 10,
    step_size: float = 0.25,
    random_start: bool = True,
    restarts: int = 1,
    generator: torch.Generator | None = None,
    target: int | None = None,
) -> torch.Tensor:
    """Projected gradient ascent (Madry et al.); `step_size` is a fraction of ε per step.

    Over restarts it keeps, per record, the δ with the highest final attack loss.
    """
    best = torch.zeros_like(x)
    best_loss = torch.full((x.shape[0],), -torch.inf, device=x.device)
    scale = step_scale(threat, x)
    with eval_mode(model):
        for _ in range(restarts):
            delta = (
                random_in_ball(tuple(x.shape), threat, generator, x.device).to(x.dtype)
                if random_start
                else torch.zeros_like(x)
            )
            for _ in range(steps):
                _, grad = loss_and_grad(model, x, delta, y, task, target)
                delta = project(delta + step_size * scale * ascent_direction(grad, threat), threat)
            with torch.no_grad():
                loss = per_sample_loss(model(x + delta), y, task, target)
            better = loss > best_loss
            best[better], best_loss[better] = delta[better], loss[better]
    return best


def mi_fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    task: str,
    *,
    steps: int = 10,
    decay: float = 1.0,
    target: int | None = None,
) -> torch.Tensor:
    """Momentum iterative FGSM (Dong et al. 2018): g ← μ·g + ∇/mean|∇| per record, then an
    α = ε/steps step along g's ascent direction, projected; no random start. Returns δ."""
    scale = step_scale(threat, x)
    delta, g = torch.zeros_like(x), torch.zeros_like(x)
    with eval_mode(model):
        for _ in range(steps):
            _, grad = loss_and_grad(model, x, delta, y, task, target)
            g = decay * g + grad / grad.abs().mean(dim=(1, 2), keepdim=True).clamp_min(1e-12)
            delta = project(delta + scale / steps * ascent_direction(g, threat), threat)
    return delta


def margin(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Per record, how far the prediction is from being wrong (< 0: misclassified).

    Multiclass: Z_y − max_{j≠y} Z_j (Carlini–Wagner's f). Multilabel: the smallest signed
    logit (+z for a present label, −z for an absent one), i.e. the label nearest to a flip.
    """
    if task == "multilabel":
        return ((2 * y.float() - 1) * logits).amin(dim=1)
    true = logits.gather(1, y.long().view(-1, 1)).squeeze(1)
    other = logits.masked_fill(F.one_hot(y.long(), logits.shape[1]).bool(), -torch.inf)
    return true - other.amax(dim=1)
