"""One cell end to end (`run_cell`, `run_and_store`): weight caching, the audit flagging a
cheating attack, honesty warnings, and a real-data training run on the PTB-XL subset."""

from __future__ import annotations

import json
import sys
import types
from importlib import metadata

import ecgarena
import pytest
import torch
from ecgarena.artifacts import read_tensors
from ecgarena.cell import run_cell
from ecgarena.checks import consistency
from ecgarena.host import Host
from ecgarena.matrix import run_and_store
from ecgarena.provenance import stale_because
from ecgarena.resources import Resources
from ecgarena.result import CellResult
from ecgarena.specs import RunSpec, TrainSpec
from ecgarena.store import Store
from ecgarena.tables import export

from .conftest import real_data

SMALL = {"dataset_params": {"n_records": 300}, "train": TrainSpec(epochs=2)}


class OverstepAttack:
    """A cheating attack: 3× its budget, and it edits the input in place."""

    name = "overstep"

    def threat_model(self, budget_mv):
        return ecgarena.ThreatModel(budget_mv=budget_mv)

    def run(self, classifier, x, y, threat, ctx):
        x.add_(0.0)  # touches x but leaves it equal: must NOT be flagged
        return torch.full_like(x, 3 * threat.budget_mv)


class ZeroGradDefense:
    """Quantises the input (zero gradient almost everywhere): gradient masking to be caught."""

    name = "quantise"
    kind = "preprocessing"

    def build(self, ctx):
        class Quantise(torch.nn.Module):
            def forward(self, x):
                return torch.round(x * 2) / 2

        return ecgarena.Classifier(ctx.build_net(), preprocess=Quantise())

    def train(self, classifier, ctx):
        from ecgarena.training import fit_classifier

        return fit_classifier(classifier, ctx)


def stored(host: Host, home) -> tuple[Resources, Store]:
    """The resources and store of a home folder, as `ecgarena run` makes them."""
    return Resources(host, home), Store(home / "results.sqlite")


@pytest.fixture(scope="module")
def host() -> Host:
    h = Host()
    mod = types.ModuleType("fake_cheats")

    @ecgarena.hookimpl
    def ecgarena_register_attacks(register):
        register(OverstepAttack)

    @ecgarena.hookimpl
    def ecgarena_register_defenses(register):
        register(ZeroGradDefense)

    mod.ecgarena_register_attacks = ecgarena_register_attacks
    mod.ecgarena_register_defenses = ecgarena_register_defenses
    sys.modules["fake_cheats"] = mod
    h.add(mod, "cheats")
    return h


def test_weights_are_cached_and_reused(host, tmp_path):
    spec = RunSpec(attack="noise", **SMALL)
    first = run_cell(spec, Resources(host, tmp_path))
    assert first.training.cached is False
    weights = first.training.weights
    state = read_tensors(tmp_path / weights)[0]
    again = run_cell(spec, Resources(host, tmp_path))
    assert again.training.cached is True and again.training.weights == weights
    assert again.clean == first.clean
    assert all(torch.equal(state[k], v) for k, v in read_tensors(tmp_path / weights)[0].items())
    other = run_cell(RunSpec(attack="noise", seed=1, **SMALL), Resources(host, tmp_path))
    assert other.training.weights != weights


def test_overstepping_attack_is_flagged_everywhere(host, tmp_path):
    res, store = stored(host, tmp_path)
    result = run_and_store(res, store, RunSpec(attack="overstep", eps=0.05, **SMALL))
    assert result.status == "done" and result.audit.passed is False
    failed = {c.name for c in result.audit.checks if not c.passed}
    assert failed == {"budget"}
    assert "VIOLATION" in export(store.results(), "md")


def test_gradient_masking_warning(host, tmp_path):
    result = run_cell(
        RunSpec(defense="quantise", attack="fgsm", **SMALL), Resources(host, tmp_path)
    )
    assert any("gradient is zero" in w for w in result.warnings), result.warnings


def test_median_bpda_is_reported_and_attack_still_works(host, tmp_path):
    spec = RunSpec(defense="median", attack="pgd", eps=0.1, **SMALL)
    result = run_cell(spec, Resources(host, tmp_path))
    assert result.classifier["gradient"] == "bpda"
    assert any("BPDA" in w for w in result.warnings)
    assert result.audit.passed
    assert result.fooling.flip_rate > 0


def test_accuracy_falls_as_budget_grows(host, tmp_path):
    """Gradient-masking check: a real attack gets stronger with ε."""
    res = Resources(host, tmp_path)
    aucs = [
        run_cell(RunSpec(attack="pgd", eps=eps, **SMALL), res).adversarial.macro_auc
        for eps in (0.0, 0.05, 0.5)
    ]
    assert aucs[0] > aucs[1] > aucs[2], aucs
    assert aucs[2] < 0.6


def test_result_is_strict_json_and_has_versions(host, tmp_path):
    result = run_cell(RunSpec(attack="noise", **SMALL), Resources(host, tmp_path))
    text = json.dumps(result.row(), allow_nan=False)
    assert CellResult.model_validate(json.loads(text)) == result
    installed = metadata.version("ecgarena-basic-attacks")
    assert result.versions["basic-attacks"] == installed and "ecgarena" in result.versions
    assert "seed" in text and result.timings.total_s > 0


@pytest.mark.slow
def test_real_ptbxl_cnn_learns_above_chance(host, shared_cache):
    """Train the small CNN on folds 1–8 of the real 500-record subset, test on fold 10."""
    spec = RunSpec(
        dataset="ptbxl",
        data_dir=real_data("ptbxl"),
        attack="pgd",
        eps=0.05,
        train=TrainSpec(epochs=15, patience=5),
    )
    result = run_cell(spec, Resources(host, shared_cache))
    assert result.clean.n == 64
    assert result.clean.macro_auc > 0.7, result.clean
    assert result.adversarial.macro_auc < result.clean.macro_auc
    assert result.audit.passed


def test_weaker_attack_or_smaller_budget_doing_more_damage_is_flagged(host, tmp_path):
    res, store = stored(host, tmp_path)
    crippled = {"steps": 1, "step_size": 0.01, "random_start": False}
    pgd = run_and_store(
        res, store, RunSpec(attack="pgd", eps=0.02, attack_params=crippled, **SMALL)
    )
    fgsm = run_and_store(res, store, RunSpec(attack="fgsm", eps=0.02, **SMALL))
    assert any("'fgsm' does more damage than the stronger 'pgd'" in w for w in fgsm.warnings)
    assert not any("does more damage" in w for w in pgd.warnings)  # nothing stored before
    # the same attack at a larger budget must not do less damage
    larger = run_and_store(res, store, RunSpec(attack="fgsm", eps=0.001, **SMALL))
    assert not any("not monotone" in w for w in larger.warnings)
    adv = fgsm.adversarial.model_copy(update={"macro_auc": 0.999, "accuracy": 0.999})
    made_up = {"key": "made-up", "spec": {**fgsm.spec, "eps": 0.5}, "adversarial": adv}
    store.add(fgsm.model_copy(update=made_up))
    assert any("not monotone in ε" in w for w in consistency(host, store, fgsm))


def test_consistency_guard_reads_the_compared_metric(host, tmp_path):
    """CPR's case: exact-match accuracy is 0 at both budgets but macro AUC rises from 0.162
    (50 µV) to 0.392 (1 mV): a failing attack, flagged, not excused as saturation."""
    res, store = stored(host, tmp_path)
    done = run_and_store(res, store, RunSpec(attack="fgsm", eps=0.05, **SMALL))

    def at(result: CellResult, auc: float, **update: object) -> CellResult:
        adv = result.adversarial.model_copy(update={"macro_auc": auc, "accuracy": 0.0})
        return result.model_copy(update={"adversarial": adv, **update})

    small = at(done, 0.162)
    store.add(small.model_copy(update={"key": "stored-small"}))
    large = at(small, 0.392, key="large", spec={**small.spec, "eps": 1.0})
    warned = consistency(host, store, large)
    assert any("not monotone in ε" in w and "macro_auc 0.162 vs 0.392" in w for w in warned)
    violating = {"key": "v", "audit": {"passed": False, "checks": []}}
    store.add(CellResult.model_validate({**large.row(), **violating}))  # never compared
    again = small.model_copy(update={"key": "again"})
    assert not any("1.0 mV" in w for w in consistency(host, store, again))


def test_a_stored_cell_stands_only_while_its_data_and_versions_match():
    stored = {"data_key": "d1", "versions": {"ecgarena": "0.1.0", "ecgarena-cpr": "0.1.0"}}
    assert stale_because(stored, "d1", {"ecgarena": "0.1.0", "ecgarena-cpr": "0.1.0"}) is None
    assert stale_because(stored, "d2", stored["versions"]) == "the data changed"
    moved = stale_because(stored, "d1", {"ecgarena": "0.1.0", "ecgarena-cpr": "0.2.0"})
    assert moved == "versions changed (ecgarena-cpr 0.1.0 → 0.2.0)"
    assert stale_because({"data_key": None}, "d1", {"ecgarena": "0.1.0"}) is None
