"""MART and TRADES losses and their inner maximisations (METHODS.md §6), for mV signals.

Multilabel tasks are handled as one binary problem per label: each logit z becomes the two-class
logits (0, z), so softmax gives (1 − σ(z), σ(z)); MART then averages over labels and records,
TRADES sums the per-label KL (the KL of the joint, labels independent) and divides by B.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from ecgarena import eval_mode
from torch import nn

START_SIGMA = 0.001  # both references start the inner attack at x + 0.001·N(0, 1), model units


def as_classes(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Multiclass logits as they are; multilabel logits as `(B·C, 2)` binary logits (0, z)."""
    if task == "multilabel":
        z = logits.reshape(-1, 1)
        return torch.cat([torch.zeros_like(z), z], 1)
    return logits


def as_labels(y: torch.Tensor, task: str) -> torch.Tensor:
    """Class indices matching `as_classes`: the label vector flattened for multilabel."""
    return (y.reshape(-1) if task == "multilabel" else y).long()


def task_ce(
    logits: torch.Tensor, y: torch.Tensor, task: str, reduction: str = "mean"
) -> torch.Tensor:
    """CE for multiclass, the per-label binary CE (= BCE-with-logits) for multilabel."""
    return F.cross_entropy(as_classes(logits, task), as_labels(y, task), reduction=reduction)


def kl_rows(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax p ‖ softmax q) per row, Σ_k p_k (log p_k − log q_k) from log-softmaxes."""
    log_p, log_q = p_logits.log_softmax(1), q_logits.log_softmax(1)
    return (log_p.exp() * (log_p - log_q)).sum(1)


def mart_loss(
    clean: torch.Tensor, adv: torch.Tensor, y: torch.Tensor, task: str, beta: float = 6.0
) -> torch.Tensor:
    """MART (Wang et al. 2020): boosted CE on x' + β·mean KL(p ‖ p')·(1 − p_y), not detached."""
    clean, adv, y2 = as_classes(clean, task), as_classes(adv, task), as_labels(y, task)
    p_adv = adv.softmax(1)
    wrong = p_adv.scatter(1, y2.view(-1, 1), -1.0).amax(1)  # most probable wrong class of p'
    bce = F.cross_entropy(adv, y2) - torch.log(1.0001 - wrong + 1e-12).mean()
    p_true = clean.softmax(1).gather(1, y2.view(-1, 1)).squeeze(1)
    robust = (kl_rows(clean, adv) * (1.0000001 - p_true)).mean()
    return bce + beta * robust


def trades_loss(
    clean: torch.Tensor, adv: torch.Tensor, y: torch.Tensor, task: str, beta: float = 6.0
) -> torch.Tensor:
    """TRADES (Zhang et al. 2019): task loss on x + β·Σ KL(p ‖ p') / B."""
    kl = kl_rows(as_classes(clean, task), as_classes(adv, task)).sum() / clean.shape[0]
    return task_ce(clean, y, task) + beta * kl


def sign_ascent(
    model: nn.Module,
    x: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    eps_mv: float | torch.Tensor,
    step_mv: float | torch.Tensor,
    steps: int,
    start: torch.Tensor,
) -> torch.Tensor:
    """Maximise `objective(x + δ)` by sign steps from δ = `start`, projecting δ onto the ℓ∞
    ball of radius ε (mV) after every step; the model is in eval mode throughout. ε and the
    step are scalars or per-lead `(1, leads, 1)` tensors. Returns x + δ (detached); there is
    no data-range clamp."""
    eps = torch.as_tensor(eps_mv, dtype=x.dtype, device=x.device)
    delta = torch.maximum(torch.minimum(start.detach(), eps), -eps)
    with eval_mode(model):
        for _ in range(steps):
            delta.requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(x + delta), delta)
            delta = delta.detach() + step_mv * grad.sign()
            delta = torch.maximum(torch.minimum(delta, eps), -eps)
    return (x + delta).detach()


def small_start(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """0.001·N(0, 1) in model units, i.e. 0.001·std in mV (the MART/TRADES starting point)."""
    return torch.randn(x.shape, generator=generator, device=x.device) * (START_SIGMA * std)


def mart_example(
    clf: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: str,
    eps_mv: float | torch.Tensor,
    step_mv: float | torch.Tensor,
    steps: int,
    std: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """MART's inner maximisation: CE (BCE for multilabel) of the adversarial example."""

    def objective(xa: torch.Tensor) -> torch.Tensor:
        return task_ce(clf(xa), y, task, reduction="sum")

    start = small_start(x, std, generator)
    return sign_ascent(clf, x, objective, eps_mv, step_mv, steps, start)


def trades_example(
    clf: nn.Module,
    x: torch.Tensor,
    task: str,
    eps_mv: float,
    step_mv: float,
    steps: int,
    std: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """TRADES' inner maximisation: Σ KL(p(x) ‖ p(x')), with p(x) fixed (eval mode)."""
    with eval_mode(clf), torch.no_grad():
        clean = as_classes(clf(x), task)

    def objective(xa: torch.Tensor) -> torch.Tensor:
        return kl_rows(clean, as_classes(clf(xa), task)).sum()

    start = small_start(x, std, generator)
    return sign_ascent(clf, x, objective, eps_mv, step_mv, steps, start)
