"""Classifiers that decide by their own rule rather than by argmax/threshold of their logits
(randomized smoothing's PREDICT, which may abstain): their decisions are the defense's
answer, scored with abstentions counted wrong; AUROC stays on the logits."""

from __future__ import annotations

import numpy as np
import torch

from .gradients import eval_mode
from .protocols import Classifier
from .training import to_tensor

DECIDE_BATCH = 16


def decisions(clf: Classifier, x_np: np.ndarray, device: torch.device) -> np.ndarray | None:
    """The classifier's `decide` on every record, in batches and eval mode (class indices or
    label vectors, `ABSTAIN` = −1); None when it decides by its logits."""
    decide = getattr(clf, "decide", None)
    if decide is None:
        return None
    with eval_mode(clf):
        out = [
            np.asarray(decide(to_tensor(x_np[i : i + DECIDE_BATCH], device).float()), np.int64)
            for i in range(0, len(x_np), DECIDE_BATCH)
        ]
    return np.concatenate(out)


def decision_rule(clf: Classifier, task: str) -> str:
    """How a cell's accuracy and macro F1 were decided, for every output."""
    rule = getattr(clf, "decision_rule", None)
    if rule is not None and hasattr(clf, "decide"):
        return f"{rule} (abstaining counted wrong)"
    return "sigmoid > 0.5" if task == "multilabel" else "argmax"
