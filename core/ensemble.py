"""An ensemble's own numbers: each member's accuracy clean and under the attack on the whole
ensemble, P(≥k of K members correct), the attack crafted on each member alone, and the DNA
paper's protocol (METHODS.md §8): crafted on member 0, evaluated on every member, counting only
the records member 0 gets right when clean."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.stats import binomtest

from . import metrics
from .audit import AuditReport
from .protocols import Classifier
from .training import predict_logits

ENSEMBLE_RECORDS = 128  # records each member-targeted attack is crafted on
LEVEL = 0.95  # Wilson score intervals on P(≥k correct): a proportion of records

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
        "protocol": "the run's attack, white-box on the whole ensemble (our addition)",
        "member_accuracy": {"clean": clean.mean(1).tolist(), "adversarial": adv.mean(1).tolist()},
        **at_least_k_block(clean, adv),
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
        by_member = correct_by_member(x_m)
        rows.append([*by_member.mean(1).tolist(), float(ensemble_ok.mean())])
        if i == 0:
            out["member0_protocol"] = member0_protocol(clean[:, :n], by_member, ensemble_ok)
    out["member_transfer"] = {
        "records": n,
        "accuracy": rows,
        "rows": "attack crafted on member i",
        "columns": [f"member {j}" for j in range(len(members))] + ["ensemble"],
        "audit": AuditReport.merge(reports).to_dict(),  # member attacks are audited too
    }
    return out


def member0_protocol(
    clean: np.ndarray, attacked: np.ndarray, ensemble_ok: np.ndarray
) -> dict[str, Any]:
    """The DNA paper's numbers from `(K, n)` correctness matrices of the attack crafted on
    member 0: over the records member 0 gets right when clean, each member's accuracy, their
    mean ("Average") and P(≥k of K correct), clean and attacked."""
    kept = clean[0]
    return {
        "protocol": "crafted white-box on member 0, evaluated on every member (DNA paper)",
        "records": int(kept.sum()),
        "of": int(len(kept)),
        "member_accuracy": attacked[:, kept].mean(1).tolist() if kept.any() else [],
        "average": float(attacked[:, kept].mean()) if kept.any() else float("nan"),
        "ensemble_accuracy": float(ensemble_ok[kept].mean()) if kept.any() else float("nan"),
        **at_least_k_block(clean[:, kept], attacked[:, kept]),
    }


def at_least_k_block(clean: np.ndarray, attacked: np.ndarray) -> dict[str, Any]:
    """P(≥k of K correct) for k = 1..K from `(K, n)` correctness matrices, clean and attacked,
    each with its Wilson 95 % interval over the n records (None when n = 0)."""
    parts = (("clean", clean), ("adversarial", attacked))
    k_range = range(1, len(clean) + 1)
    return {
        "at_least_k_correct": {
            part: {k: metrics.at_least_k_correct(c, k) for k in k_range} for part, c in parts
        },
        "at_least_k_interval": {
            part: {k: wilson((c.sum(0) >= k).sum(), c.shape[1]) for k in k_range}
            for part, c in parts
        },
    }


def wilson(successes: int, n: int) -> list[float] | None:
    """The Wilson score interval of a proportion (scipy), None for no trials."""
    if n == 0:
        return None
    ci = binomtest(int(successes), n).proportion_ci(confidence_level=LEVEL, method="wilson")
    return [float(ci.low), float(ci.high)]
