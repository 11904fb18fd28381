"""What cells of one run or matrix share: the host, the home folder, loaded datasets and the
defended classifiers (trained once, weights cached by a digest of everything that determines
them and verified on every read)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .artifacts import digest, read_or_none, save_tensors
from .crafting import Target
from .errors import DataError, UserError
from .host import Host
from .protocols import AttackContext, Classifier, Dataset, DatasetInfo, FitContext, Split
from .provenance import plugin_versions
from .specs import RunSpec

EVAL_FIELDS = ("task", "classes", "leads", "fs", "n_samples")  # a zero-shot target must match


HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without a GPU is a user error."""
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA GPU is available (use cpu or auto)")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")


def set_precision(clf: Classifier, precision: str) -> None:
    """Run the forward passes of `clf` (and of every classifier inside it, e.g. an ensemble's
    members called on their own) in bf16/fp16 under autocast, or fp32."""
    for m in clf.modules():
        if isinstance(m, Classifier):
            m.half = HALF.get(precision)


class Resources:
    """Datasets and classifiers shared across the cells of a run; `isolate` runs every attack
    in a separate process (see `ecgarena.isolate`)."""

    def __init__(self, host: Host, home: Path, isolate: bool = False) -> None:
        self.host, self.home, self.isolate = host, Path(home), isolate
        self._datasets: dict[str, Dataset] = {}
        self._parts: dict[int, dict[str, Any]] = {}
        self._classifiers: dict[str, tuple[Classifier, dict[str, Any]]] = {}

    def dataset(self, spec: RunSpec) -> Dataset:
        """The dataset plugin instance a spec trains on (one per distinct options)."""
        return self._dataset(spec.dataset, spec.dataset_params, spec.data_dir)

    def eval_target(self, spec: RunSpec) -> Dataset:
        """The dataset plugin instance a zero-shot spec is evaluated on."""
        return self._dataset(spec.eval_dataset, spec.eval_dataset_params, spec.eval_data_dir)

    def _dataset(self, name: str | None, params: dict[str, Any], data_dir: Path | None) -> Dataset:
        options = {**params, "data_dir": data_dir, "cache_dir": self.home / "cache"}
        key = json.dumps([name, options], sort_keys=True, default=str)
        if key not in self._datasets:
            self._datasets[key] = self.host.create("datasets", name, options)
        return self._datasets[key]

    def parts(self, data: Dataset) -> dict[str, Any]:
        """A dataset's `cache_parts` (options and source-file fingerprint), computed once."""
        if id(data) not in self._parts:
            self._parts[id(data)] = data.cache_parts()
        return self._parts[id(data)]

    def data_key(self, spec: RunSpec) -> str:
        """A digest of the data a cell used (sources fingerprint and options of the training
        and evaluation datasets): a stored cell is reused only while it matches."""
        parts = [self.parts(self.dataset(spec))]
        if spec.eval_dataset:
            parts.append(self.parts(self.eval_target(spec)))
        return digest(parts)

    def evaluation(self, spec: RunSpec) -> tuple[DatasetInfo, Split]:
        """The info and records a cell is evaluated on: the test split, or (zero-shot) every
        record of `eval_dataset`, which must match the training data's classes and shape."""
        data = self.dataset(spec)
        if spec.eval_dataset is None:
            return data.info, data.load("test")
        target = self.eval_target(spec)
        have, want = target.info, data.info
        for field in EVAL_FIELDS:
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

    def weights_key(self, spec: RunSpec) -> tuple[str, dict[str, Any]]:
        """The digest naming a defended classifier's weights, and the parts it is taken over."""
        pieces = [("datasets", spec.dataset), ("models", spec.model), ("defenses", spec.defense)]
        parts = {
            "dataset": [spec.dataset, self.parts(self.dataset(spec))],
            "model": [spec.model, spec.model_params],
            "defense": [spec.defense, spec.defense_params],
            "train": spec.train.model_dump(),
            "seed": spec.seed,
            "versions": plugin_versions(self.host, pieces),
        }
        return digest(parts), parts

    def weights_path(self, key: str) -> Path:
        """Where the weights of classifier `key` are cached (content-verified on read)."""
        return self.home / "weights" / f"{key}.safetensors"

    def classifier(
        self, spec: RunSpec, device: torch.device, cached_only: bool = False
    ) -> tuple[Classifier, dict[str, Any]]:
        """Build the defended classifier; load its cached weights when they pass their SHA-256
        check, else train it and save them (a failed check is retrained and said so in the
        summary's `rebuilt`). `cached_only` refuses to train (an isolated attack process)."""
        key, parts = self.weights_key(spec)
        if key in self._classifiers:
            return self._classifiers[key]
        data, info = self.dataset(spec), self.dataset(spec).info
        defense = self.host.create("defenses", spec.defense, spec.defense_params)
        model = self.host.create("models", spec.model, spec.model_params)
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
        path = self.weights_path(key)
        summary, failed = self._cached_weights(clf, path)
        if summary is None:
            if cached_only:
                raise DataError(f"no verified cached weights {path} for {spec.defense!r}")
            summary = {**defense.train(clf, ctx), "cached": False}
            summary = json.loads(json.dumps(summary, default=str))
            metadata = {"key": key, "spec": json.dumps(parts, default=str)}
            save_tensors(path, clf.state_dict(), {**metadata, "summary": json.dumps(summary)})
            if failed:
                summary["rebuilt"] = f"{failed}: retrained and rewritten"
        clf.to(device).eval()
        summary.update(weights=str(path), key=key)
        self._classifiers[key] = (clf, summary)
        return clf, summary

    @staticmethod
    def _cached_weights(clf: Classifier, path: Path) -> tuple[dict[str, Any] | None, str | None]:
        """The stored summary after loading verified weights into `clf`; (None, why) when the
        file is absent (why None), fails its check, or does not fit the classifier."""
        tensors, meta, failed = read_or_none(path)
        if not tensors:
            return None, failed
        try:
            clf.load_state_dict(tensors)
            summary = json.loads(meta["summary"])
        except (RuntimeError, KeyError, ValueError) as e:
            return None, f"{path} does not fit this classifier ({e})"
        return {**summary, "cached": True}, None

    def forget(self, key: str) -> None:
        """Drop a classifier an attack replaced parts of: the next use reloads its weights."""
        self._classifiers.pop(key, None)

    def target(self, spec: RunSpec, device: torch.device, member: int | None = None) -> Target:
        """The classifier of `spec` as an attack target (rebuilt from verified weights if an
        attack replaced its modules)."""
        key = self.classifier(spec, device)[1]["key"]
        return Target(
            spec,
            key,
            get=lambda: self.classifier(spec, device)[0],
            forget=lambda: self.forget(key),
            member=member,
        )

    def attack_context(self, spec: RunSpec, device: torch.device) -> AttackContext:
        """What an attack sees besides its records: the training data and a seeded generator."""
        data = self.dataset(spec)
        return AttackContext(
            data.info,
            device,
            torch.Generator(device=device).manual_seed(spec.seed),
            train=data.load("train"),
            val=data.load("val"),
            cache_dir=self.home / "cache",
        )
