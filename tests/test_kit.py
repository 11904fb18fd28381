"""The plugin author kit. `check_attack` runs the engine's path: the default budget, the contract
(`expand_budget` included), one `run_audited` call, the report merge rule; a real cell and the
kit give the same threat, δ and report for the same seed and records. `check_defense` and
`check_dataset` fire on each broken rule and pass the first-party pieces; the pytest plugin's
fixture factories and `--ecgarena-conformance` items."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import ecgarena
import numpy as np
import pytest
import torch
from ecgarena.artifacts import read_tensors
from ecgarena.cell import DEFAULT_EPS_MV, run_cell
from ecgarena.datasets.synthetic import SyntheticDataset
from ecgarena.host import Host
from ecgarena.resources import Resources, resolve_device
from ecgarena.specs import RunSpec, TrainSpec
from ecgarena.synthetic_ecg import CLASSES, LEADS, generate
from ecgarena.testing import (
    TinyNet,
    check_attack,
    check_dataset,
    check_defense,
    toy_fit_context,
)
from hypothesis import given, settings
from hypothesis import strategies as st

pytest_plugins = ["pytester"]

SMALL = {"dataset_params": {"n_records": 300}, "train": TrainSpec(epochs=1)}


class SignAttack:
    """A seeded sign attack that records the threat it is given and who called it."""

    name: ClassVar[str] = "sign"
    calls: ClassVar[list[dict[str, Any]]] = []

    def threat_model(self, budget_mv: float | list[float]) -> ecgarena.ThreatModel:
        return ecgarena.ThreatModel(budget_mv=budget_mv)

    def run(
        self,
        classifier: ecgarena.Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        threat: ecgarena.ThreatModel,
        ctx: ecgarena.AttackContext,
    ) -> ecgarena.Attacked:
        caller = inspect.stack()[1]
        SignAttack.calls.append({"threat": threat, "caller": (caller.function, caller.filename)})
        noise = torch.randn(x.shape, generator=ctx.generator, device=ctx.generator.device)
        delta = ecgarena.lead_budget(threat, x.shape[1], x) * noise.sign()
        return ecgarena.Attacked(delta, {"records": len(x), "warnings": ["recorded"]})


class RecordingAttack(SignAttack):
    """The sign attack with its own default budget."""

    name: ClassVar[str] = "recording"
    default_eps_mv: ClassVar[float] = 0.07


class ProfiledAttack(SignAttack):
    """The sign attack without a default budget (the core's) and a per-lead profile."""

    name: ClassVar[str] = "profiled"

    def expand_budget(self, eps_mv: float, leads: tuple[str, ...]) -> list[float]:
        return [eps_mv / 2] + [eps_mv] * (len(leads) - 1)


@pytest.fixture(scope="module")
def host() -> Host:
    h = Host()
    mod = types.ModuleType("fake_recording")

    @ecgarena.hookimpl
    def ecgarena_register_attacks(register):
        register(RecordingAttack)

    mod.ecgarena_register_attacks = ecgarena_register_attacks
    sys.modules["fake_recording"] = mod
    h.add(mod, "recording")
    return h


def _through_run_audited(call: dict[str, Any]) -> bool:
    function, filename = call["caller"]
    return function == "run_audited" and filename.endswith("attack_call.py")


def test_check_attack_uses_the_default_budget_and_expand_budget():
    x = torch.randn(3, 2, 40)
    assert check_attack(RecordingAttack(), x).threat.budget_mv == 0.07
    profiled = check_attack(ProfiledAttack(), x)
    assert profiled.threat.budget_mv == [DEFAULT_EPS_MV / 2, DEFAULT_EPS_MV]
    assert check_attack(ProfiledAttack(), x, 0.2).threat.budget_mv == [0.1, 0.2]
    assert profiled.audit.passed and profiled.attack_report == {
        "records": 3,
        "warnings": ["recorded"],
    }


def test_check_attack_and_a_cell_share_run_audited_threat_delta_and_report(host, tmp_path):
    SignAttack.calls.clear()
    spec = RunSpec(attack="recording", **SMALL)
    res = Resources(host, tmp_path)
    cell = run_cell(spec, res)
    (engine,) = SignAttack.calls
    assert _through_run_audited(engine)
    assert cell.threat == engine["threat"].model_dump(mode="json")
    assert cell.threat["budget_mv"] == 0.07  # the attack's default budget, not the core's

    resolved = spec.model_copy(update={"eps": 0.07})
    info, test = res.evaluation(resolved)
    clf = res.classifier(resolved, resolve_device(spec.device))[0]
    x, y = torch.from_numpy(np.array(test.x, np.float32)), torch.from_numpy(np.array(test.y))
    kit = check_attack(
        RecordingAttack(),
        x,
        classifier=clf,
        fs=info.fs,
        task=info.task,
        n_classes=len(info.classes),
        seed=spec.seed,
        y=y,
        leads=info.leads,
    )
    assert _through_run_audited(SignAttack.calls[1])
    assert kit.threat.model_dump(mode="json") == cell.threat
    stored = read_tensors(Path(cell.artifact))[0]["delta"]  # the cell's δ of its first records
    assert torch.equal(kit.delta[: len(stored)], stored)
    assert kit.attack_report == cell.attack_report == {"records": len(x), "warnings": ["recorded"]}
    assert "recording: recorded" in cell.warnings
    assert kit.audit.passed and cell.audit.passed


# --- check_defense: a broken rule names the defense; real defenses pass ---------------------


class AddNoise(torch.nn.Module):
    """Gaussian noise on every call (a randomized preprocessing step)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.1 * torch.randn_like(x)


class Detach(torch.nn.Module):
    """Cuts the graph: no gradient reaches the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach()


class Flatline(torch.nn.Module):
    """Ignores the signal: a zero input gradient."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0


class InPlace(torch.nn.Module):
    """Rectifies its input in place."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs_()


class Infinite(torch.nn.Module):
    """Overflows: infinite signals, non-finite logits."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.inf


class NanBackward(torch.autograd.Function):
    """The identity forward with a NaN gradient."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad * torch.nan


class FailingBackward(NanBackward):
    """The identity forward whose backward raises."""

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("no backward\nhere")


class Through(torch.nn.Module):
    """Applies an autograd Function."""

    def __init__(self, function: type[torch.autograd.Function]) -> None:
        super().__init__()
        self.function = function

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function.apply(x)


class Waking(torch.nn.Module):
    """Switches itself to train mode on every call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.train()
        return x


class ToDouble(torch.nn.Module):
    """Hands float64 logits back."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).double()


class ToyDefense:
    """A well-behaved defense: `preprocess` before the net, honest `info`, core training."""

    name: ClassVar[str] = "toy"
    kind: ClassVar[str] = "preprocessing"
    info: ClassVar[ecgarena.ClassifierInfo] = ecgarena.ClassifierInfo()

    def preprocess(self) -> torch.nn.Module:
        return torch.nn.Identity()

    def net(self, ctx: ecgarena.FitContext) -> torch.nn.Module:
        return ctx.build_net()

    def build(self, ctx: ecgarena.FitContext) -> ecgarena.Classifier:
        return ecgarena.Classifier(self.net(ctx), preprocess=self.preprocess(), info=self.info)

    def train(self, classifier: ecgarena.Classifier, ctx: ecgarena.FitContext) -> dict[str, Any]:
        return ecgarena.fit_classifier(classifier, ctx)


class NoisyButDeterministic(ToyDefense):
    name: ClassVar[str] = "noisy"

    def preprocess(self) -> torch.nn.Module:
        return AddNoise()


class HonestNoisy(NoisyButDeterministic):
    name: ClassVar[str] = "honest-noisy"
    info: ClassVar[ecgarena.ClassifierInfo] = ecgarena.ClassifierInfo(deterministic=False)


class Detaching(ToyDefense):
    name: ClassVar[str] = "detaching"

    def preprocess(self) -> torch.nn.Module:
        return Detach()


class HonestDetaching(Detaching):
    name: ClassVar[str] = "honest-detaching"
    info: ClassVar[ecgarena.ClassifierInfo] = ecgarena.ClassifierInfo(differentiable=False)


class Flat(ToyDefense):
    name: ClassVar[str] = "flat"

    def preprocess(self) -> torch.nn.Module:
        return Flatline()


class Mutating(ToyDefense):
    name: ClassVar[str] = "mutating"

    def preprocess(self) -> torch.nn.Module:
        return InPlace()


class Untrained(ToyDefense):
    """Skips training (the core's loop rejects these nets' logits before the check could)."""

    def train(self, classifier: ecgarena.Classifier, ctx: ecgarena.FitContext) -> dict[str, Any]:
        classifier.eval()
        return {"trained": False}


class WrongWidth(Untrained):
    name: ClassVar[str] = "wrong-width"

    def net(self, ctx: ecgarena.FitContext) -> torch.nn.Module:
        return TinyNet(len(ctx.info.leads), len(ctx.info.classes) + 1)


class Double(Untrained):
    name: ClassVar[str] = "double"

    def net(self, ctx: ecgarena.FitContext) -> torch.nn.Module:
        return ToDouble(ctx.build_net())


class Overflowing(Untrained):
    name: ClassVar[str] = "overflowing"

    def preprocess(self) -> torch.nn.Module:
        return Infinite()


class NanGradient(ToyDefense):
    name: ClassVar[str] = "nan-gradient"

    def preprocess(self) -> torch.nn.Module:
        return Through(NanBackward)


class NoBackward(ToyDefense):
    name: ClassVar[str] = "no-backward"

    def preprocess(self) -> torch.nn.Module:
        return Through(FailingBackward)

    def train(self, classifier: ecgarena.Classifier, ctx: ecgarena.FitContext) -> dict[str, Any]:
        classifier.preprocess = torch.nn.Identity()  # trains without it, then puts it back
        summary = ecgarena.fit_classifier(classifier, ctx)
        classifier.preprocess = self.preprocess().eval()
        return summary


class WakesUp(ToyDefense):
    name: ClassVar[str] = "wakes-up"

    def preprocess(self) -> torch.nn.Module:
        return Waking()

    def train(self, classifier: ecgarena.Classifier, ctx: ecgarena.FitContext) -> dict[str, Any]:
        summary = ecgarena.fit_classifier(classifier, ctx)
        classifier.eval()
        return summary


class UntypedInfo(ToyDefense):
    name: ClassVar[str] = "untyped-info"

    def build(self, ctx: ecgarena.FitContext) -> ecgarena.Classifier:
        clf = super().build(ctx)
        clf.info = {"deterministic": True}  # type: ignore[assignment]
        return clf


class NotAClassifier(ToyDefense):
    name: ClassVar[str] = "bare-net"

    def build(self, ctx: ecgarena.FitContext) -> torch.nn.Module:  # type: ignore[override]
        return ctx.build_net()


class LeftTraining(ToyDefense):
    name: ClassVar[str] = "left-training"

    def train(self, classifier: ecgarena.Classifier, ctx: ecgarena.FitContext) -> dict[str, Any]:
        summary = ecgarena.fit_classifier(classifier, ctx)
        classifier.train()
        return summary


class NoSummary(ToyDefense):
    name: ClassVar[str] = "no-summary"

    def train(self, classifier: ecgarena.Classifier, ctx: ecgarena.FitContext) -> None:  # type: ignore[override]
        ecgarena.fit_classifier(classifier, ctx)


class ScalesTheData(ToyDefense):
    name: ClassVar[str] = "scales-the-data"

    def train(self, classifier: ecgarena.Classifier, ctx: ecgarena.FitContext) -> dict[str, Any]:
        records = ctx.train.x
        records *= 2
        return ecgarena.fit_classifier(classifier, ctx)


@pytest.mark.parametrize(
    "defense, rule",
    [
        (NoisyButDeterministic, "info.deterministic is True but two calls on the same input"),
        (Detaching, "info.differentiable is True but no gradient reaches the input"),
        (Flat, "info.differentiable is True but the input gradient is 0"),
        (Mutating, "the classifier changed its input in place"),
        (WrongWidth, r"logits of shape \(4, 4\), expected \(batch, n_classes\) = \(4, 3\)"),
        (Double, "logits are torch.float64, not torch.float32"),
        (NotAClassifier, "build returned TinyNet, not an ecgarena.Classifier"),
        (UntypedInfo, "classifier.info is dict, not an ecgarena.ClassifierInfo"),
        (Overflowing, r"non-finite logits \(NaN or inf\)"),
        (NanGradient, "the input gradient is not finite"),
        (NoBackward, "info.differentiable is True but backward failed: .*no backward here"),
        (WakesUp, "calling the classifier left preprocess in train mode"),
        (LeftTraining, "train left <classifier>, preprocess, standardize in train mode"),
        (NoSummary, "train returned NoneType, not a dict"),
        (ScalesTheData, "train changed the training records in place"),
    ],
    ids=lambda v: getattr(v, "name", ""),
)
def test_check_defense_names_the_defense_and_the_broken_rule(defense: type, rule: str) -> None:
    with pytest.raises(AssertionError, match=rf"^defense '{defense.name}': {rule}") as caught:
        check_defense(defense, build_net=lambda: TinyNet(2, 3))
    assert "\n" not in str(caught.value)


def test_check_defense_accepts_honest_randomized_and_non_differentiable_defenses() -> None:
    noisy = check_defense(HonestNoisy())
    assert not noisy.repeatable and noisy.grad_norm is not None and noisy.grad_norm > 0
    detached = check_defense(HonestDetaching)
    assert detached.repeatable and detached.grad_norm is None
    assert detached.logits.shape == (4, 3) and not detached.classifier.training


def test_check_defense_passes_the_first_party_median_defense(host: Host) -> None:
    checked = check_defense(host.create("defenses", "median", {"window_ms": 50}))
    assert checked.classifier.info.differentiable is False  # BPDA: gradients still reach x
    assert checked.repeatable and checked.grad_norm is not None and checked.grad_norm > 0
    assert checked.summary["epochs_run"] == 1 and checked.seconds < 5


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_check_defense_runs_any_leads_classes_rate_and_task(host: Host, task: str) -> None:
    checked = check_defense(
        host.create("defenses", "none"), leads=12, n_classes=5, task=task, fs=500.0
    )
    assert checked.logits.shape == (4, 5) and checked.repeatable


# --- toy_fit_context and the pytest fixtures --------------------------------------------------


def test_toy_fit_context_defaults_are_unchanged() -> None:
    ctx = toy_fit_context()
    x = np.random.default_rng(0).normal(0, 0.3, (48, 2, 32)).astype(np.float32)
    assert np.array_equal(ctx.train.x, x) and ctx.train.y.dtype == np.int64
    assert np.array_equal(ctx.train.y, x[:, 0].mean(axis=1) > 0)
    assert ctx.info == ecgarena.DatasetInfo("toy", "multiclass", ("a", "b"), ("I", "II"), 100.0, 32)


@settings(max_examples=30, deadline=None)
@given(
    leads=st.integers(1, 14),
    n_classes=st.integers(2, 30),
    fs=st.sampled_from([100.0, 257.0, 500.0]),
    time=st.integers(4, 80),
    task=st.sampled_from(["multiclass", "multilabel"]),
)
def test_toy_fit_context_matches_its_info_for_any_shape(
    leads: int, n_classes: int, fs: float, time: int, task: str
) -> None:
    ctx = toy_fit_context(n=20, time=time, leads=leads, n_classes=n_classes, fs=fs, task=task)
    info, y = ctx.info, ctx.train.y
    assert ctx.train.x.shape == (20, len(info.leads), info.n_samples) == (20, leads, time)
    assert len(set(info.leads)) == leads and len(set(info.classes)) == n_classes
    assert info.fs == fs and info.task == task
    if task == "multiclass":
        assert y.shape == (20,) and 0 <= y.min() and y.max() < n_classes
    else:
        assert y.shape == (20, n_classes) and set(np.unique(y)) <= {0.0, 1.0}
    assert ctx.build_net()(torch.from_numpy(ctx.train.x)).shape == (20, n_classes)


def test_toy_fit_context_names_a_bad_value() -> None:
    with pytest.raises(ValueError, match="at least 2 classes, got 1"):
        toy_fit_context(n_classes=1)
    with pytest.raises(ValueError, match="task must be one of .* got 'regression'"):
        toy_fit_context(task="regression")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fs=0"):
        toy_fit_context(fs=0)


def test_the_fixture_factories(
    ecgarena_fit_context: Callable[..., ecgarena.FitContext],
    ecgarena_classifier_factory: Callable[..., ecgarena.Classifier],
    ecgarena_classifier: ecgarena.Classifier,
) -> None:
    ctx = ecgarena_fit_context(n=8, time=50, leads=12, n_classes=5, fs=500.0, task="multilabel")
    assert ctx.train.x.shape == (8, 12, 50) and ctx.train.y.shape == (8, 5)
    assert ctx.info.fs == 500.0 and ctx.info.leads[-1] == "V6"
    clf = ecgarena_classifier_factory(12, 5, seed=1)
    assert clf(torch.from_numpy(ctx.train.x)).shape == (8, 5) and not clf.training
    assert ecgarena_classifier(torch.zeros(1, 2, 40)).shape == (1, 3)


# --- check_dataset: the synthetic dataset passes; each broken rule is named -------------------


class ArrayDataset:
    """A dataset plugin over in-memory splits (the broken variants below edit them)."""

    name: ClassVar[str] = "arrays"

    def __init__(self, splits: dict[str, ecgarena.Split], info: ecgarena.DatasetInfo) -> None:
        self.splits, self.info = splits, info

    def load(self, split: str) -> ecgarena.Split:
        return self.splits[split]

    def describe(self) -> dict[str, Any]:
        return {"records": sum(map(len, self.splits.values()))}


@pytest.fixture(scope="module")
def records() -> tuple[np.ndarray, np.ndarray]:
    """30 synthetic 12-lead records of 2 s at 100 Hz in mV, with their multilabel targets."""
    return generate(30, 0, fs=100, duration_s=2.0)


def arrays(
    records: tuple[np.ndarray, np.ndarray], edit: Callable[[np.ndarray], np.ndarray] = np.copy
) -> ArrayDataset:
    """The records split 20/5/5, `edit` applied to every split's signals."""
    x, y = records
    parts = {"train": slice(0, 20), "val": slice(20, 25), "test": slice(25, 30)}
    splits = {
        s: ecgarena.Split(edit(x[p]), y[p], [f"r{i}" for i in range(30)][p])
        for s, p in parts.items()
    }
    return ArrayDataset(
        splits, ecgarena.DatasetInfo("arrays", "multilabel", CLASSES, LEADS, 100.0, 200)
    )


def test_check_dataset_passes_the_synthetic_dataset(tmp_path: Path) -> None:
    checked = check_dataset(SyntheticDataset, {"n_records": 60}, cache_dir=tmp_path)
    assert checked.sizes == {"train": 48, "val": 6, "test": 6}
    assert all(0.01 < m < 1 for m in checked.median_abs_mv.values())
    assert all(p > 0.5 for p in checked.peak_mv.values())
    assert checked.description["records"] == 60
    instance = SyntheticDataset(n_records=30, duration_s=2.0, cache_dir=tmp_path)
    assert check_dataset(instance).info.n_samples == 200


def test_check_dataset_accepts_well_formed_arrays(records: tuple[np.ndarray, np.ndarray]) -> None:
    assert check_dataset(arrays(records)).sizes == {"train": 20, "val": 5, "test": 5}


def _overlap(ds: ArrayDataset) -> ArrayDataset:
    """Put a copy of train record 7 into test."""
    test = ds.splits["test"]
    x = np.concatenate([test.x[:4], ds.splits["train"].x[7:8]])
    ds.splits["test"] = ecgarena.Split(x, test.y, [*test.ids[:4], "copy"])
    return ds


def _replace(split: str, **fields: Any) -> Callable[[ArrayDataset], ArrayDataset]:
    """An edit replacing `fields` of one split."""

    def edit(ds: ArrayDataset) -> ArrayDataset:
        """Replace the split's fields."""
        ds.splits[split] = dataclasses.replace(ds.splits[split], **fields)
        return ds

    return edit


def _info(**fields: Any) -> Callable[[ArrayDataset], ArrayDataset]:
    """An edit replacing `fields` of the dataset's info."""

    def edit(ds: ArrayDataset) -> ArrayDataset:
        """Replace the info's fields."""
        ds.info = dataclasses.replace(ds.info, **fields)
        return ds

    return edit


def _tuple_split(ds: ArrayDataset) -> ArrayDataset:
    """`test` loads as a bare (x, y) tuple instead of a Split."""
    ds.splits["test"] = (ds.splits["test"].x, ds.splits["test"].y)  # type: ignore[assignment]
    return ds


def _describe_nothing(ds: ArrayDataset) -> ArrayDataset:
    """`describe()` returns an empty dict."""
    ds.describe = dict  # type: ignore[method-assign]
    return ds


@pytest.mark.parametrize(
    "signals, dataset, rule",
    [
        (lambda x: x * 1000, None, r"split 'train' median \|x\| is \d+\.?\d* mV, above 10 mV"),
        (lambda x: x / 1000, None, r"split 'train' median record peak \|x\| is .* below 0.05 mV"),
        (np.zeros_like, None, "median record peak .* not all zeros"),
        (lambda x: x.astype(np.float64), None, "split 'train' records are float64, not float32"),
        (lambda x: np.where(np.arange(200) == 3, np.nan, x), None, "non-finite values"),
        (lambda x: x[:, :6], None, r"records are \(20, 6, 200\), expected"),
        (
            np.copy,
            _overlap,
            r"1 identical record\(s\) in splits 'train' and 'test' .*'r7' and 'copy'",
        ),
        (np.copy, _replace("val", ids=["a"]), "split 'val' has 1 ids for 5 records"),
        (np.copy, _replace("val", y=np.zeros((5, 4))), r"multilabel labels are \(5, 4\), expected"),
        (np.copy, _replace("test", y=np.full((5, 5), 2)), "multilabel labels are not 0/1"),
        (
            np.copy,
            _info(n_samples=100),
            r"expected \(records, leads, n_samples\) = \(n, \*\(12, 100\)\)",
        ),
        (np.copy, _info(task="regression"), "info.task 'regression' is not one of"),
        (np.copy, _describe_nothing, r"describe\(\) returned \{\}, not a non-empty dict or str"),
        (np.copy, _info(leads=("I",) * 12), "info.leads .* must be distinct names"),
        (np.copy, _info(fs=0.0), "info.fs 0 Hz and info.n_samples 200 must both be > 0"),
        (np.copy, _info(classes=()), r"info.classes \(\) has fewer than 1"),
        (lambda x: x[:0] if len(x) == 5 else x, None, "split 'val' is empty"),
        (np.copy, _tuple_split, "load\\('test'\\) returned tuple"),
        (np.copy, _replace("val", y=np.zeros((4, 5))), "split 'val' has 4 labels for 5 records"),
    ],
)
def test_check_dataset_names_the_dataset_and_the_broken_rule(
    records: tuple[np.ndarray, np.ndarray],
    signals: Callable[[np.ndarray], np.ndarray],
    dataset: Callable[[ArrayDataset], ArrayDataset] | None,
    rule: str,
) -> None:
    broken = arrays(records, lambda x: signals(x.copy()))
    with pytest.raises(AssertionError, match=rf"^dataset 'arrays': .*{rule}") as caught:
        check_dataset(dataset(broken) if dataset else broken)
    assert "\n" not in str(caught.value)


def test_check_dataset_checks_multiclass_labels(records: tuple[np.ndarray, np.ndarray]) -> None:
    ds = _info(task="multiclass", classes=("a", "b", "c"))(arrays(records))
    for name, split in ds.splits.items():
        ds.splits[name] = dataclasses.replace(split, y=np.arange(len(split)) % 3)
    assert check_dataset(ds).sizes["test"] == 5
    ds.splits["val"] = dataclasses.replace(ds.splits["val"], y=np.full(5, 3))
    with pytest.raises(AssertionError, match=r"split 'val' labels outside 0\.\.2"):
        check_dataset(ds)
    ds.splits["val"] = dataclasses.replace(ds.splits["val"], y=np.zeros(5))
    with pytest.raises(
        AssertionError, match=r"multiclass labels are float64 \(5,\), expected integer"
    ):
        check_dataset(ds)


# --- pytest --ecgarena-conformance -----------------------------------------------------------


class Broken:
    """A plugin whose registration hook raises."""

    @ecgarena.hookimpl
    def ecgarena_register_attacks(self, register: Callable[[type], None]) -> None:
        raise RuntimeError("no attacks today")


class Liar:
    """A plugin registering the defense that claims determinism but adds noise."""

    @ecgarena.hookimpl
    def ecgarena_register_defenses(self, register: Callable[[type], None]) -> None:
        register(NoisyButDeterministic)


def test_conformance_generates_one_item_per_registered_name(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ecgarena.host
    import ecgarena_basic_attacks
    import ecgarena_basic_defenses
    import ecgarena_basic_models

    h = Host(eps=[])
    h.add(ecgarena_basic_models, "basic-models")
    h.add(ecgarena_basic_attacks, "basic-attacks")
    h.add(ecgarena_basic_defenses, "basic-defenses")
    h.add(Liar(), "liar")
    h.add(Broken(), "broken")
    monkeypatch.setattr(ecgarena.host, "get_host", lambda: h)

    assert pytester.runpytest("-p", "no:cacheprovider").ret == pytest.ExitCode.NO_TESTS_COLLECTED
    chosen = "plugins or cnn or attacks and pgd or median or noisy or ptbxl"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--ecgarena-conformance", "-k", chosen, "-rA"
    )
    result.assert_outcomes(passed=8, failed=2, skipped=1, deselected=15)
    out = result.stdout.str()
    for line in (
        "PASSED ecgarena::conformance[plugins:basic-attacks]",
        "PASSED ecgarena::conformance[models:cnn]",
        "PASSED ecgarena::conformance[attacks:pgd]",
        "PASSED ecgarena::conformance[defenses:median]",
        "no data here: dataset 'ptbxl' needs --data-dir",
        "FAILED ecgarena::conformance[plugins:broken]",
        "\nplugin 'broken': ecgarena_register_attacks failed: RuntimeError: no attacks today",
        "FAILED ecgarena::conformance[defenses:noisy]",
        "\ndefense 'noisy': info.deterministic is True but two calls on the same input differ",
    ):
        assert line in out, line


def test_the_pytest_plugin_imports_nothing_without_the_option(tmp_path: Path) -> None:
    script = (
        "import sys, pytest\n"
        f"code = pytest.main(['-q', '-p', 'no:cacheprovider', '--collect-only', {str(tmp_path)!r}])\n"
        "assert code == pytest.ExitCode.NO_TESTS_COLLECTED, code\n"
        "assert 'ecgarena.pytest_plugin' in sys.modules\n"
        "loaded = {'torch', 'ecgarena.host', 'ecgarena.testing'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, cwd=tmp_path)
