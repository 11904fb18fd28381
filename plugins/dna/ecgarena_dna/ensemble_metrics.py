"""Ensemble diagnostics (METHODS.md §8): P(≥k of K members correct) and the members'
disagreement as mutual information."""

from __future__ import annotations

import numpy as np


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


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) over the last axis; 0·log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(-1)


def mutual_information(probs: np.ndarray) -> np.ndarray:
    """I = H(mean_i p_i) − mean_i H(p_i) for member distributions `probs` (K, ..., C): the
    ensemble's disagreement (0 when all members agree), one value per leading index after K."""
    probs = np.asarray(probs, dtype=np.float64)
    return entropy(probs.mean(0)) - entropy(probs).mean(0)
