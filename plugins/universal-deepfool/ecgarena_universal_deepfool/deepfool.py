"""DeepFool (Moosavi-Dezfooli et al. 2016), batched over records, for multiclass argmax and
for multilabel thresholded outputs.

Both tasks reduce to the same step: each candidate k has a value h_k < 0 that must cross zero
for the decision to change, with gradient w_k. Multiclass: h_k = f_k − f_k̂ over the top
classes (LTS4); multilabel: h_c = −s_c·z_c for every label logit z_c with clean sign s_c (the
binary form, METHODS.md §3). The step goes to the nearest linearised boundary:
ℓ2 `(|h_l|+1e-4)/‖w_l‖₂² · w_l`, ℓ∞ `(|h_l|+1e-4)/‖w_l‖₁ · sign(w_l)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from ecgarena import Classifier


@dataclass
class DeepFoolResult:
    """Per record: the perturbation (overshoot applied), iterations used, and whether the
    decision changed."""

    r: torch.Tensor
    iterations: torch.Tensor
    fooled: torch.Tensor


def decision(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Argmax class (multiclass) or the {0,1} label vector (multilabel)."""
    return (logits > 0).long() if task == "multilabel" else logits.argmax(1)


def same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per record: are two decisions equal."""
    return (a == b).all(1) if a.ndim == 2 else a == b


def logits_and_jacobian(
    clf: Classifier, x: torch.Tensor, c: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits `(B, C)` and their input gradients `(B, C, L, T)`: one forward, C backward passes
    (records are independent in eval mode, so the gradient of a column sum is per record)."""
    xr = x.detach().requires_grad_(True)
    out = clf(xr)
    grads = [torch.autograd.grad(out[:, k].sum(), xr, retain_graph=k < c - 1)[0] for k in range(c)]
    return out.detach(), torch.stack(grads, dim=1)


def candidates(
    logits: torch.Tensor, jac: torch.Tensor, label: torch.Tensor, task: str, top: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Values h `(B, K)` (negative until the boundary is crossed) and gradients w `(B, K, L, T)`."""
    if task == "multilabel":
        s = label.float() * 2 - 1  # +1 where the clean label is on
        return -s * logits, -s.view(*s.shape, 1, 1) * jac
    k_hat = top[:, :1]
    others = top[:, 1:]
    f = logits.gather(1, others) - logits.gather(1, k_hat)
    idx = others.view(*others.shape, 1, 1).expand(-1, -1, *jac.shape[2:])
    base = jac.gather(1, k_hat.view(-1, 1, 1, 1).expand(-1, 1, *jac.shape[2:]))
    return f, jac.gather(1, idx) - base


def deepfool(
    clf: Classifier,
    x: torch.Tensor,
    task: str,
    norm: str = "l2",
    overshoot: float = 0.02,
    max_iter: int = 10,
    num_classes: int = 10,
) -> DeepFoolResult:
    """DeepFool on each record of x (already including any universal v); eval mode expected."""
    with torch.no_grad():
        logits0 = clf(x)
    label = decision(logits0, task)
    top = logits0.argsort(1, descending=True)[:, : min(num_classes, logits0.shape[1])]
    r_tot = torch.zeros_like(x)
    active = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    iterations = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for _ in range(max_iter):
        x_i = x + (1 + overshoot) * r_tot
        logits, jac = logits_and_jacobian(clf, x_i, logits0.shape[1])
        active &= same(decision(logits, task), label)
        if not active.any():
            break
        h, w = candidates(logits, jac, label, task, top)
        flat = w.flatten(2)
        size = flat.norm(dim=2) if norm == "l2" else flat.abs().sum(2)
        dist = h.abs() / size.clamp_min(1e-12)
        best = dist.argmin(1)
        pick = best.view(-1, 1, 1, 1).expand(-1, 1, *w.shape[2:])
        w_l = w.gather(1, pick).squeeze(1)
        h_l = h.gather(1, best.view(-1, 1)).squeeze(1)
        s_l = size.gather(1, best.view(-1, 1)).squeeze(1).clamp_min(1e-12)
        if norm == "l2":
            step = ((h_l.abs() + 1e-4) / s_l**2).view(-1, 1, 1) * w_l
        else:
            step = ((h_l.abs() + 1e-4) / s_l).view(-1, 1, 1) * w_l.sign()
        r_tot = r_tot + step * active.view(-1, 1, 1)
        iterations += active.long()
    with torch.no_grad():
        fooled = ~same(decision(clf(x + (1 + overshoot) * r_tot), task), label)
    return DeepFoolResult((1 + overshoot) * r_tot, iterations, fooled)
