"""Seeded bootstrap confidence intervals over records for a cell's headline metrics.

Each resample draws the evaluated records with replacement; a resample that lacks a positive
or a negative of a class scored by AUROC is drawn again (METHODS.md §12). Metrics are computed
from per-record multiplicities, so 1000 resamples cost a few matrix products.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import (
    Decisions,
    changed,
    class_scores,
    decision_hot,
    decisions_of,
    is_right,
    threshold,
)

RESAMPLES = 1000
LEVEL = 0.95
MAX_REDRAWS = 1000


def resample_counts(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`(n, records)` multiplicities; every class with both outcomes in `labels` `(records, C)`
    keeps both in every resample."""
    rng = np.random.default_rng(seed)
    records = len(labels)
    scored = (labels.any(0)) & (~labels.all(0))
    pos, neg = labels[:, scored].astype(np.float64), 1.0 - labels[:, scored]
    counts = np.zeros((n, records), np.float64)
    todo = np.arange(n)
    for _ in range(MAX_REDRAWS):
        draws = rng.integers(0, records, (len(todo), records))
        block = np.zeros((len(todo), records))
        np.add.at(block, (np.arange(len(todo))[:, None], draws), 1.0)
        counts[todo] = block
        ok = ((block @ pos) > 0).all(1) & ((block @ neg) > 0).all(1)
        todo = todo[~ok]
        if not len(todo):
            return counts
    raise ValueError(
        f"{len(todo)} of {n} bootstrap resamples still lack a positive or negative of some "
        "class after redrawing: too few records of a class to bootstrap"
    )


def weighted_auc(scores: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """AUROC of one class under each resample's multiplicities (ties count half), `(n,)`."""
    order = np.argsort(scores, kind="stable")
    s, t, c = scores[order], labels[order].astype(bool), counts[:, order]
    starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
    pos = np.add.reduceat(c * t, starts, axis=1)
    neg = np.add.reduceat(c * ~t, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(1)
    total = pos.sum(1) * neg.sum(1)
    return np.where(total > 0, wins / np.maximum(total, 1e-300), np.nan)


def weighted_macro_f1(onehot: np.ndarray, pred: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Macro F1 (a class with no true and no predicted record scores 0) per resample."""
    tp = counts @ (onehot * pred)
    denom = counts @ onehot + counts @ pred
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 0.0).mean(1)


def _part(
    logits: np.ndarray,
    y: np.ndarray,
    task: str,
    counts: np.ndarray,
    thresholds: list[float] | None,
    pred: np.ndarray,
) -> dict[str, np.ndarray]:
    """Every headline metric of one set of logits and its decisions `pred`, per resample."""
    n_classes = logits.shape[1]
    scores, onehot = class_scores(logits, y, task)
    pred_hot = decision_hot(pred, y, task, n_classes)
    weight = counts.sum(1)
    out = {
        "accuracy": counts @ is_right(pred, y, task) / weight,
        "macro_f1": weighted_macro_f1(onehot, pred_hot, counts),
    }
    scored = [c for c in range(n_classes) if onehot[:, c].any() and not onehot[:, c].all()]
    if scored:
        aucs = np.stack([weighted_auc(scores[:, c], onehot[:, c], counts) for c in scored])
        out["macro_auc"] = np.nanmean(aucs, axis=0)
    if task == "multilabel" and thresholds is not None:
        out["macro_f1_tuned"] = weighted_macro_f1(onehot, threshold(logits, thresholds), counts)
    return out


def _interval(values: np.ndarray, level: float) -> list[float] | None:
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    tail = 100 * (1 - level) / 2
    return [float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))]


def intervals(
    clean_logits: np.ndarray,
    adv_logits: np.ndarray,
    y: np.ndarray,
    task: str,
    thresholds: list[float] | None = None,
    seed: int = 0,
    n: int = RESAMPLES,
    level: float = LEVEL,
    decided: Decisions | None = None,
) -> dict[str, Any]:
    """Percentile intervals of the clean and adversarial metrics and of the fooling rate
    (`decided`: a decision rule's clean and adversarial decisions, else the logits')."""
    if len(y) < 2:
        return {"resamples": 0, "reason": f"{len(y)} record(s): nothing to resample"}
    onehot = class_scores(clean_logits, y, task)[1]
    counts = resample_counts(onehot, n, seed)
    out: dict[str, Any] = {"resamples": n, "seed": seed, "level": level, "unit": "records"}
    preds = decisions_of(clean_logits, adv_logits, task, decided)
    for part, logits, pred in zip(("clean", "adversarial"), (clean_logits, adv_logits), preds):
        per = _part(logits, y, task, counts, thresholds, pred)
        out[part] = {k: _interval(v, level) for k, v in per.items()}
    ok = is_right(preds[0], y, task).astype(np.float64)
    fooled = ok * changed(*preds, task)
    right = counts @ ok
    rate = np.where(right > 0, (counts @ fooled) / np.maximum(right, 1e-12), np.nan)
    out["fooling_rate"] = _interval(rate, level)
    return out
