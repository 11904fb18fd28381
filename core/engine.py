"""One cell, end to end: load data, build and train (or reuse) the defended classifier,
evaluate clean, craft the attack, audit it, evaluate under attack, and measure."""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from . import metrics
from .audit import AuditReport, audit, modes
from .errors import UserError
from .gradients import eval_mode
from .host import Host
from .protocols import AttackContext, Classifier, FitContext
from .specs import RunSpec, ThreatModel
from .store import Store
from .training import predict_logits, task_loss, to_tensor

ATTACK_BATCH = 128


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without a GPU is a user error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA GPU is available (use cpu or auto)")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def versions(host: Host, spec: RunSpec) -> dict[str, str | None]:
    """Core and plugin versions behind a cell, stored with every result."""
    out = {"ecgarena": host.plugins["ecgarena"].version, "torch": torch.__version__}
    for kind, name in (
        ("datasets", spec.dataset),
        ("models", spec.model),
        ("defenses", spec.defense),
        ("attacks", spec.attack),
    ):
        plugin = host.get(kind, name).plugin
        out[plugin] = host.plugins[plugin].version
    return out


class Session:
    """Shared state across cells of a run or matrix: the host, home folder and loaded data."""

    def __init__(self, host: Host, home: Path) -> None:
        self.host, self.home = host, Path(home)
        self.store = Store(self.home / "results.sqlite")
        self._datasets: dict[str, Any] = {}
        self._classifiers: dict[str, tuple[Classifier, dict]] = {}

    def dataset(self, spec: RunSpec) -> Any:
        """The dataset plugin instance for a spec (one per distinct options)."""
        options = {
            **spec.dataset_params,
            "data_dir": spec.data_dir,
            "cache_dir": self.home / "cache",
        }
        key = json.dumps([spec.dataset, options], sort_keys=True, default=str)
        if key not in self._datasets:
            self._datasets[key] = self.host.create("datasets", spec.dataset, options)
        return self._datasets[key]

    def classifier(self, spec: RunSpec, device: torch.device) -> tuple[Classifier, dict]:
        """Build the defended classifier; reuse cached safetensors weights keyed by everything
        that determines them, else train and save them."""
        data = self.dataset(spec)
        info = data.info
        defense = self.host.create("defenses", spec.defense, spec.defense_params)
        model = self.host.create("models", spec.model, spec.model_params)
        parts = {
            "dataset": [spec.dataset, data.cache_parts()],
            "model": [spec.model, spec.model_params],
            "defense": [spec.defense, spec.defense_params],
            "train": spec.train.model_dump(),
            "seed": spec.seed,
            "versions": versions(self.host, spec),
        }
        key = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[
            :24
        ]
        if key in self._classifiers:
            return self._classifiers[key]
        torch.manual_seed(spec.seed)
        np.random.seed(spec.seed)
        ctx = FitContext(
            info=info,
            train=data.load("train"),
            val=data.load("val"),
            build_net=lambda: model.build(len(info.leads), info.n_samples, len(info.classes)),
            train_spec=spec.train,
            device=device,
            seed=spec.seed,
        )
        clf = defense.build(ctx)
        weights = self.home / "weights" / f"{key}.safetensors"
        summary_path = weights.with_suffix(".json")
        if weights.exists() and summary_path.exists():
            clf.load_state_dict(load_file(str(weights)))
            summary = {**json.loads(summary_path.read_text()), "cached": True}
        else:
            summary = {**defense.train(clf, ctx), "cached": False}
            weights.parent.mkdir(parents=True, exist_ok=True)
            tmp = weights.with_suffix(".tmp")
            state = {k: v.detach().cpu().contiguous() for k, v in clf.state_dict().items()}
            save_file(
                state, str(tmp), metadata={"key": key, "spec": json.dumps(parts, default=str)}
            )
            summary_path.write_text(json.dumps(summary, default=str))
            os.replace(tmp, weights)
        clf.to(device).eval()
        summary["weights"] = str(weights)
        self._classifiers[key] = (clf, summary)
        return clf, summary

    def run(self, spec: RunSpec) -> dict[str, Any]:
        """Run one cell and return its JSON-ready result (not stored; see `run_and_store`)."""
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        device = resolve_device(spec.device)
        attack = self.host.create("attacks", spec.attack, spec.attack_params)
        threat: ThreatModel = attack.threat_model(spec.eps)
        data = self.dataset(spec)
        info = data.info
        threat.lead_budgets(len(info.leads))  # a wrong per-lead length fails before training
        test = data.load("test")
        timings["data_s"] = time.perf_counter() - t0

        t = time.perf_counter()
        clf, training = self.classifier(spec, device)
        timings["train_s"] = time.perf_counter() - t

        idx = np.arange(len(test))
        if spec.max_attack_records and spec.max_attack_records < len(test):
            idx = np.sort(
                np.random.default_rng(spec.seed).choice(
                    len(test), spec.max_attack_records, replace=False
                )
            )
        x_np, y_np = np.asarray(test.x[idx], np.float32), np.asarray(test.y[idx])
        if len(idx) == 0:
            raise UserError(f"dataset {spec.dataset!r} has an empty test split: nothing to attack")

        t = time.perf_counter()
        clean_logits = predict_logits(clf, x_np, device)
        timings["clean_eval_s"] = time.perf_counter() - t

        t = time.perf_counter()
        delta, report = self.craft(attack, threat, clf, x_np, y_np, data, device, spec.seed)
        timings["attack_s"] = time.perf_counter() - t

        t = time.perf_counter()
        x_adv = x_np + delta
        adv_logits = predict_logits(clf, x_adv, device)
        timings["adv_eval_s"] = time.perf_counter() - t

        cutoff = threat.band_hz or min(40.0, 0.4 * info.fs)
        result = {
            "key": spec.key(),
            "status": "done",
            "spec": spec.model_dump(mode="json"),
            "threat": threat.model_dump(mode="json"),
            "device": str(device),
            "versions": versions(self.host, spec),
            "classifier": asdict(clf.info),
            "training": {k: v for k, v in training.items() if k != "history"},
            "clean": metrics.classification(clean_logits, y_np, info.task, info.classes),
            "adversarial": metrics.classification(adv_logits, y_np, info.task, info.classes),
            "fooling": metrics.fooling(clean_logits, adv_logits, y_np, info.task),
            "perturbation": metrics.perturbation(x_np, delta, info.fs, cutoff),
            "audit": report.to_dict(),
            "warnings": self.warnings(clf, attack, x_np, y_np, info.task, device),
            "timings": {**timings, "total_s": time.perf_counter() - t0},
        }
        return result

    def craft(
        self, attack, threat, clf, x_np, y_np, data, device, seed
    ) -> tuple[np.ndarray, AuditReport]:
        """Run the attack in batches (once for universal attacks), auditing every call."""
        generator = torch.Generator(device=device).manual_seed(seed)
        ctx = AttackContext(
            data.info, device, generator, train=data.load("train"), cache_dir=self.home / "cache"
        )
        step = len(x_np) if threat.universal else ATTACK_BATCH
        deltas, reports = [], []
        for i in range(0, len(x_np), step):
            x = to_tensor(x_np[i : i + step], device).float()
            y = to_tensor(y_np[i : i + step], device)
            x_before, before = x.clone(), modes(clf)
            delta = attack.run(clf, x, y, threat, ctx)
            if not isinstance(delta, torch.Tensor):
                raise TypeError(
                    f"attack {attack.name!r} returned {type(delta).__name__}, not a tensor"
                )
            reports.append(audit(x, x_before, delta, threat, data.info.fs, before, modes(clf)))
            deltas.append(np.broadcast_to(delta.detach().float().cpu().numpy(), x.shape))
        return np.concatenate(deltas).astype(np.float32), AuditReport.merge(reports)

    def warnings(self, clf, attack, x_np, y_np, task, device) -> list[str]:
        """Honesty checks: vanishing/NaN gradients, randomized defenses attacked without EOT."""
        out = []
        x = to_tensor(x_np[:64], device).float().requires_grad_(True)
        with eval_mode(clf):
            loss = task_loss(clf(x), to_tensor(y_np[:64], device), task)
            (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
        if grad is None or not torch.isfinite(grad).all():
            out.append(
                "input gradient is missing or NaN: gradient-based attacks are meaningless here"
            )
        elif (grad.flatten(1).abs().sum(1) == 0).float().mean() > 0.5:
            out.append("input gradient is zero for most records: possible gradient masking")
        if not clf.info.deterministic and not getattr(attack, "eot", False):
            out.append(
                f"randomized defense attacked by {attack.name!r} without EOT: robustness overstated"
            )
        if clf.info.gradient == "bpda":
            out.append("non-differentiable step attacked through BPDA (identity backward)")
        return out

    def run_and_store(
        self, spec: RunSpec, force: bool = False, keep_going: bool = False
    ) -> dict[str, Any]:
        """Run a cell unless already stored (then `skipped`); store done or failed results."""
        key = spec.key()
        if not force and self.store.done(key):
            return {**self.store.latest(key), "status": "skipped"}
        try:
            result = self.run(spec)
        except Exception as e:
            if not keep_going:
                raise
            result = {
                "key": key,
                "status": "failed",
                "spec": spec.model_dump(mode="json"),
                "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(limit=8),
            }
        self.store.add(result)
        result["warnings"] = result.get("warnings", []) + self.host.notify_result(result)
        return result
