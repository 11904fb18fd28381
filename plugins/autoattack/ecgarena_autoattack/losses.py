"""The objectives the suite ascends, per record (higher = closer to / further into an error).

- `ce`: cross-entropy (multiclass); multilabel: BCE-with-logits **meaned** over the labels
  (`ecgarena.per_sample_loss`).
- `dlr`: the Difference of Logits Ratio of Croce & Hein (2020),
  −(z_y − max_{j≠y} z_j) / (z_π1 − z_π3 + 1e-12), π the logits sorted in decreasing order.
- `dlr_targeted`: −(z_y − z_t) / (z_π1 − ½(z_π3 + z_π4) + 1e-12).
- `neg_margin`: −margin, the multilabel stand-in for DLR: −min_c (2y_c − 1)·z_c, i.e. push the
  label nearest to a flip (`ecgarena.margin`).

DLR is invariant to a positive rescaling (and a shift) of the logits; the margin is positively
homogeneous in them, so sign / normalised-gradient steps and loss comparisons — everything
APGD does with it — are unchanged by a logit rescaling too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from ecgarena import UserError, margin, per_sample_loss

DLR_EPS = 1e-12


def _true_logit(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return logits.gather(1, y.long().view(-1, 1)).squeeze(1)


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Untargeted DLR per record; needs at least 3 classes."""
    if logits.shape[1] < 3:
        raise UserError(
            f"the DLR loss needs at least 3 classes (z_π3), the task has {logits.shape[1]}"
        )
    ranked = logits.sort(dim=1, descending=True).values
    others = logits.masked_fill(F.one_hot(y.long(), logits.shape[1]).bool(), -torch.inf)
    gap = _true_logit(logits, y) - others.amax(dim=1)
    return -gap / (ranked[:, 0] - ranked[:, 2] + DLR_EPS)


def dlr_targeted_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targeted DLR per record towards `target` (one class index per record); needs ≥ 4 classes."""
    if logits.shape[1] < 4:
        raise UserError(
            f"the targeted DLR loss needs at least 4 classes (z_π4), the task has {logits.shape[1]}"
        )
    ranked = logits.sort(dim=1, descending=True).values
    gap = _true_logit(logits, y) - _true_logit(logits, target)
    return -gap / (ranked[:, 0] - 0.5 * (ranked[:, 2] + ranked[:, 3]) + DLR_EPS)


def objective(
    kind: str,
    logits: torch.Tensor,
    y: torch.Tensor,
    task: str,
    target: torch.Tensor | None = None,
) -> torch.Tensor:
    """The per-record loss named `kind` (ce, dlr, dlr_targeted, neg_margin)."""
    if kind == "ce":
        return per_sample_loss(logits, y, task)
    if kind == "dlr":
        return dlr_loss(logits, y)
    if kind == "dlr_targeted":
        assert target is not None
        return dlr_targeted_loss(logits, y, target)
    if kind == "neg_margin":
        return -margin(logits, y, task)
    raise ValueError(f"unknown objective {kind!r}")
