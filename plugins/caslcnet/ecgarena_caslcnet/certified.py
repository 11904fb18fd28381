"""The certified ℓ∞-distance classifier and its training loop (hinge loss, ℓp schedule, Adam
β=(0.9, 0.99), cosine learning rate), as `zbh2047/L_inf-dist-net` `main.py` (METHODS.md §7)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from ecgarena import (
    Classifier,
    ClassifierInfo,
    FitContext,
    eval_mode,
    predict_logits,
    progress,
    standardization,
    to_tensor,
    validation_score,
)
from torch import nn

from .linf_dist import certified_radius, hinge_loss, p_schedule, set_p, uses_linf


class CertifiedClassifier(Classifier):
    """An ℓ∞-distance net behind an identity preprocess: its logits are 1-Lipschitz in ℓ∞ (model
    units), so `certify` returns the prediction and an exact ℓ∞ radius in mV (margin/2 × std)."""

    certified_norm = "linf"

    def __init__(self, net: nn.Module, task: str, notes: str) -> None:
        super().__init__(net, info=ClassifierInfo(certifies=True, notes=notes))
        self.task = task

    @torch.no_grad()
    def certify(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(prediction, certified ℓ∞ radius in mV) per record; never abstains (radius ≥ 0)."""
        if not uses_linf(self.net):
            raise RuntimeError("certify needs p = ∞ in every distance layer (training left it)")
        with eval_mode(self):
            pred, radius = certified_radius(self(x), self.task)
        return pred.cpu().numpy(), (radius * self.standardize.std).cpu().numpy()


def learning_rate(step: int, total: int, start: int, lr: float) -> float:
    """Constant until the p ramp starts, then cosine to 0 at the last step."""
    if step < start:
        return lr
    return lr * 0.5 * (1 + math.cos(math.pi * (step - start) / max(total - start, 1)))


@torch.no_grad()
def recalibrate_means(clf: Classifier, x: np.ndarray, batch_size: int, device: torch.device):
    """Re-estimate the mean-shift running means at p = ∞ on `x` (train-mode passes, no
    gradient), so a schedule that ended before p = ∞ still deploys consistent means."""
    set_p(clf.net, math.inf)
    clf.train()
    for i in range(0, len(x), batch_size):
        clf(to_tensor(x[i : i + batch_size], device).float())
    clf.eval()


def fit_linf_dist(
    clf: CertifiedClassifier,
    ctx: FitContext,
    *,
    eps_train_mv: float,
    eps_test_mv: float,
    lr: float,
    mix: float,
    p_start: float,
    p_end: float,
    ramp: tuple[float, float],
    description: str,
    epochs: int | None = None,
) -> dict[str, Any]:
    """Train with the v1 hinge loss at ε_train for all `epochs` (default: the train spec's; no
    early stopping: the ℓp schedule makes earlier epochs incomparable) and keep the final
    weights, deployed at p = ∞."""
    spec, task, device = ctx.train_spec, ctx.info.task, ctx.device
    n_epochs = spec.epochs if epochs is None else epochs
    clf.set_standardization(*standardization(ctx.train.x))
    clf.to(device)
    std = float(clf.standardize.std)
    eps = eps_train_mv / std  # the one mV → model-units conversion of the training budget
    opt = torch.optim.Adam(
        clf.parameters(), lr=lr, betas=(0.9, 0.99), eps=1e-10, weight_decay=spec.weight_decay
    )
    n = len(ctx.train)
    total = n_epochs * math.ceil(n / spec.batch_size)
    start, end = int(ramp[0] * total), max(int(ramp[1] * total), int(ramp[0] * total) + 1)
    rng = np.random.default_rng(ctx.seed)
    history, step, t0 = [], 0, time.perf_counter()
    with progress() as bar:
        task_id = bar.add_task(description, total=n_epochs, info="")
        for epoch in range(1, n_epochs + 1):
            clf.train()
            order, loss_sum = rng.permutation(n), 0.0
            for i in range(0, n, spec.batch_size):
                idx = np.sort(order[i : i + spec.batch_size])
                set_p(clf.net, p_schedule((step - start) / (end - start), p_start, p_end))
                for group in opt.param_groups:
                    group["lr"] = learning_rate(step, total, start, lr)
                xb = to_tensor(ctx.train.x[idx], device).float()
                loss = hinge_loss(clf(xb), to_tensor(ctx.train.y[idx], device), eps, task, mix)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.item() * len(idx)
                step += 1
            p = clf.net.out.p
            score = validation_score(
                predict_logits(clf, ctx.val.x, device), ctx.val.y, task, ctx.info.classes
            )
            history.append({"epoch": epoch, "loss": loss_sum / n, "p": p, "val_score": score})
            bar.update(
                task_id, advance=1, info=f"p {p:.4g} loss {loss_sum / n:.3f} val {score:.3f}"
            )
    recalibrate_means(clf, ctx.train.x, spec.batch_size, device)
    batches = [
        clf.certify(to_tensor(ctx.val.x[i : i + 256], device).float())
        for i in range(0, len(ctx.val), 256)
    ]
    pred, radius = (np.concatenate(parts) for parts in zip(*batches))
    truth = np.asarray(ctx.val.y)
    right = (pred == truth).all(1) if task == "multilabel" else pred == truth
    score = validation_score(predict_logits(clf, ctx.val.x, device), truth, task, ctx.info.classes)
    return {
        "epochs_run": n_epochs,
        "best_epoch": n_epochs,
        "val_metric": "macro_auc (macro_f1 when AUROC is undefined), final weights at p = ∞",
        "best_val_score": float(score),
        "val_certified_accuracy": {
            f"{eps_test_mv:g}": float((right & (radius >= eps_test_mv)).mean()),
            f"{eps_train_mv:g}": float((right & (radius >= eps_train_mv)).mean()),
        },
        "eps_train_model_units": eps,
        "history": history,
        "seconds": time.perf_counter() - t0,
    }
