"""One cell, end to end: `run_cell(spec, resources) -> CellResult`. Load the data, build and
train (or reuse) the defended classifier, evaluate clean, craft the attack under the core's
contract and audit it, evaluate under attack, measure against a trivial baseline with bootstrap
intervals, gate the clean model. Pure apart from the caches in the home folder."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch

from . import bootstrap, metrics
from .artifacts import digest, read_or_none, save_tensors
from .audit import AuditReport
from .certify import certification
from .checks import gradient_warnings, kind_warnings
from .contract import Contract, build_contract
from .crafting import Crafted, Target, audit_stored, craft_batches
from .decisions import decision_rule, decisions
from .ensemble import ensemble_block
from .errors import UserError
from .gate import gate, trivial
from .host import Host
from .perturbation_stats import perturbation_stats
from .protocols import Classifier, DatasetInfo
from .provenance import plugin_versions, versions
from .resources import Resources, resolve_device, set_precision
from .result import CellResult
from .specs import RunSpec
from .training import predict_logits

DEFAULT_EPS_MV = 0.05  # the budget of attacks that declare no `default_eps_mv`
ARTIFACT_RECORDS = 4  # records kept per cell (clean x and δ) for `ecgarena plot overlay`


def resolve(host: Host, spec: RunSpec) -> RunSpec:
    """Fill what the spec leaves to plugins (the attack's default budget) before keying."""
    if spec.eps is not None:
        return spec
    cls = host.get("attacks", spec.attack).cls
    return spec.model_copy(update={"eps": getattr(cls, "default_eps_mv", DEFAULT_EPS_MV)})


def contract_for(attack: Any, spec: RunSpec, info: DatasetInfo) -> Contract:
    """The core's threat contract for the spec's budget (see `ecgarena.contract`)."""
    contract = build_contract(attack, spec.eps, info.leads)
    if spec.transfer:
        threat = contract.threat.model_copy(update={"access": "transfer"})
        contract = replace(contract, threat=threat)
    return contract


def attacked_indices(n: int, spec: RunSpec) -> np.ndarray:
    """The test records a cell attacks: all, or a seeded sample of `max_attack_records`."""
    if n == 0:
        raise UserError(f"dataset {spec.dataset!r} has an empty test split: nothing to attack")
    if spec.max_attack_records and spec.max_attack_records < n:
        rng = np.random.default_rng(spec.seed)
        return np.sort(rng.choice(n, spec.max_attack_records, replace=False))
    return np.arange(n)


def run_cell(spec: RunSpec, res: Resources) -> CellResult:
    """Run one cell and return its typed result (not stored; see `ecgarena.matrix`)."""
    spec = resolve(res.host, spec)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    device = resolve_device(spec.device)
    attack = res.host.create("attacks", spec.attack, spec.attack_params)
    data = res.dataset(spec)
    info, test = res.evaluation(spec)
    contract = contract_for(attack, spec, info)
    timings["data_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    clf, training = res.classifier(spec, device)
    source, source_training = (
        res.classifier(spec.source(), device) if spec.transfer else (clf, training)
    )
    pieces = [clf, source] if spec.transfer else [clf]
    for piece in pieces:
        set_precision(piece, spec.precision)
    timings["train_s"] = time.perf_counter() - t

    idx = attacked_indices(len(test), spec)
    x_np, y_np = np.asarray(test.x[idx], np.float32), np.asarray(test.y[idx])
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
    target = res.target(spec.source(), device)
    crafted, stored = craft(res, attack, contract, target, x_np, y_np, device)
    timings["attack_s"] = time.perf_counter() - t

    t = time.perf_counter()
    clf = res.classifier(spec, device)[0]  # rebuilt from verified weights if replaced
    set_precision(clf, spec.precision)
    x_adv = x_np + crafted.delta
    adv_logits = predict_logits(clf, x_adv, device)
    decided = None if clean_decisions is None else (clean_decisions, decisions(clf, x_adv, device))
    timings["adv_eval_s"] = time.perf_counter() - t

    task = info.task
    result = measure(clean_logits, adv_logits, y_np, info, thresholds, decided, spec.seed)
    result["trivial"] = baseline = trivial(
        np.asarray(data.load("train").y), y_np, task, info.classes
    )
    clean_pred = decided[0] if decided else None
    verdict = gate(result["clean"], result["intervals"], baseline, clean_logits, task, clean_pred)
    warnings = [f"degenerate clean model: {'; '.join(verdict['reasons'])}"] * verdict["degenerate"]
    evaluated = [data, res.eval_target(spec)] if spec.eval_dataset else [data]
    warnings += [note for d in evaluated for note in getattr(d, "notes", [])]
    warnings += [part["rebuilt"] for part in (training, stored or {}) if "rebuilt" in part]
    kind = res.host.get("defenses", spec.defense).cls.kind
    warnings += kind_warnings(kind, clf) + gradient_warnings(clf, attack, x_np, y_np, task, device)
    warnings += [f"{spec.attack}: {w}" for w in (crafted.report or {}).get("warnings", [])]
    cutoff = contract.threat.band_hz or min(40.0, 0.4 * info.fs)
    result.update(
        key=spec.key(),
        data_key=res.data_key(spec),
        status="done",
        task=task,
        spec=spec.model_dump(mode="json"),
        threat=contract.threat.model_dump(mode="json"),
        contract=contract.describe(),
        isolated=res.isolate,
        device=str(device),
        versions=versions(res.host, spec),
        classifier={"defense_kind": kind, **asdict(clf.info)},
        training={k: v for k, v in training.items() if k != "history"},
        gate=verdict,
        thresholds=decision_rules(clf, task, thresholds),
        perturbation=perturbation_stats(x_np, crafted.delta, info.fs, cutoff),
        audit=crafted.audit.to_dict(),
        warnings=warnings,
        attack_report=crafted.report,
        universal_perturbation=stored,
    )
    extras(result, res, spec, clf, attack, contract, (x_np, x_adv, y_np), device, timings)
    if spec.transfer:
        src = spec.source()
        result["source"] = {
            "model": src.model,
            "model_params": src.model_params,
            "defense": src.defense,
            "defense_params": src.defense_params,
            "training": {k: v for k, v in source_training.items() if k != "history"},
        }
    result["artifact"] = save_records(res, spec, x_np, crafted.delta, [test.ids[i] for i in idx])
    result["timings"] = {**timings, "total_s": time.perf_counter() - t0}
    return CellResult.from_raw(result)


def measure(
    clean_logits: np.ndarray,
    adv_logits: np.ndarray,
    y: np.ndarray,
    info: DatasetInfo,
    thresholds: list[float] | None,
    decided: tuple[np.ndarray, np.ndarray] | None,
    seed: int,
) -> dict[str, Any]:
    """Clean and attacked metrics, their bootstrap intervals, fooling and where flips went."""
    task, classes = info.task, info.classes
    clean_pred, adv_pred = decided or (None, None)
    return {
        "clean": metrics.classification(clean_logits, y, task, classes, thresholds, clean_pred),
        "adversarial": metrics.classification(adv_logits, y, task, classes, thresholds, adv_pred),
        "intervals": bootstrap.intervals(
            clean_logits, adv_logits, y, task, thresholds, seed=seed, decided=decided
        ),
        "fooling": metrics.fooling(clean_logits, adv_logits, y, task, decided),
        "targets": metrics.targets(clean_logits, adv_logits, task, classes, decided),
    }


def decision_rules(clf: Classifier, task: str, thresholds: list[float] | None) -> dict[str, Any]:
    """How each headline metric decided: the classifier's rule, the logits, tuned thresholds."""
    tuned = {"macro_f1_tuned": {"tuned_on": "val", "logits": thresholds}} if thresholds else {}
    return {"macro_f1": decision_rule(clf, task), "macro_auc": "the classifier's logits", **tuned}


def extras(
    result: dict[str, Any],
    res: Resources,
    spec: RunSpec,
    clf: Classifier,
    attack: Any,
    contract: Contract,
    records: tuple[np.ndarray, np.ndarray, np.ndarray],
    device: torch.device,
    timings: dict[str, float],
) -> None:
    """The optional blocks: certification of a certifying classifier, an ensemble's own
    numbers (with each member-targeted attack crafted and audited as any)."""
    x_np, x_adv, y_np = records
    task = res.dataset(spec).info.task
    if clf.info.certifies and hasattr(clf, "certify"):
        t = time.perf_counter()
        result["certification"] = certification(clf, x_np, y_np, task, device, x_adv - x_np)
        timings["certify_s"] = time.perf_counter() - t
    if not isinstance(getattr(clf, "members", None), torch.nn.ModuleList):
        return
    t = time.perf_counter()

    def attack_member(i: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, AuditReport]:
        done = craft_on(res, attack, contract, res.target(spec, device, i), x, y, device)
        return done.delta, done.audit

    member_attack = None if contract.threat.universal else attack_member
    result["ensemble"] = ensemble_block(clf, x_np, x_adv, y_np, task, device, member_attack)
    timings["ensemble_s"] = time.perf_counter() - t


def craft_on(
    res: Resources,
    attack: Any,
    contract: Contract,
    target: Target,
    x: np.ndarray,
    y: np.ndarray,
    device: torch.device,
) -> Crafted:
    """The audited batch loop, isolated in a child process when the resources say so."""
    ctx = res.attack_context(target.spec, device)
    return craft_batches(attack, contract, target, x, y, ctx, res.home if res.isolate else None)


def craft(
    res: Resources,
    attack: Any,
    contract: Contract,
    target: Target,
    x_np: np.ndarray,
    y_np: np.ndarray,
    device: torch.device,
) -> tuple[Crafted, dict[str, Any] | None]:
    """Run the attack in batches, auditing every call; a universal attack runs once (one call
    on the first batch) on the source classifier, its δ is stored (verified on read) and
    reused for every record and every target."""
    if not contract.threat.universal:
        return craft_on(res, attack, contract, target, x_np, y_np, device), None
    spec = target.spec
    meta = {
        "attack": spec.attack,
        "attack_params": spec.attack_params,
        "threat": contract.threat.model_copy(update={"access": "white-box"}).model_dump(
            mode="json"
        ),
        "seed": spec.seed,
        **({"precision": spec.precision} if spec.precision != "fp32" else {}),
        "source_weights": target.key,
        "versions": plugin_versions(res.host, [("attacks", spec.attack)]),
    }
    path = res.home / "perturbations" / f"{digest(meta)}.safetensors"
    tensors, _, failed = read_or_none(path)
    if "delta" in tensors:
        ctx = res.attack_context(spec, device)
        v = tensors["delta"].to(device)
        report = audit_stored(v, x_np, contract, ctx, target.module())
        delta = np.ascontiguousarray(np.broadcast_to(v.float().cpu().numpy(), x_np.shape))
        crafted = Crafted(delta, report)
    else:  # fitted once (one call, one audit), then applied to every attacked record
        first = slice(0, spec.attack_batch)
        crafted = craft_on(res, attack, contract, target, x_np[first], y_np[first], device)
        one = np.array(crafted.delta[:1])
        delta = np.ascontiguousarray(np.broadcast_to(one, x_np.shape))
        crafted = replace(crafted, delta=delta)
        save_tensors(
            path, {"delta": torch.from_numpy(one)}, {"spec": json.dumps(meta, default=str)}
        )
    stored = {"file": str(path), "reused": "delta" in tensors, **meta}
    if failed:
        stored["rebuilt"] = f"{failed}: fitted again and rewritten"
    return crafted, stored


def save_records(
    res: Resources, spec: RunSpec, x_np: np.ndarray, delta: np.ndarray, ids: list[str]
) -> str:
    """Keep a few attacked records (clean x and δ, mV) for plots; returns the file path."""
    n = min(ARTIFACT_RECORDS, len(x_np))
    info = res.dataset(spec).info if spec.eval_dataset is None else res.eval_target(spec).info
    path = res.home / "artifacts" / f"{spec.key()}.safetensors"
    tensors = {"x": torch.from_numpy(np.array(x_np[:n])), "delta": torch.from_numpy(delta[:n])}
    meta = {"ids": json.dumps(ids[:n]), "leads": json.dumps(list(info.leads)), "fs": str(info.fs)}
    save_tensors(path, tensors, meta)
    return str(path)
