"""The DLR-type APGD stage shared by `apgd-dlr` and `auto`: which objective the task supports
(DLR, targeted DLR or the margin loss) and one run of it, per target class when targeted."""

from __future__ import annotations

import torch
from ecgarena import ThreatModel, UserError
from torch import nn

from .apgd import APGDResult, run_apgd

DLRPlan = tuple[str, int]  # the objective's name and its number of target classes (0: none)


def ranked_targets(logits: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """Per record, the `n` non-true classes with the highest clean logits, best first `(B, n)`."""
    others = logits.scatter(1, y.long().view(-1, 1), -torch.inf)
    return others.argsort(dim=1, descending=True)[:, :n]


def dlr_plan(task: str, k: int, targeted: bool, n_targets: int, who: str) -> DLRPlan:
    """The objective an APGD-DLR stage uses and its number of target classes (0: untargeted);
    a UserError naming the class count when the task cannot support it."""
    if task == "multilabel":
        if targeted:
            raise UserError(
                f"{who}: targeted DLR is multiclass only; on a multilabel task "
                "use targeted=false (the per-label margin loss)"
            )
        return "neg_margin", 0
    if targeted:
        if k < 4:
            raise UserError(
                f"{who}: targeted DLR needs at least 4 classes (z_π4 and ≥ 3 targets), the "
                f"task has {k}; use targeted=false (untargeted DLR needs ≥ 3 classes)"
            )
        return "dlr_targeted", min(n_targets, k - 1)
    if k < 3:
        raise UserError(
            f"{who}: the DLR loss needs at least 3 classes (z_π3), the task has {k}; "
            "use apgd-ce or square on a 2-class task"
        )
    return "dlr", 0


def plan_label(plan: DLRPlan) -> str:
    """How a report names the stage's objective, e.g. `dlr_targeted (3 targets)`."""
    kind, n_targets = plan
    return kind + (f" ({n_targets} targets)" if n_targets else "")


def run_dlr_stage(
    clf: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    task: str,
    plan: DLRPlan,
    *,
    steps: int,
    rho: float,
    restarts: int,
    generator: torch.Generator,
) -> APGDResult:
    """APGD with the DLR-type objective of `plan`; targeted: one run per target class (the
    top-ranked non-true classes of the clean logits), a record broken if any run broke it."""
    kind, n_targets = plan
    common = {"steps": steps, "rho": rho, "restarts": restarts, "generator": generator}
    if n_targets == 0:
        return run_apgd(clf, x, y, threat, kind, task, **common)
    with torch.no_grad():
        targets = ranked_targets(clf(x), y, n_targets)
    res = None
    for j in range(n_targets):
        res = run_apgd(clf, x, y, threat, kind, task, **common, target=targets[:, j], into=res)
    assert res is not None
    return res
