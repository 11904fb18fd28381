"""One cell, end to end: load data, build and train (or reuse) the defended classifier,
evaluate clean, craft the attack under the core's contract, audit it, evaluate under attack,
measure with a trivial baseline and bootstrap intervals, and gate the clean model."""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import bootstrap, metrics
from .audit import AuditReport
from .certify import certification
from .checks import consistency, gradient_warnings
from .contract import Contract, build_contract
from .crafting import Crafted, Target, audit_stored, craft_batches, load_universal
from .decisions import decision_rule, decisions
from .download import sha256
from .ensemble import ensemble_block
from .errors import DataError, UserError
from .gate import gate, trivial
from .host import Host
from .protocols import AttackContext, Classifier, FitContext, Split
from .specs import RunSpec
from .store import Store
from .training import predict_logits

DEFAULT_EPS_MV = 0.05  # the budget of attacks that declare no `default_eps_mv`
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


def stale_because(stored: dict[str, Any], data_key: str, now: dict[str, Any]) -> str | None:
    """Why a stored cell no longer stands for its spec (None: reuse it): its data changed, or
    a plugin, the core or torch behind it has another version now."""
    if stored.get("data_key") not in (None, data_key):
        return "the data changed"
    then = stored.get("versions") or {}
    moved = [f"{k} {then[k]} → {v}" for k, v in now.items() if k in then and then[k] != v]
    return f"versions changed ({', '.join(moved)})" if moved else None


class Session:
    """Shared state across cells of a run or matrix: the host, home folder and loaded data;
    `isolate` runs every attack in a separate process (see `ecgarena.isolate`)."""

    def __init__(self, host: Host, home: Path, isolate: bool = False) -> None:
        self.host, self.home, self.isolate = host, Path(home), isolate
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

    def classifier(
        self, spec: RunSpec, device: torch.device, cached_only: bool = False
    ) -> tuple[Classifier, dict]:
        """Build the defended classifier; reuse cached safetensors weights keyed by everything
        that determines them (verified against the SHA-256 recorded when they were written),
        else train and save them. `cached_only` refuses to train (an isolated attack process)."""
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
        summary = self._cached_weights(clf, weights)
        if summary is None:
            if cached_only:
                raise DataError(f"no verified cached weights {weights} for {spec.defense!r}")
            summary = {**defense.train(clf, ctx), "cached": False}
            metadata = {"key": key, "spec": json.dumps(parts, default=str)}
            save_tensors(weights, clf.state_dict(), metadata)
            summary["sha256"] = sha256(weights)
            weights.with_suffix(".json").write_text(json.dumps(summary, default=str))
        clf.to(device).eval()
        summary["weights"] = str(weights)
        summary["key"] = key
        self._classifiers[key] = (clf, summary)
        return clf, summary

    def _cached_weights(self, clf: Classifier, weights: Path) -> dict | None:
        """Load stored weights into `clf` when their file matches its recorded SHA-256;
        None (train again, the old files are replaced) when absent, altered or unreadable."""
        summary_path = weights.with_suffix(".json")
        if not (weights.exists() and summary_path.exists()):
            return None
        try:
            summary = json.loads(summary_path.read_text())
            if summary.get("sha256") != sha256(weights):
                return None
            clf.load_state_dict(load_file(str(weights)))
        except (ValueError, OSError, RuntimeError, SafetensorError):
            return None
        return {**summary, "cached": True}

    def target(self, spec: RunSpec, device: torch.device, member: int | None = None) -> Target:
        """The classifier of `spec` as an attack target (rebuilt from verified weights if an
        attack replaced its modules)."""
        key = self.classifier(spec, device)[1]["key"]
        return Target(
            spec,
            key,
            get=lambda: self.classifier(spec, device)[0],
            forget=lambda: self._classifiers.pop(key, None),
            member=member,
        )

    def resolve(self, spec: RunSpec) -> RunSpec:
        """Fill what the spec leaves to plugins (the attack's default budget) before keying."""
        if spec.eps is not None:
            return spec
        cls = self.host.get("attacks", spec.attack).cls
        return spec.model_copy(update={"eps": getattr(cls, "default_eps_mv", DEFAULT_EPS_MV)})

    def contract(self, attack: Any, spec: RunSpec, info: Any) -> Contract:
        """The core's threat contract for the spec's budget (see `ecgarena.contract`)."""
        contract = build_contract(attack, spec.eps, info.leads)
        if spec.transfer:
            threat = contract.threat.model_copy(update={"access": "transfer"})
            contract = replace(contract, threat=threat)
        return contract

    def run(self, spec: RunSpec) -> dict[str, Any]:
        """Run one cell and return its JSON-ready result (not stored; see `run_and_store`)."""
        spec = self.resolve(spec)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        device = resolve_device(spec.device)
        attack = self.host.create("attacks", spec.attack, spec.attack_params)
        data = self.dataset(spec)
        info, test = self.evaluation(spec)
        contract = self.contract(attack, spec, info)
        timings["data_s"] = time.perf_counter() - t0

        t = time.perf_counter()
        clf, training = self.classifier(spec, device)
        source_training = self.classifier(spec.source(), device)[1] if spec.transfer else training
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
        clean_decisions = decisions(clf, x_np, device)  # None: decided by the logits
        val = data.load("val")
        thresholds = (
            metrics.tune_thresholds(predict_logits(clf, val.x, device), np.asarray(val.y))
            if info.task == "multilabel" and len(val) and clean_decisions is None
            else None
        )
        timings["clean_eval_s"] = time.perf_counter() - t

        t = time.perf_counter()
        target = self.target(spec.source(), device)
        crafted, stored = self.craft(attack, contract, target, x_np, y_np, data, device, spec)
        delta = crafted.delta
        timings["attack_s"] = time.perf_counter() - t

        t = time.perf_counter()
        clf = self.classifier(spec, device)[0]  # rebuilt from verified weights if replaced
        x_adv = x_np + delta
        adv_logits = predict_logits(clf, x_adv, device)
        decided = (
            None if clean_decisions is None else (clean_decisions, decisions(clf, x_adv, device))
        )
        timings["adv_eval_s"] = time.perf_counter() - t

        task, classes = info.task, info.classes
        clean_pred, adv_pred = decided or (None, None)
        clean = metrics.classification(clean_logits, y_np, task, classes, thresholds, clean_pred)
        ci = bootstrap.intervals(
            clean_logits, adv_logits, y_np, task, thresholds, seed=spec.seed, decided=decided
        )
        baseline = trivial(np.asarray(data.load("train").y), y_np, task, classes)
        verdict = gate(clean, ci, baseline, clean_logits, task, clean_pred)
        warnings = [f"degenerate clean model: {'; '.join(verdict['reasons'])}"] * bool(
            verdict["degenerate"]
        )
        warnings += gradient_warnings(clf, attack, x_np, y_np, task, device)
        warnings += [f"{spec.attack}: {w}" for w in (crafted.report or {}).get("warnings", [])]
        cutoff = contract.threat.band_hz or min(40.0, 0.4 * info.fs)
        result = {
            "key": spec.key(),
            "data_key": self.data_key(spec),
            "status": "done",
            "task": task,
            "spec": spec.model_dump(mode="json"),
            "threat": contract.threat.model_dump(mode="json"),
            "contract": contract.describe(),
            "isolated": self.isolate,
            "device": str(device),
            "versions": versions(self.host, spec),
            "classifier": asdict(clf.info),
            "training": {k: v for k, v in training.items() if k != "history"},
            "clean": clean,
            "adversarial": metrics.classification(
                adv_logits, y_np, task, classes, thresholds, adv_pred
            ),
            "intervals": ci,
            "trivial": baseline,
            "gate": verdict,
            "thresholds": {
                "macro_f1": decision_rule(clf, task),
                "macro_auc": "the classifier's logits",
                **(
                    {"macro_f1_tuned": {"tuned_on": "val", "logits": thresholds}}
                    if thresholds
                    else {}
                ),
            },
            "fooling": metrics.fooling(clean_logits, adv_logits, y_np, task, decided),
            "targets": metrics.targets(clean_logits, adv_logits, task, classes, decided),
            "perturbation": metrics.perturbation(x_np, delta, info.fs, cutoff),
            "audit": crafted.audit.to_dict(),
            "warnings": warnings,
            "timings": {**timings, "total_s": time.perf_counter() - t0},
        }
        if clf.info.certifies and hasattr(clf, "certify"):
            t = time.perf_counter()
            result["certification"] = certification(clf, x_np, y_np, task, device, delta)
            result["timings"]["certify_s"] = time.perf_counter() - t
        if crafted.report:  # before member-targeted calls add to it
            result["attack_report"] = crafted.report
        if isinstance(getattr(clf, "members", None), torch.nn.ModuleList):
            t = time.perf_counter()
            result["ensemble"] = self.ensemble(
                clf, attack, contract, x_np, x_adv, y_np, spec, device
            )
            result["timings"]["ensemble_s"] = time.perf_counter() - t
        if spec.transfer:
            result["source"] = {
                "model": spec.source().model,
                "model_params": spec.source().model_params,
                "defense": spec.source().defense,
                "defense_params": spec.source().defense_params,
                "training": {k: v for k, v in source_training.items() if k != "history"},
            }
        if stored is not None:
            result["universal_perturbation"] = stored
        result["artifact"] = self.save_artifact(spec, x_np, delta, test.ids, idx, info)
        return result

    def craft(
        self,
        attack: Any,
        contract: Contract,
        target: Target,
        x_np: np.ndarray,
        y_np: np.ndarray,
        data: Any,
        device: torch.device,
        spec: RunSpec,
    ) -> tuple[Crafted, dict | None]:
        """Run the attack in batches, auditing every call; a universal attack runs once and its
        δ is stored (safetensors + spec) and reused for every target it is evaluated on."""
        ctx = self.attack_context(data, device, spec)
        if contract.threat.universal:
            return self.craft_universal(attack, contract, target, x_np, y_np, ctx, spec)
        return self.craft_on(attack, contract, target, x_np, y_np, ctx), None

    def craft_on(self, attack, contract, target, x_np, y_np, ctx) -> Crafted:
        """The audited batch loop, isolated in a child process when the session says so."""
        home = self.home if self.isolate else None
        return craft_batches(attack, contract, target, x_np, y_np, ctx, home)

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

    def ensemble(self, clf, attack, contract, x_np, x_adv, y_np, spec, device) -> dict:
        """The ensemble block, with each member-targeted attack crafted and audited as any."""
        data = self.dataset(spec)

        def attack_member(i: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, AuditReport]:
            ctx = self.attack_context(data, device, spec)
            done = self.craft_on(attack, contract, self.target(spec, device, i), x, y, ctx)
            return done.delta, done.audit

        member_attack = None if contract.threat.universal else attack_member
        return ensemble_block(clf, x_np, x_adv, y_np, data.info.task, device, member_attack)

    def craft_universal(
        self, attack, contract, target, x_np, y_np, ctx, spec
    ) -> tuple[Crafted, dict]:
        """Fit (or load) one δ for the source classifier, then audit it on the attacked records."""
        meta = {
            "attack": spec.attack,
            "attack_params": spec.attack_params,
            "threat": contract.threat.model_copy(update={"access": "white-box"}).model_dump(
                mode="json"
            ),
            "seed": spec.seed,
            "source_weights": target.key,
            "versions": plugin_versions(self.host, [("attacks", spec.attack)]),
        }
        path = self.home / "perturbations" / f"{digest(meta)}.safetensors"
        v = load_universal(path, ctx.device)
        if v is not None:
            report = audit_stored(v, x_np, contract, ctx, target.module())
            crafted = Crafted(
                np.ascontiguousarray(np.broadcast_to(v.float().cpu().numpy(), x_np.shape)), report
            )
        else:
            crafted = self.craft_on(attack, contract, target, x_np, y_np, ctx)
            save_tensors(
                path,
                {"delta": torch.from_numpy(np.array(crafted.delta[:1]))},
                {"spec": json.dumps(meta, default=str)},
            )
        stored = {"file": str(path), "reused": v is not None, **meta}
        return crafted, stored

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

    def run_and_store(
        self, spec: RunSpec, force: bool = False, keep_going: bool = False
    ) -> dict[str, Any]:
        """Run a cell unless already stored (then `skipped`); store done or failed results."""
        spec = self.resolve(spec)
        key = spec.key()
        notes = []
        if not force and self.store.done(key):
            stored = self.store.latest(key)
            stale = stale_because(stored, self.data_key(spec), versions(self.host, spec))
            if stale is None:
                return {**stored, "status": "skipped"}
            notes.append(f"{stale} since the stored result: re-run (the old row is kept)")
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
            result["warnings"] += notes + consistency(self.host, self.store, result)
        self.store.add(result)
        result["warnings"] = result.get("warnings", []) + self.host.notify_result(result)
        return result
