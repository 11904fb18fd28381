"""Training and batched inference shared by every defense: Adam, early stopping, seeds."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import metrics
from .gradients import eval_mode
from .progress import progress
from .protocols import Classifier, FitContext

# (classifier, x, y) -> the batch to train on, e.g. adversarial examples for adversarial training
Augment = Callable[[Classifier, torch.Tensor, torch.Tensor], torch.Tensor]
# (classifier, x, y[, aux]) -> the loss; aux is the batch's rows of `fit_classifier(aux=...)`
Loss = Callable[..., torch.Tensor]


def task_loss(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Cross-entropy for multiclass, BCE-with-logits for multilabel (mean over the batch)."""
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, y.float())
    return F.cross_entropy(logits, y.long())


def to_tensor(a: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """A float32/int64 tensor on `device` (labels keep their dtype)."""
    t = torch.tensor(a) if isinstance(a, np.ndarray) else a  # copies: memmaps are read-only
    return t.to(device)


@torch.no_grad()
def predict_logits(
    classifier: Classifier,
    x: np.ndarray | torch.Tensor,
    device: torch.device,
    batch_size: int = 256,
    delta: torch.Tensor | None = None,
) -> np.ndarray:
    """Logits of the classifier on x (+ δ, e.g. a universal perturbation) in eval mode,
    batched; the model's modes are restored."""
    shift = 0.0 if delta is None else delta.to(device)
    with eval_mode(classifier):
        out = [
            classifier(to_tensor(x[i : i + batch_size], device).float() + shift)
            .float()
            .cpu()
            .numpy()
            for i in range(0, len(x), batch_size)
        ]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def validation_score(
    logits: np.ndarray, y: np.ndarray, task: str, classes: tuple[str, ...]
) -> float:
    """The early-stopping metric: macro AUROC (multilabel) or macro F1 (multiclass)."""
    m = metrics.classification(logits, y, task, classes)
    auc = m.get("macro_auc", float("nan"))
    return m["macro_f1"] if np.isnan(auc) else auc


def standardization(x: np.ndarray, max_values: int = 5_000_000) -> tuple[float, float]:
    """Global mean and std of the training signals (as the PTB-XL benchmark's StandardScaler)."""
    flat = np.asarray(x).reshape(-1)
    step = max(1, flat.size // max_values)
    sample = flat[::step].astype(np.float64)
    return float(sample.mean()), float(sample.std() or 1.0)


def fit_classifier(
    classifier: Classifier,
    ctx: FitContext,
    *,
    augment: Augment | None = None,
    loss: Loss | None = None,
    aux: np.ndarray | None = None,
    description: str = "train",
) -> dict[str, Any]:
    """Train with Adam, keep the weights of the best validation epoch, stop on patience.

    `aux` (per training record, e.g. masks) is sliced like the batch and passed to `loss`.
    """
    spec, task, device = ctx.train_spec, ctx.info.task, ctx.device
    classifier.set_standardization(*standardization(ctx.train.x))
    classifier.to(device)
    opt = torch.optim.Adam(classifier.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    rng = np.random.default_rng(ctx.seed)
    n = len(ctx.train)
    best, best_state, best_epoch, stale = -np.inf, None, 0, 0
    history = []
    start = time.perf_counter()
    with progress() as bar:
        task_id = bar.add_task(description, total=spec.epochs, info="")
        for epoch in range(1, spec.epochs + 1):
            classifier.train()
            order = rng.permutation(n)
            total = 0.0
            for i in range(0, n, spec.batch_size):
                idx = np.sort(order[i : i + spec.batch_size])
                xb = to_tensor(ctx.train.x[idx], device).float()
                yb = to_tensor(ctx.train.y[idx], device)
                if augment is not None:
                    xb = augment(classifier, xb, yb).detach()
                    classifier.train()
                if loss is None:
                    value = task_loss(classifier(xb), yb, task)
                elif aux is None:
                    value = loss(classifier, xb, yb)
                else:
                    value = loss(classifier, xb, yb, to_tensor(np.asarray(aux[idx]), device))
                opt.zero_grad(set_to_none=True)
                value.backward()
                opt.step()
                total += value.item() * len(idx)
            val_logits = predict_logits(classifier, ctx.val.x, device)
            score = validation_score(val_logits, ctx.val.y, task, ctx.info.classes)
            history.append({"epoch": epoch, "loss": total / max(n, 1), "val_score": score})
            bar.update(task_id, advance=1, info=f"loss {total / max(n, 1):.3f} val {score:.3f}")
            if score > best or best_state is None:
                best, best_epoch, stale = score, epoch, 0
                best_state = copy.deepcopy(classifier.state_dict())
            else:
                stale += 1
                if stale >= spec.patience:
                    break
    classifier.load_state_dict(best_state)
    classifier.eval()
    return {
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "val_metric": "macro_auc (macro_f1 when AUROC is undefined)",
        "best_val_score": float(best),
        "history": history,
        "seconds": time.perf_counter() - start,
    }
