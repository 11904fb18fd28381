"""The defense half of the plugin author kit (public as `ecgarena.testing`): toy data and a tiny
classifier for quick tests, and `check_defense`, which builds a defense on toy data, trains it
briefly and checks what its classifier does against what its `ClassifierInfo` claims."""

from __future__ import annotations

import hashlib
import string
import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any, get_args

import numpy as np
import torch
from torch import nn

from .gradients import per_sample_loss
from .protocols import Classifier, ClassifierInfo, DatasetInfo, FitContext, Split, Task
from .specs import TrainSpec

STANDARD_LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")


class TinyNet(nn.Module):
    """A minimal differentiable classifier for conformance tests."""

    def __init__(self, leads: int, n_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(leads, 8, 5, padding=2)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.conv(x))).mean(-1))


def tiny_classifier(leads: int = 2, n_classes: int = 3, seed: int = 0) -> Classifier:
    """A `TinyNet` classifier in eval mode, its weights from `torch.manual_seed(seed)`."""
    torch.manual_seed(seed)
    return Classifier(TinyNet(leads, n_classes)).eval()


def lead_names(leads: int | tuple[str, ...]) -> tuple[str, ...]:
    """Lead names: given ones as they are; a count takes the standard 12-lead order (I, II, …),
    L0, L1, … beyond twelve."""
    if not isinstance(leads, int):
        return tuple(leads)
    if leads < 1:
        raise ValueError(f"a record needs at least 1 lead, got leads={leads}")
    if leads <= len(STANDARD_LEADS):
        return STANDARD_LEADS[:leads]
    return tuple(f"L{i}" for i in range(leads))


def class_names(n_classes: int) -> tuple[str, ...]:
    """`n_classes` (≥ 2) class names: a, b, c, … (c0, c1, … beyond 26)."""
    if n_classes < 2:
        raise ValueError(f"a classification task needs at least 2 classes, got {n_classes}")
    if n_classes <= 26:
        return tuple(string.ascii_lowercase[:n_classes])
    return tuple(f"c{i}" for i in range(n_classes))


def toy_labels(x: np.ndarray, n_classes: int, task: str, seed: int) -> np.ndarray:
    """Learnable labels of toy records `x` (noise of σ 0.3 mV). Multiclass: lead 0's mean in
    one of `n_classes` equally likely bins (2 classes: its sign); multilabel: class k present
    where a fixed random projection k of the record is positive."""
    if task == "multiclass":
        spread = 0.3 / np.sqrt(x.shape[2])  # σ of the mean of `time` N(0, 0.3²) samples
        edges = [spread * NormalDist().inv_cdf(k / n_classes) for k in range(1, n_classes)]
        return np.searchsorted(edges, x[:, 0].mean(axis=1)).astype(np.int64)
    if task == "multilabel":
        w = np.random.default_rng([seed, 1]).normal(0, 1, (n_classes, x[0].size))
        return (x.reshape(len(x), -1) @ w.T > 0).astype(np.float32)
    raise ValueError(f"task must be one of {get_args(Task)}, got {task!r}")


def toy_fit_context(
    n: int = 48,
    time: int = 32,
    build_net: Callable[[], nn.Module] | None = None,
    epochs: int = 2,
    batch_size: int = 16,
    cache_dir: Path | None = None,
    seed: int = 0,
    *,
    leads: int | tuple[str, ...] = 2,
    n_classes: int = 2,
    fs: float = 100.0,
    task: Task = "multiclass",
) -> FitContext:
    """A tiny FitContext of `n` records of `time` samples at `fs` Hz (σ 0.3 mV noise; the
    same records serve as train and val), labels from `toy_labels`; by default 2 leads (I, II)
    and 2 classes (the sign of lead I's mean). The default net is a linear layer over the
    flattened record."""
    names, classes = lead_names(leads), class_names(n_classes)
    if fs <= 0:
        raise ValueError(f"sampling rate must be > 0 Hz, got fs={fs:g}")
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, len(names), time)).astype(np.float32)
    y = toy_labels(x, n_classes, task, seed)
    info = DatasetInfo("toy", task, classes, names, float(fs), time)
    return FitContext(
        info,
        Split(x, y, []),
        Split(x, y, []),
        build_net or (lambda: nn.Sequential(nn.Flatten(), nn.Linear(len(names) * time, n_classes))),
        TrainSpec(epochs=epochs, batch_size=batch_size),
        torch.device("cpu"),
        seed,
        cache_dir=cache_dir,
    )


@dataclass(frozen=True)
class DefenseChecked:
    """What `check_defense` measured: the trained classifier, `train`'s summary, the logits of
    the probe records, whether two calls gave identical logits, the ℓ2 norm of the loss's input
    gradient (None where none reaches the input) and the seconds build + train took."""

    classifier: Classifier
    summary: dict[str, Any]
    logits: torch.Tensor
    repeatable: bool
    grad_norm: float | None
    seconds: float


def _digest(a: np.ndarray) -> str:
    """A content hash of an array, to tell whether something changed it in place."""
    return hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=16).hexdigest()


def _in_train_mode(classifier: nn.Module) -> list[str]:
    """The names of the classifier's modules left in train mode ("" is the classifier)."""
    return [name or "<classifier>" for name, m in classifier.named_modules() if m.training]


def _input_grad(
    classifier: Classifier, x: torch.Tensor, y: torch.Tensor, task: str
) -> torch.Tensor | None:
    """d(summed attack loss)/dx through the whole classifier; None when no path reaches x."""
    xg = x.clone().requires_grad_(True)
    loss = per_sample_loss(classifier(xg), y, task).sum()
    if not loss.requires_grad:
        return None
    (grad,) = torch.autograd.grad(loss, xg, allow_unused=True)
    return grad


def check_defense(
    defense: Any,
    leads: int | tuple[str, ...] = 2,
    n_classes: int = 3,
    task: Task = "multiclass",
    fs: float = 100.0,
    n_samples: int = 64,
    n_records: int = 32,
    build_net: Callable[[], nn.Module] | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
) -> DefenseChecked:
    """Build and train `defense` (a class is instantiated with its defaults) on
    `toy_fit_context` (one epoch, `TinyNet` unless `build_net`), then check the contract:
    build returns a `Classifier`; train returns a dict, leaves the records alone and hands the
    classifier back in eval mode; float32 finite logits `(batch, n_classes)`; the input is not
    changed in place; `info.deterministic` ⇒ two calls agree; `info.differentiable` ⇒ a finite,
    non-zero input gradient. A broken rule is an AssertionError naming the defense."""
    instance = defense() if isinstance(defense, type) else defense
    label = getattr(instance, "name", type(instance).__qualname__)

    def require(ok: bool, rule: str) -> None:
        """Raise the one-line AssertionError of a broken rule unless `ok`."""
        if not ok:
            raise AssertionError(f"defense {label!r}: {rule}")

    names = lead_names(leads)
    ctx = toy_fit_context(
        n_records,
        n_samples,
        build_net or (lambda: TinyNet(len(names), n_classes)),
        epochs=1,
        batch_size=16,
        cache_dir=cache_dir,
        seed=seed,
        leads=names,
        n_classes=n_classes,
        fs=fs,
        task=task,
    )
    start = clock.perf_counter()
    torch.manual_seed(seed)
    clf = instance.build(ctx)
    require(
        isinstance(clf, Classifier),
        f"build returned {type(clf).__qualname__}, not an ecgarena.Classifier",
    )
    require(
        isinstance(clf.info, ClassifierInfo),
        f"classifier.info is {type(clf.info).__qualname__}, not an ecgarena.ClassifierInfo",
    )
    records = _digest(ctx.train.x)
    summary = instance.train(clf, ctx)
    seconds = clock.perf_counter() - start
    require(isinstance(summary, dict), f"train returned {type(summary).__qualname__}, not a dict")
    require(_digest(ctx.train.x) == records, "train changed the training records in place")
    left = _in_train_mode(clf)
    require(not left, f"train left {', '.join(left[:3])} in train mode (end with .eval())")

    gen = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(4, len(names), n_samples, generator=gen)
    y = torch.from_numpy(toy_labels(x.numpy(), n_classes, task, seed))
    probe = x.clone()
    first, second = clf(probe).detach(), clf(probe).detach()
    require(torch.equal(probe, x), "the classifier changed its input in place")
    expected = (len(x), n_classes)
    require(
        tuple(first.shape) == expected,
        f"logits of shape {tuple(first.shape)}, expected (batch, n_classes) = {expected}",
    )
    require(first.dtype == torch.float32, f"logits are {first.dtype}, not torch.float32")
    require(bool(torch.isfinite(first).all()), "non-finite logits (NaN or inf)")
    repeatable = torch.equal(first, second)
    require(
        repeatable or not clf.info.deterministic,
        "info.deterministic is True but two calls on the same input differ (max |Δlogit| "
        f"{float((first - second).abs().max()):.3g}); declare ClassifierInfo(deterministic=False)",
    )
    try:
        grad = _input_grad(clf, x, y, task)
    except RuntimeError as e:
        require(
            not clf.info.differentiable,
            f"info.differentiable is True but backward failed: {' '.join(str(e).split())}",
        )
        grad = None
    if clf.info.differentiable:
        require(grad is not None, "info.differentiable is True but no gradient reaches the input")
        require(bool(torch.isfinite(grad).all()), "the input gradient is not finite")
        require(
            bool(grad.abs().max() > 0), "info.differentiable is True but the input gradient is 0"
        )
    left = _in_train_mode(clf)
    require(not left, f"calling the classifier left {', '.join(left[:3])} in train mode")
    return DefenseChecked(
        clf,
        summary,
        first,
        repeatable,
        None if grad is None else float(grad.norm()),
        seconds,
    )
