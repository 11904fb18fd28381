"""Auto-PGD (Croce & Hein 2020, Algorithm 1) in mV, with per-lead ℓ∞ / ℓ2 budgets.

One run, per record:

    x₀ random in the ball, η = 2ε (per lead for ℓ∞ or per-lead ℓ2, the scalar ε for a
    whole-record ℓ2 budget);
    x₁ = P(x₀ + η·d(x₀));
    z = P(x_k + η·d(x_k)),  x_{k+1} = P(x_k + α(z − x_k) + (1 − α)(x_k − x_{k−1})),  α = 0.75,

d the steepest-ascent direction of unit size (the sign of ∇f for ℓ∞, ∇f normalised per record
or per lead for ℓ2) and P the projection onto the threat model's ball (no [0, 1] box: ECG is in
mV). At the checkpoints w_j (p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)
of N, in whole iterations: see `checkpoints`) a record's η is halved when

1. fewer than ρ·(w_j − w_{j−1}) of the steps since the last checkpoint raised the loss
   (f(x_{i+1}) > f(x_i)), or
2. η was not halved at the last checkpoint and the best loss did not rise since then;

on halving the record restarts from its best point (its gradient too), with zero momentum
(x_{k−1} := x_max: a restart, our reading of "restart from the best point").

Kept per record: the highest-loss point, and the highest-loss *misclassifying* point if any
iterate misclassified (margin < 0, `ecgarena.margin`); the misclassifying one wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from ecgarena import ThreatModel, ascent_direction, margin, project, random_in_ball, step_scale
from torch import nn

from .losses import objective

MOMENTUM = 0.75


def checkpoints(steps: int) -> list[int]:
    """The iterations w_j ≤ N (w₀ = 0 left out) at which the step size may be halved.

    The paper's p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06) in whole iterations:
    the first period is ⌊0.22·N⌋, each next one ⌊0.03·N⌋ shorter, down to ⌊0.06·N⌋ (each at
    least 1). At N = 100 this is exactly ⌈p_j·N⌉ = 22, 41, 57, 70, 80, 87, 93, 99. At other N
    rounding the real-valued ⌈p_j·N⌉ instead drops the one-iteration periods near the end
    (N = 25: 6, 11, 15, 18, 20, 22, 24, 25 instead of 5, 9, 12, 14, 15, …, 25), which measurably
    weakens short runs; the whole-iteration form is also the one of the authors' code.
    """
    period = max(int(0.22 * steps), 1)
    shrink, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    marks, w = [], period
    while w <= steps:
        marks.append(w)
        period = max(period - shrink, shortest)
        w += period
    return marks


@dataclass
class APGDResult:
    """Per record: the δ to return, its objective's best value, whether it misclassifies,
    and how many times η was halved."""

    delta: torch.Tensor
    loss: torch.Tensor
    fooled: torch.Tensor
    halvings: torch.Tensor


def _evaluate(
    model: nn.Module,
    x: torch.Tensor,
    delta: torch.Tensor,
    y: torch.Tensor,
    kind: str,
    task: str,
    target: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Objective, its gradient w.r.t. δ (zeros when the output does not depend on δ at all)
    and the misclassification flag, from one forward and one backward pass."""
    d = delta.detach().requires_grad_(True)
    logits = model(x + d)
    loss = objective(kind, logits, y, task, target)
    if loss.requires_grad:
        (grad,) = torch.autograd.grad(loss.sum(), d, allow_unused=True)
        grad = torch.zeros_like(d) if grad is None else torch.nan_to_num(grad.detach())
    else:
        grad = torch.zeros_like(d)
    wrong = margin(logits.detach(), y, task) < 0
    return torch.nan_to_num(loss.detach(), nan=-torch.inf), grad, wrong


def apgd_once(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    kind: str,
    task: str,
    *,
    steps: int,
    rho: float,
    generator: torch.Generator,
    target: torch.Tensor | None = None,
) -> APGDResult:
    """One APGD run on every record of `x` (the model is expected in eval mode)."""
    b = x.shape[0]
    eta = (2 * step_scale(threat, x)).expand(b, -1, -1).clone()
    delta = random_in_ball(tuple(x.shape), threat, generator, x.device).to(x.dtype)
    delta = project(delta, threat)
    loss, grad, wrong = _evaluate(model, x, delta, y, kind, task, target)

    best_delta, best_loss, best_grad = delta.clone(), loss.clone(), grad.clone()
    found = wrong.clone()
    found_delta = torch.where(wrong.view(-1, 1, 1), delta, torch.zeros_like(delta))
    found_loss = torch.where(wrong, loss, torch.full_like(loss, -torch.inf))

    prev, cur_loss = delta, loss
    ups = torch.zeros(b, device=x.device)
    halved_last = torch.zeros(b, dtype=torch.bool, device=x.device)
    best_at_check = best_loss.clone()
    halvings = torch.zeros(b, dtype=torch.long, device=x.device)
    marks, last_mark = set(checkpoints(steps)), 0
    for k in range(steps):
        z = project(delta + eta * ascent_direction(grad, threat), threat)
        if k == 0:
            new = z
        else:
            new = project(delta + MOMENTUM * (z - delta) + (1 - MOMENTUM) * (delta - prev), threat)
        prev, delta = delta, new
        loss, grad, wrong = _evaluate(model, x, delta, y, kind, task, target)

        take = wrong & (~found | (loss > found_loss))
        found_delta[take], found_loss[take] = delta[take], loss[take]
        found |= wrong
        ups += (loss > cur_loss).float()
        cur_loss = loss
        better = loss > best_loss
        best_delta[better], best_loss[better], best_grad[better] = (
            delta[better],
            loss[better],
            grad[better],
        )

        if k + 1 in marks:
            period = k + 1 - last_mark
            few_ups = ups < rho * period
            stalled = ~halved_last & (best_loss <= best_at_check)
            halve = few_ups | stalled
            eta[halve] = eta[halve] / 2
            halvings += halve.long()
            delta, grad, prev = delta.clone(), grad.clone(), prev.clone()
            delta[halve], grad[halve] = best_delta[halve], best_grad[halve]
            prev[halve] = best_delta[halve]  # a restart: no momentum carried over
            cur_loss = torch.where(halve, best_loss, cur_loss)
            halved_last, best_at_check = halve, best_loss.clone()
            ups.zero_()
            last_mark = k + 1

    out = torch.where(found.view(-1, 1, 1), found_delta, best_delta)
    return APGDResult(out.detach(), torch.where(found, found_loss, best_loss), found, halvings)


def run_apgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    kind: str,
    task: str,
    *,
    steps: int,
    rho: float,
    restarts: int,
    generator: torch.Generator,
    target: torch.Tensor | None = None,
    into: APGDResult | None = None,
) -> APGDResult:
    """APGD with `restarts` random starts; each restart runs only on records no earlier run
    (nor `into`, a previous result merged into) has misclassified. Per record: a misclassifying
    δ if any run found one, else the highest-objective δ."""
    b = x.shape[0]
    res = into or APGDResult(
        torch.zeros_like(x),
        torch.full((b,), -torch.inf, device=x.device),
        torch.zeros(b, dtype=torch.bool, device=x.device),
        torch.zeros(b, dtype=torch.long, device=x.device),
    )
    for _ in range(restarts):
        idx = (~res.fooled).nonzero().flatten()
        if idx.numel() == 0:
            break
        run = apgd_once(
            model,
            x[idx],
            y[idx],
            threat,
            kind,
            task,
            steps=steps,
            rho=rho,
            generator=generator,
            target=None if target is None else target[idx],
        )
        take = run.fooled | (run.loss > res.loss[idx])
        sel = idx[take]
        res.delta[sel], res.loss[sel] = run.delta[take], run.loss[take]
        res.fooled[sel] = run.fooled[take]
        res.halvings[sel] = run.halvings[take]
    return res
