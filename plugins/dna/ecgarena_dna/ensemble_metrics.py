"""Ensemble diagnostics (METHODS.md §8): the members' disagreement as mutual information
(P(≥k of K members correct) is the core's `ecgarena.metrics.at_least_k_correct`)."""

from __future__ import annotations

import numpy as np


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) over the last axis; 0·log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(-1)


def mutual_information(probs: np.ndarray) -> np.ndarray:
    """I = H(mean_i p_i) − mean_i H(p_i) for member distributions `probs` (K, ..., C): the
    ensemble's disagreement (0 when all members agree), one value per leading index after K."""
    probs = np.asarray(probs, dtype=np.float64)
    return entropy(probs.mean(0)) - entropy(probs).mean(0)
