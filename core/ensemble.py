"""An ensemble's own numbers: each member's accuracy clean and under the attack on the whole
ensemble, P(≥k of K members correct), and the attack crafted on each member alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from . import metrics
from .audit import AuditReport
from .protocols import Classifier
from .training import predict_logits

ENSEMBLE_RECORDS = 128  # records each member-targeted attack is crafted on

# (member index, records, labels) -> (δ, audit) of the attack crafted on that member alone
AttackMember = Callable[[int, np.ndarray, np.ndarray], tuple[np.ndarray, AuditReport]]


def ensemble_block(
    clf: Classifier,
    x_np: np.ndarray,
    x_adv: np.ndarray,
    y_np: np.ndarray,
    task: str,
    device: torch.device,
    attack_member: AttackMember | None,
) -> dict[str, Any]:
    """Member accuracies and P(≥k correct), clean and attacked; with `attack_member` (not for
    universal attacks) each member-targeted attack evaluated on every member and the ensemble."""
    members = list(clf.members)
    n = min(ENSEMBLE_RECORDS, len(x_np))

    def correct_by_member(x: np.ndarray) -> np.ndarray:
        return np.stack(
            [metrics.correct(predict_logits(m, x, device), y_np[: len(x)], task) for m in members]
        )

    clean, adv = correct_by_member(x_np), correct_by_member(x_adv)
    out: dict[str, Any] = {
        "members": len(members),
        "member_accuracy": {"clean": clean.mean(1).tolist(), "adversarial": adv.mean(1).tolist()},
        "at_least_k_correct": {
            part: {k: metrics.at_least_k_correct(c, k) for k in range(1, len(members) + 1)}
            for part, c in (("clean", clean), ("adversarial", adv))
        },
    }
    if attack_member is None:
        out["member_transfer"] = "skipped: a universal attack is fitted once, on the ensemble"
        return out
    rows, reports = [], []
    for i in range(len(members)):
        delta, report = attack_member(i, x_np[:n], y_np[:n])
        reports.append(report)
        x_m = x_np[:n] + delta
        ensemble_ok = metrics.correct(predict_logits(clf, x_m, device), y_np[:n], task)
        rows.append([*correct_by_member(x_m).mean(1).tolist(), float(ensemble_ok.mean())])
    out["member_transfer"] = {
        "records": n,
        "accuracy": rows,
        "rows": "attack crafted on member i",
        "columns": [f"member {j}" for j in range(len(members))] + ["ensemble"],
        "audit": AuditReport.merge(reports).to_dict(),  # member attacks are audited too
    }
    return out
