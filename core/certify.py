"""A certified defense's own guarantee on the clean test records, in mV and its norm."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import metrics
from .gradients import eval_mode
from .protocols import Classifier
from .training import to_tensor

CERTIFY_BATCH = 16


def certification(
    clf: Classifier, x_np: np.ndarray, y_np: np.ndarray, task: str, device: torch.device
) -> dict[str, Any]:
    """Certify the records with the classifier's `certify` (label or abstain, radius in mV)."""
    preds, radii = [], []
    with eval_mode(clf):
        for i in range(0, len(x_np), CERTIFY_BATCH):
            pred, radius = clf.certify(to_tensor(x_np[i : i + CERTIFY_BATCH], device).float())
            preds.append(pred)
            radii.append(radius)
    out = metrics.certified(np.concatenate(preds), np.concatenate(radii), y_np, task)
    return {
        **out,
        "norm": getattr(clf, "certified_norm", "l2"),
        "forward_passes_per_record": getattr(clf, "certify_passes", clf.info.forward_passes),
    }
