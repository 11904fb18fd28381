"""Every metric the arena reports, in one place (numpy in, plain floats out).

Multilabel predictions threshold the sigmoid at 0.5 (`macro_f1`), and at per-class thresholds
tuned on validation where given (`macro_f1_tuned`); "correct" for a multilabel record means its
whole predicted label set equals the true one.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def predict(logits: np.ndarray, task: str) -> np.ndarray:
    """Class index per record (multiclass) or a {0,1} label vector (multilabel, p > 0.5)."""
    return (logits > 0).astype(np.int64) if task == "multilabel" else logits.argmax(axis=1)


ABSTAIN = -1  # a decision rule's "no answer" (randomized smoothing's PREDICT): always wrong


def decision_hot(pred: np.ndarray, y: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    """Decisions as `(n, C)` {0,1} for F1, abstentions counted wrong: an abstaining record
    predicts no class (multiclass), an undecided label the opposite of the truth (multilabel)."""
    pred = np.asarray(pred, np.int64)
    if task == "multilabel":
        return np.where(pred == ABSTAIN, 1 - y.astype(np.int64), pred)
    hot = np.zeros((len(pred), n_classes), np.int64)
    decided = pred != ABSTAIN
    hot[np.flatnonzero(decided), pred[decided]] = 1
    return hot


def is_right(pred: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    """Which decisions are right (the whole label set for multilabel; abstaining is wrong)."""
    return (pred == y).all(axis=1) if task == "multilabel" else pred == y


def abstained(pred: np.ndarray, task: str) -> np.ndarray:
    """Which records a decision rule abstained on (any undecided label for multilabel)."""
    return (pred == ABSTAIN).any(axis=1) if task == "multilabel" else pred == ABSTAIN


def f1_per_class(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """F1 of each class; both inputs are one-hot/multi-hot `(n, C)` or indices `(n,)`."""
    if y_true.ndim == 1:
        y_true, y_pred = np.eye(n_classes)[y_true], np.eye(n_classes)[y_pred]
    tp = (y_true * y_pred).sum(0)
    denom = y_true.sum(0) + y_pred.sum(0)
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 0.0)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve via the Mann–Whitney U statistic (ties count half)."""
    pos = labels.astype(bool)
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of multiclass logits (rows sum to 1)."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def class_scores(logits: np.ndarray, y: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-class scores and {0,1} labels `(n, C)` for AUROC: sigmoid logits (multilabel) or
    one-vs-rest softmax probabilities (multiclass)."""
    if task == "multilabel":
        return logits, y.astype(np.int64)
    return softmax(logits), np.eye(logits.shape[1], dtype=np.int64)[y.astype(np.int64)]


def classification(
    logits: np.ndarray,
    y: np.ndarray,
    task: str,
    classes: tuple[str, ...],
    thresholds: list[float] | None = None,
    pred: np.ndarray | None = None,
) -> dict:
    """Accuracy, macro F1 and per-class F1 (multilabel at p > 0.5), macro AUROC over classes
    with both outcomes (one-vs-rest for multiclass), and with `thresholds` (multilabel logit
    cut-offs tuned on validation) the F1 at those thresholds as `macro_f1_tuned`. `pred`: the
    classifier's own decisions (may abstain) for accuracy and F1; AUROC stays on the logits."""
    decided = pred is not None
    pred = predict(logits, task) if pred is None else np.asarray(pred, np.int64)
    scores, onehot = class_scores(logits, y, task)
    f1 = f1_per_class(onehot, decision_hot(pred, y, task, len(classes)), len(classes))
    out = {
        "n": int(len(y)),
        "macro_f1": float(f1.mean()),
        "per_class_f1": dict(zip(classes, map(float, f1))),
    }
    aucs = [auroc(scores[:, c], onehot[:, c]) for c in range(len(classes))]
    valid = [a for a in aucs if not np.isnan(a)]
    out["macro_auc"] = float(np.mean(valid)) if valid else float("nan")
    out["auc_classes"] = len(valid)
    out["accuracy"] = float(is_right(pred, y, task).mean())  # multilabel: exact label set
    if decided:
        out["abstain_rate"] = float(abstained(pred, task).mean()) if len(y) else float("nan")
    if task == "multilabel":
        if thresholds is not None:
            tuned = f1_per_class(y.astype(np.int64), threshold(logits, thresholds), len(classes))
            out["macro_f1_tuned"] = float(tuned.mean())
            out["per_class_f1_tuned"] = dict(zip(classes, map(float, tuned)))
    return out


def threshold(logits: np.ndarray, thresholds: list[float]) -> np.ndarray:
    """Multilabel predictions at per-class logit cut-offs."""
    return (logits > np.asarray(thresholds)[None, :]).astype(np.int64)


def tune_thresholds(logits: np.ndarray, y: np.ndarray) -> list[float]:
    """Per-class logit cut-offs maximising each class's F1 on (validation) records, the
    PTB-XL benchmark convention; a class without positives or negatives keeps 0 (p = 0.5)."""
    out = []
    for c in range(logits.shape[1]):
        s, t = logits[:, c].astype(np.float64), y[:, c].astype(bool)
        if t.all() or not t.any():
            out.append(0.0)
            continue
        cuts = np.unique(s)
        mids = np.concatenate([[cuts[0] - 1.0], (cuts[1:] + cuts[:-1]) / 2])
        pred = s[None, :] > mids[:, None]
        tp = (pred & t).sum(1)
        f1 = 2 * tp / (pred.sum(1) + t.sum())
        out.append(float(mids[int(np.argmax(f1))]))
    return out


def correct(logits: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    """Which records are classified correctly (whole label set for multilabel)."""
    return is_right(predict(logits, task), y, task)


def at_least_k_correct(correct: np.ndarray, k: int) -> float:
    """(1/N) Σ_x 1[#{i : member i is right on x} ≥ k] for a (K members, N records) boolean
    matrix; k=1 is the any-correct oracle, k=K all-correct."""
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2 or not 1 <= k <= correct.shape[0]:
        raise ValueError(
            f"need a (members, records) matrix and 1 <= k <= members; got shape "
            f"{correct.shape} and k={k}"
        )
    return float((correct.sum(0) >= k).mean()) if correct.shape[1] else float("nan")


def robust_score(eps: list[float], values: list[float]) -> float:
    """M_robust = sqrt(M_clean · (1/ε_max)·∫ M dε) over an ε grid starting at 0 (METHODS.md
    §10): the clean score discounted by the normalised area under the robustness curve."""
    e, v = np.asarray(eps, np.float64), np.asarray(values, np.float64)
    order = np.argsort(e)
    e, v = e[order], v[order]
    if len(e) < 2 or e[0] != 0 or e[-1] <= 0 or len(np.unique(e)) != len(e):
        raise ValueError(
            f"need distinct budgets starting at 0 and ending above 0, got {e.tolist()}"
        )
    if not ((v >= 0) & (v <= 1)).all():
        raise ValueError(f"scores must lie in [0, 1], got {v.tolist()}")
    area = float(np.sum((e[1:] - e[:-1]) * (v[1:] + v[:-1]) / 2)) / e[-1]
    return float(np.sqrt(v[0] * area))


Decisions = tuple[np.ndarray, np.ndarray]  # (clean, adversarial) decisions of a decision rule


def decisions_of(
    clean_logits: np.ndarray, adv_logits: np.ndarray, task: str, decided: Decisions | None
) -> Decisions:
    """The clean and adversarial decisions: a decision rule's own, else of the logits."""
    if decided is not None:
        return decided
    return predict(clean_logits, task), predict(adv_logits, task)


def changed(a: np.ndarray, b: np.ndarray, task: str) -> np.ndarray:
    """Which records' decisions differ between `a` and `b` (any label for multilabel)."""
    return (a != b).any(axis=1) if task == "multilabel" else a != b


def flips(clean_logits: np.ndarray, adv_logits: np.ndarray, task: str) -> np.ndarray:
    """Which records' predictions changed under attack."""
    return changed(predict(clean_logits, task), predict(adv_logits, task), task)


def fooling(
    clean_logits: np.ndarray,
    adv_logits: np.ndarray,
    y: np.ndarray,
    task: str,
    decided: Decisions | None = None,
) -> dict:
    """Fooling rate over correctly classified records, and flip rate over all records.

    Reference: the clean prediction (a record counts as fooled when it was right and its
    prediction changed, abstaining included).
    """
    a, b = decisions_of(clean_logits, adv_logits, task, decided)
    ok = is_right(a, y, task)
    flipped = changed(a, b, task)
    return {
        "fooling_rate": float(flipped[ok].mean()) if ok.any() else float("nan"),
        "flip_rate": float(flipped.mean()),
        "n_correct_clean": int(ok.sum()),
    }


def targets(
    clean_logits: np.ndarray,
    adv_logits: np.ndarray,
    task: str,
    classes: tuple[str, ...],
    decided: Decisions | None = None,
) -> dict:
    """Where records whose prediction changed went: the adversarial class (multiclass), or the
    labels gained and lost (multilabel), counted over the changed records; a decision rule's
    abstentions are counted apart."""
    a, b = decisions_of(clean_logits, adv_logits, task, decided)
    moved = changed(a, b, task)
    n = int(moved.sum())
    if task == "multilabel":
        gained = ((b == 1) & (a != 1))[moved].sum(0)
        lost = ((b != 1) & (a == 1))[moved].sum(0)
        counts = {
            "gained": dict(zip(classes, map(int, gained))),
            "lost": dict(zip(classes, map(int, lost))),
        }
        top = int(np.argmax(gained)) if gained.any() else None
        share = float(gained[top] / n) if top is not None else float("nan")
    else:
        into = np.bincount(b[moved & (b != ABSTAIN)], minlength=len(classes))
        counts = {"into": dict(zip(classes, map(int, into)))}
        top = int(np.argmax(into)) if into.any() else None
        share = float(into[top] / n) if top is not None else float("nan")
    if decided is not None:
        counts["abstained"] = int((moved & abstained(b, task)).sum())
    return {
        "n_changed": n,
        **counts,
        "top_class": None if top is None else classes[top],
        "top_share": share,
    }


CERTIFY_RADII_MV = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def certified(pred: np.ndarray, radii: np.ndarray, y: np.ndarray, task: str) -> dict:
    """Certified accuracy at radii (mV, in the classifier's certified norm): share of records
    predicted right (not abstaining) with a certified radius ≥ r; also the abstain rate and the
    median radius of those right."""
    abstain = (pred < 0).any(axis=1) if task == "multilabel" else pred < 0
    right = ((pred == y).all(axis=1) if task == "multilabel" else pred == y) & ~abstain
    return {
        "n": int(len(y)),
        "abstain_rate": float(abstain.mean()) if len(y) else float("nan"),
        "accuracy": float(right.mean()) if len(y) else float("nan"),
        "median_radius_mv": float(np.median(radii[right])) if right.any() else 0.0,
        "certified_accuracy": {
            f"{r:g}": float((right & (radii >= r)).mean()) if len(y) else float("nan")
            for r in CERTIFY_RADII_MV
        },
    }
