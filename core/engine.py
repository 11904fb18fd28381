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
from .protocols import AttackContext, Classifier, FitContext, Split
from .specs import RunSpec, ThreatModel
from .store import Store, summary_row
from .training import predict_logits, task_loss, to_tensor

ATTACK_BATCH = 128
DEFAULT_EPS_MV = 0.05  # the budget of attacks that declare no `default_eps_mv`
CONSISTENCY_TOLERANCE = 0.02  # metric gap ignored when comparing stored cells
ENSEMBLE_RECORDS = 128  # records each member-targeted attack is crafted on
ARTIFACT_RECORDS = 4  # records kept per cell (clean x and δ) for `ecgarena plot overlay`


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without a GPU is a user error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA GPU is available (use cpu or auto)")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def digest(obj: Any, n: int = 24) -> str:
    """A short stable hash of a JSON-able object (cache keys of weights and perturbations)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically (temporary file, then rename): never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata)
    os.replace(tmp, path)


def plugin_versions(host: Host, pieces: list[tuple[str, str]]) -> dict[str, str | None]:
    """Core, torch and the versions of the plugins providing `(kind, name)` pieces."""
    out = {"ecgarena": host.plugins["ecgarena"].version, "torch": torch.__version__}
    for kind, name in pieces:
        plugin = host.get(kind, name).plugin
        out[plugin] = host.plugins[plugin].version
    return out


def versions(host: Host, spec: RunSpec) -> dict[str, str | None]:
    """Versions behind a cell (with the transfer source's plugins), stored with every result."""
    src = spec.source()
    pieces = [("datasets", spec.dataset), ("models", spec.model), ("defenses", spec.defense)]
    pieces += [("attacks", spec.attack), ("models", src.model), ("defenses", src.defense)]
    if spec.eval_dataset:
        pieces.append(("datasets", spec.eval_dataset))
    return plugin_versions(host, pieces)


class Session:
    """Shared state across cells of a run or matrix: the host, home folder and loaded data."""

    def __init__(self, host: Host, home: Path) -> None:
        self.host, self.home = host, Path(home)
        self.store = Store(self.home / "results.sqlite")
        self._datasets: dict[str, Any] = {}
        self._parts: dict[int, dict[str, Any]] = {}
        self._classifiers: dict[str, tuple[Classifier, dict]] = {}

    def dataset(self, spec: RunSpec) -> Any:
        """The dataset plugin instance a spec trains on (one per distinct options)."""
        return self._dataset(spec.dataset, spec.dataset_params, spec.data_dir)

    def _dataset(self, name: str, params: dict[str, Any], data_dir: Path | None) -> Any:
        options = {**params, "data_dir": data_dir, "cache_dir": self.home / "cache"}
        key = json.dumps([name, options], sort_keys=True, default=str)
        if key not in self._datasets:
            self._datasets[key] = self.host.create("datasets", name, options)
        return self._datasets[key]

    def eval_target(self, spec: RunSpec) -> Any:
        """The dataset plugin instance a zero-shot spec is evaluated on."""
        return self._dataset(spec.eval_dataset, spec.eval_dataset_params, spec.eval_data_dir)

    def parts(self, data: Any) -> dict[str, Any]:
        """A dataset's `cache_parts` (options and source-file fingerprint), computed once per
        session: weights keys and data keys of every cell reuse it."""
        if id(data) not in self._parts:
            self._parts[id(data)] = data.cache_parts()
        return self._parts[id(data)]

    def data_key(self, spec: RunSpec) -> str:
        """A digest of the decoded data a cell used (sources fingerprint and options of the
        training and evaluation datasets): a stored cell is reused only while it matches."""
        parts = [self.parts(self.dataset(spec))]
        if spec.eval_dataset:
            parts.append(self.parts(self.eval_target(spec)))
        return digest(parts)

    def evaluation(self, spec: RunSpec) -> tuple[Any, Split]:
        """The info and records a cell is evaluated on: the test split, or (zero-shot) every
        record of `eval_dataset`, which must match the training data's classes and shape."""
        data = self.dataset(spec)
        if spec.eval_dataset is None:
            return data.info, data.load("test")
        target = self.eval_target(spec)
        have, want = target.info, data.info
        for field in ("task", "classes", "leads", "fs", "n_samples"):
            if getattr(have, field) != getattr(want, field):
                raise UserError(
                    f"eval dataset {spec.eval_dataset!r} has {field} {getattr(have, field)!r}, "
                    f"but {spec.dataset!r} (trained on) has {getattr(want, field)!r}: "
                    "pick matching dataset options (e.g. the same rate)"
                )
        parts = [target.load(s) for s in ("train", "val", "test")]
        return have, Split(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            [i for p in parts for i in p.ids],
        )

    def classifier(self, spec: RunSpec, device: torch.device) -> tuple[Classifier, dict]:
        """Build the defended classifier; reuse cached safetensors weights keyed by everything
        that determines them, else train and save them."""
        data = self.dataset(spec)
        info = data.info
        defense = self.host.create("defenses", spec.defense, spec.defense_params)
        model = self.host.create("models", spec.model, spec.model_params)
        pieces = [("datasets", spec.dataset), ("models", spec.model), ("defenses", spec.defense)]
        parts = {
            "dataset": [spec.dataset, self.parts(data)],
            "model": [spec.model, spec.model_params],
            "defense": [spec.defense, spec.defense_params],
            "train": spec.train.model_dump(),
            "seed": spec.seed,
            "versions": plugin_versions(self.host, pieces),
        }
        key = digest(parts)
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
            cache_dir=self.home / "cache",
        )
        clf = defense.build(ctx)
        weights = self.home / "weights" / f"{key}.safetensors"
        summary_path = weights.with_suffix(".json")
        if weights.exists() and summary_path.exists():
            clf.load_state_dict(load_file(str(weights)))
            summary = {**json.loads(summary_path.read_text()), "cached": True}
        else:
            summary = {**defense.train(clf, ctx), "cached": False}
            summary_path.parent.mkdir(parents=True, exist_ok=True)
            summary_path.write_text(json.dumps(summary, default=str))
            metadata = {"key": key, "spec": json.dumps(parts, default=str)}
            save_tensors(weights, clf.state_dict(), metadata)
        clf.to(device).eval()
        summary["weights"] = str(weights)
        summary["key"] = key
        self._classifiers[key] = (clf, summary)
        return clf, summary

    def resolve(self, spec: RunSpec) -> RunSpec:
        """Fill what the spec leaves to plugins (the attack's default budget) before keying."""
        if spec.eps is not None:
            return spec
        cls = self.host.get("attacks", spec.attack).cls
        return spec.model_copy(update={"eps": getattr(cls, "default_eps_mv", DEFAULT_EPS_MV)})

    def threat(self, attack: Any, spec: RunSpec, info: Any) -> ThreatModel:
        """The attack's threat model for the spec's budget, per-lead where the attack says so."""
        eps = spec.eps
        if not isinstance(eps, list) and hasattr(attack, "expand_budget"):
            eps = attack.expand_budget(eps, info.leads)
        threat: ThreatModel = attack.threat_model(eps)
        threat.lead_budgets(len(info.leads))  # a wrong per-lead length fails before training
        if spec.transfer:
            threat = threat.model_copy(update={"access": "transfer"})
        return threat

    def run(self, spec: RunSpec) -> dict[str, Any]:
        """Run one cell and return its JSON-ready result (not stored; see `run_and_store`)."""
        spec = self.resolve(spec)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        device = resolve_device(spec.device)
        attack = self.host.create("attacks", spec.attack, spec.attack_params)
        data = self.dataset(spec)
        info, test = self.evaluation(spec)
        threat = self.threat(attack, spec, info)
        timings["data_s"] = time.perf_counter() - t0

        t = time.perf_counter()
        clf, training = self.classifier(spec, device)
        source, source_training = (
            self.classifier(spec.source(), device) if spec.transfer else (clf, training)
        )
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
        delta, report, stored = self.craft(
            attack, threat, source, x_np, y_np, data, device, spec, source_training["key"]
        )
        timings["attack_s"] = time.perf_counter() - t

        t = time.perf_counter()
        x_adv = x_np + delta
        adv_logits = predict_logits(clf, x_adv, device)
        timings["adv_eval_s"] = time.perf_counter() - t

        cutoff = threat.band_hz or min(40.0, 0.4 * info.fs)
        result = {
            "key": spec.key(),
            "data_key": self.data_key(spec),
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
            "targets": metrics.targets(clean_logits, adv_logits, info.task, info.classes),
            "perturbation": metrics.perturbation(x_np, delta, info.fs, cutoff),
            "audit": report.to_dict(),
            "warnings": self.warnings(clf, attack, x_np, y_np, info.task, device),
            "timings": {**timings, "total_s": time.perf_counter() - t0},
        }
        if clf.info.certifies and hasattr(clf, "certify"):
            t = time.perf_counter()
            result["certification"] = self.certification(clf, x_np, y_np, info.task, device)
            result["timings"]["certify_s"] = time.perf_counter() - t
        if getattr(attack, "report", None):  # before member-targeted calls add to it
            result["attack_report"] = attack.report
        if isinstance(getattr(clf, "members", None), torch.nn.ModuleList):
            t = time.perf_counter()
            result["ensemble"] = self.ensemble(
                clf, attack, threat, x_np, x_adv, y_np, data, device, spec
            )
            result["timings"]["ensemble_s"] = time.perf_counter() - t
        if spec.transfer:
            result["source"] = {
                "model": spec.source().model,
                "defense": spec.source().defense,
                "training": {k: v for k, v in source_training.items() if k != "history"},
            }
        if stored is not None:
            result["universal_perturbation"] = stored
        result["artifact"] = self.save_artifact(spec, x_np, delta, test.ids, idx, info)
        return result

    def craft(
        self,
        attack: Any,
        threat: ThreatModel,
        clf: Classifier,
        x_np: np.ndarray,
        y_np: np.ndarray,
        data: Any,
        device: torch.device,
        spec: RunSpec,
        weights_key: str,
    ) -> tuple[np.ndarray, AuditReport, dict | None]:
        """Run the attack in batches, auditing every call; a universal attack runs once and its
        δ is stored (safetensors + spec) and reused for every target it is evaluated on."""
        ctx = self.attack_context(data, device, spec)
        if threat.universal:
            return self.craft_universal(attack, threat, clf, x_np, y_np, ctx, spec, weights_key)
        deltas, reports = [], []
        for i in range(0, len(x_np), ATTACK_BATCH):
            delta, report = self.call_attack(
                attack, threat, clf, x_np[i : i + ATTACK_BATCH], y_np[i : i + ATTACK_BATCH], ctx
            )
            deltas.append(delta)
            reports.append(report)
        return np.concatenate(deltas).astype(np.float32), AuditReport.merge(reports), None

    def attack_context(self, data: Any, device: torch.device, spec: RunSpec) -> AttackContext:
        """What an attack sees besides its records: the training data and a seeded generator."""
        return AttackContext(
            data.info,
            device,
            torch.Generator(device=device).manual_seed(spec.seed),
            train=data.load("train"),
            val=data.load("val"),
            cache_dir=self.home / "cache",
        )

    def ensemble(self, clf, attack, threat, x_np, x_adv, y_np, data, device, spec) -> dict:
        """An ensemble's own numbers: each member's accuracy clean and under the attack on the
        whole ensemble, P(≥k of K members correct), and (per-record attacks) the attack crafted
        on each member alone, evaluated on every member and on the ensemble."""
        members, task = list(clf.members), data.info.task
        n = min(ENSEMBLE_RECORDS, len(x_np))

        def correct_by_member(x: np.ndarray) -> np.ndarray:
            return np.stack(
                [
                    metrics.correct(predict_logits(m, x, device), y_np[: len(x)], task)
                    for m in members
                ]
            )

        clean, adv = correct_by_member(x_np), correct_by_member(x_adv)
        out: dict[str, Any] = {
            "members": len(members),
            "member_accuracy": {
                "clean": clean.mean(1).tolist(),
                "adversarial": adv.mean(1).tolist(),
            },
            "at_least_k_correct": {
                part: {k: metrics.at_least_k_correct(c, k) for k in range(1, len(members) + 1)}
                for part, c in (("clean", clean), ("adversarial", adv))
            },
        }
        if threat.universal:
            out["member_transfer"] = "skipped: a universal attack is fitted once, on the ensemble"
            return out
        rows, reports = [], []
        for member in members:
            ctx = self.attack_context(data, device, spec)
            delta, report = self.call_attack(attack, threat, member, x_np[:n], y_np[:n], ctx)
            reports.append(report)
            x_m = x_np[:n] + delta
            ensemble_ok = metrics.correct(predict_logits(clf, x_m, device), y_np[:n], task)
            rows.append([*correct_by_member(x_m).mean(1).tolist(), float(ensemble_ok.mean())])
        out["member_transfer"] = {
            "records": n,
            "accuracy": rows,
            "rows": "attack crafted on member i",
            "columns": [f"member {j}" for j in range(len(members))] + ["ensemble"],
            "audit": AuditReport.merge(reports).to_dict(),  # member attacks are audited too
        }
        return out

    def call_attack(self, attack, threat, clf, x_np, y_np, ctx) -> tuple[np.ndarray, AuditReport]:
        """One audited attack call: snapshot input and modes, run, audit what came back."""
        x = to_tensor(x_np, ctx.device).float()
        y = to_tensor(y_np, ctx.device)
        x_before, before = x.clone(), modes(clf)
        delta = attack.run(clf, x, y, threat, ctx)
        if not isinstance(delta, torch.Tensor):
            raise TypeError(f"attack {attack.name!r} returned {type(delta).__name__}, not a tensor")
        report = audit(x, x_before, delta, threat, ctx.info.fs, before, modes(clf))
        return np.broadcast_to(delta.detach().float().cpu().numpy(), x.shape), report

    def craft_universal(
        self, attack, threat, clf, x_np, y_np, ctx, spec, weights_key
    ) -> tuple[np.ndarray, AuditReport, dict]:
        """Fit (or load) one δ for the source classifier, then audit it on the attacked records."""
        meta = {
            "attack": spec.attack,
            "attack_params": spec.attack_params,
            "threat": threat.model_copy(update={"access": "white-box"}).model_dump(mode="json"),
            "seed": spec.seed,
            "source_weights": weights_key,
            "versions": plugin_versions(self.host, [("attacks", spec.attack)]),
        }
        path = self.home / "perturbations" / f"{digest(meta)}.safetensors"
        if path.exists():
            v = load_file(str(path))["delta"].to(ctx.device)
            x = to_tensor(x_np, ctx.device).float()
            report = audit(x, x.clone(), v, threat, ctx.info.fs, modes(clf), modes(clf))
            delta = np.broadcast_to(v.float().cpu().numpy(), x.shape)
            reused = True
        else:
            delta, report = self.call_attack(attack, threat, clf, x_np, y_np, ctx)
            v = torch.from_numpy(np.array(delta[:1]))
            save_tensors(path, {"delta": v}, {"spec": json.dumps(meta, default=str)})
            reused = False
        stored = {"file": str(path), "reused": reused, **meta}
        return np.ascontiguousarray(delta, np.float32), report, stored

    def save_artifact(self, spec, x_np, delta, ids, idx, info) -> str:
        """Keep a few attacked records (clean x and δ, mV) for plots; returns the file path."""
        n = min(ARTIFACT_RECORDS, len(x_np))
        path = self.home / "artifacts" / f"{spec.key()}.safetensors"
        tensors = {
            "x": torch.from_numpy(np.array(x_np[:n])),
            "delta": torch.from_numpy(np.array(delta[:n])),
        }
        meta = {
            "ids": json.dumps([ids[i] for i in idx[:n]]),
            "leads": json.dumps(list(info.leads)),
            "fs": str(info.fs),
        }
        save_tensors(path, tensors, meta)
        return str(path)

    def certification(self, clf, x_np, y_np, task, device, batch: int = 16) -> dict[str, Any]:
        """Certify the clean test records (a certified defense's own guarantee, in mV)."""
        preds, radii = [], []
        with eval_mode(clf):
            for i in range(0, len(x_np), batch):
                pred, radius = clf.certify(to_tensor(x_np[i : i + batch], device).float())
                preds.append(pred)
                radii.append(radius)
        out = metrics.certified(np.concatenate(preds), np.concatenate(radii), y_np, task)
        return {
            **out,
            "norm": getattr(clf, "certified_norm", "l2"),
            "forward_passes_per_record": getattr(clf, "certify_passes", clf.info.forward_passes),
        }

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
        if (
            not clf.info.deterministic
            and clf.info.gradient != "eot"
            and not getattr(attack, "eot", False)
        ):
            out.append(
                f"randomized defense attacked by {attack.name!r} without EOT: robustness overstated"
            )
        if clf.info.gradient == "bpda":
            out.append("a preprocessing step is attacked through BPDA (identity backward)")
        return out

    def run_and_store(
        self, spec: RunSpec, force: bool = False, keep_going: bool = False
    ) -> dict[str, Any]:
        """Run a cell unless already stored (then `skipped`); store done or failed results."""
        spec = self.resolve(spec)
        key = spec.key()
        notes = []
        if not force and self.store.done(key):
            stored = self.store.latest(key)
            if stored.get("data_key") in (None, self.data_key(spec)):
                return {**stored, "status": "skipped"}
            notes.append("the data changed since the stored result: re-run (the old row is kept)")
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
        if result["status"] == "done":
            result["warnings"] += notes + self.consistency(result)
        self.store.add(result)
        result["warnings"] = result.get("warnings", []) + self.host.notify_result(result)
        return result

    def consistency(self, result: dict[str, Any]) -> list[str]:
        """Compare with stored cells on the same classifier and records: a weaker attack (one a
        stronger attack's class lists in `stronger_than`) or a smaller budget of the same attack
        must not do more damage; when it does, the stronger run is failing (gradient masking,
        too few steps) and its robust number is overstated. An attack that already leaves no
        record right is never called failing."""
        mine, spec = summary_row(result), result["spec"]
        varying = {"attack", "attack_params", "eps", "device", "data_dir", "eval_data_dir"}
        base = {k: v for k, v in spec.items() if k not in varying}

        def stronger(a: str, b: str) -> bool:
            entry = self.host.entries["attacks"].get(a)
            return entry is not None and b in getattr(entry.cls, "stronger_than", ())

        out = []
        same = {c: spec[c] for c in ("dataset", "model", "defense", "seed")}
        for other in self.store.results(**same):
            o = other["spec"]
            if other["status"] != "done" or other["key"] == result["key"]:
                continue
            if {k: v for k, v in o.items() if k not in varying} != base:
                continue
            theirs = summary_row(other)
            if mine["adversarial"] is None or theirs["adversarial"] is None:
                continue
            gap = mine["adversarial"] - theirs["adversarial"]  # > 0: the other did more damage
            same_attack = (o["attack"], o["attack_params"]) == (
                spec["attack"],
                spec["attack_params"],
            )
            if abs(gap) <= CONSISTENCY_TOLERANCE:
                continue
            # the cell that did less damage; if its attack already left no record right, the
            # metric gap is score saturation (e.g. tied AUC), not a failing attack
            lesser = result if gap > 0 else other
            if lesser["adversarial"].get("accuracy") == 0:
                continue
            weaker, strong = (o, spec) if gap > 0 else (spec, o)
            if o["eps"] == spec["eps"] and stronger(strong["attack"], weaker["attack"]):
                out.append(
                    f"{weaker['attack']!r} does more damage than the stronger {strong['attack']!r}"
                    f" at the same budget ({mine['metric']} {min(mine['adversarial'], theirs['adversarial']):.3f}"
                    f" vs {max(mine['adversarial'], theirs['adversarial']):.3f}): the stronger "
                    "attack is failing (gradient masking or too few steps)"
                )
            elif same_attack and isinstance(o["eps"], float) and isinstance(spec["eps"], float):
                small, large = sorted((o, spec), key=lambda sp: sp["eps"])
                if (gap > 0) == (large is spec) and o["eps"] != spec["eps"]:
                    out.append(
                        f"{spec['attack']!r} at the larger budget {large['eps']} mV does less damage"
                        f" than at {small['eps']} mV ({mine['metric']}): robustness is not"
                        " monotone in ε, a sign of a failing attack"
                    )
        return out
