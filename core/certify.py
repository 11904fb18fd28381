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


def attack_size(delta: np.ndarray, norm: str) -> np.ndarray:
    """Each record's δ in the certificate's norm (mV): ℓ2 over leads × time, or ℓ∞."""
    flat = delta.reshape(len(delta), -1).astype(np.float64)
    return np.abs(flat).max(1) if norm == "linf" else np.sqrt((flat**2).sum(1))


def certification(
    clf: Classifier,
    x_np: np.ndarray,
    y_np: np.ndarray,
    task: str,
    device: torch.device,
    delta: np.ndarray,
) -> dict[str, Any]:
    """Certify the records with the classifier's `certify` (label or abstain, radius in mV),
    and set the attack's actual δ, measured in the certificate's norm, beside the radii: an
    ℓ∞ budget and an ℓ2 certificate are not the same number."""
    preds, radii = [], []
    with eval_mode(clf):
        for i in range(0, len(x_np), CERTIFY_BATCH):
            pred, radius = clf.certify(to_tensor(x_np[i : i + CERTIFY_BATCH], device).float())
            preds.append(pred)
            radii.append(radius)
    pred, radius = np.concatenate(preds), np.concatenate(radii)
    out = metrics.certified(pred, radius, y_np, task)
    norm = getattr(clf, "certified_norm", "l2")
    size = attack_size(np.broadcast_to(delta, x_np.shape), norm)
    right = metrics.is_right(pred, y_np, task)
    return {
        **out,
        "attack_delta_mv": {
            "norm": norm,
            "median": float(np.median(size)) if len(size) else float("nan"),
            "max": float(size.max()) if len(size) else float("nan"),
            "certified_accuracy_at_it": float((right & (radius >= size)).mean())
            if len(size)
            else float("nan"),
        },
        "norm": norm,
        "forward_passes_per_record": getattr(clf, "certify_passes", clf.info.forward_passes),
    }
