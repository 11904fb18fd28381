"""The clean-model gate: a robustness number on a degenerate model means nothing.

Every cell is compared, on the records it evaluated, with the trivial baseline (METHODS.md
§12): the majority training class (multiclass); per-label training prevalence as constant
scores and, for F1, the best constant label set (the most frequent training label set, or
every label positive) (multilabel).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import f1_per_class, predict

MIN_AUC = 0.6  # below this macro AUROC the clean model ranks barely better than chance
MAX_SAME_PREDICTION = 0.9  # one predicted label set for this share of records: a constant


def trivial(train_y: np.ndarray, y: np.ndarray, task: str, classes: tuple[str, ...]) -> dict:
    """The best constant predictor's metrics on the evaluated records `y`."""
    n_classes = len(classes)
    if task == "multiclass":
        majority = int(np.bincount(train_y.astype(np.int64), minlength=n_classes).argmax())
        pred = np.full(len(y), majority)
        f1 = f1_per_class(y.astype(np.int64), pred, n_classes)
        return {
            "predictor": f"always {classes[majority]} (the majority training class)",
            "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
            "macro_f1": float(f1.mean()),
            "macro_auc": 0.5,
        }
    sets, counts = np.unique(train_y.astype(np.int64), axis=0, return_counts=True)
    common = sets[counts.argmax()]
    candidates = {
        "{" + ", ".join(c for c, on in zip(classes, common) if on) + "} for every record": common,
        "every label positive": np.ones(n_classes, np.int64),
    }
    scored = {
        name: float(f1_per_class(y.astype(np.int64), np.tile(s, (len(y), 1)), n_classes).mean())
        for name, s in candidates.items()
    }
    best = max(scored, key=scored.__getitem__)
    return {
        "predictor": best + " (the best constant label set)",
        "accuracy": float((y == common).all(axis=1).mean()) if len(y) else float("nan"),
        "macro_f1": scored[best],
        "macro_f1_candidates": scored,
        "macro_auc": 0.5,  # constant scores (training prevalence) tie every record
        "prevalence": dict(zip(classes, map(float, train_y.mean(axis=0)))),
    }


def largest_prediction_share(pred: np.ndarray) -> float:
    """The share of records given the single most common decision (class or label set)."""
    if not len(pred):
        return float("nan")
    _, counts = np.unique(pred, axis=0, return_counts=True)
    return float(counts.max() / len(pred))


def degenerate_reasons(
    clean: dict[str, Any],
    intervals: dict[str, Any],
    baseline: dict[str, Any],
    same_share: float,
) -> list[str]:
    """Why the clean model is not clearly better than trivial (empty: it is).

    Macro-F1: every reported F1 convention (at 0.5, and tuned thresholds when present) has a
    95 % interval reaching the trivial F1. Macro AUROC below `MIN_AUC`. One predicted label
    set for at least `MAX_SAME_PREDICTION` of the records.
    """
    reasons = []
    bar = baseline["macro_f1"]
    lows = {
        key: intervals["clean"][key][0]
        for key in ("macro_f1", "macro_f1_tuned")
        if key in intervals.get("clean", {})
    }
    if lows and all(low is not None and low <= bar for low in lows.values()):
        shown = ", ".join(
            f"{k} {clean[k]:.3f} [{intervals['clean'][k][0]:.3f}, {intervals['clean'][k][1]:.3f}]"
            for k in lows
        )
        reasons.append(f"{shown} does not clear the trivial macro_f1 {bar:.3f}")
    auc = clean.get("macro_auc")
    if auc is not None and auc == auc and auc < MIN_AUC:
        reasons.append(f"macro_auc {auc:.3f} < {MIN_AUC}")
    if same_share == same_share and same_share >= MAX_SAME_PREDICTION:
        reasons.append(f"one predicted label set for {same_share:.0%} of records")
    return reasons


def gate(
    clean: dict[str, Any],
    intervals: dict[str, Any],
    baseline: dict[str, Any],
    clean_logits: np.ndarray,
    task: str,
    pred: np.ndarray | None = None,
) -> dict[str, Any]:
    """The gate's verdict, stored with the cell (`pred`: a decision rule's clean decisions)."""
    share = largest_prediction_share(predict(clean_logits, task) if pred is None else pred)
    reasons = degenerate_reasons(clean, intervals, baseline, share)
    return {"degenerate": bool(reasons), "reasons": reasons, "largest_prediction_share": share}
