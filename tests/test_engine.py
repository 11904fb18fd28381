"""The engine end to end: weight caching, the audit flagging a cheating attack, honesty
warnings, and a real-data training run on the PTB-XL subset."""

from __future__ import annotations

import json
import sys
import types
from importlib import metadata

import ecgarena
import pytest
import torch
from ecgarena.checks import consistency
from ecgarena.engine import Session, stale_because
from ecgarena.host import Host
from ecgarena.specs import RunSpec, TrainSpec
from safetensors.torch import load_file

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
    first = Session(host, tmp_path).run(spec)
    assert first["training"]["cached"] is False
    weights = first["training"]["weights"]
    state = load_file(weights)
    again = Session(host, tmp_path).run(spec)
    assert again["training"]["cached"] is True and again["training"]["weights"] == weights
    assert again["clean"] == first["clean"]
    assert all(torch.equal(state[k], v) for k, v in load_file(weights).items())
    other = Session(host, tmp_path).run(RunSpec(attack="noise", seed=1, **SMALL))
    assert other["training"]["weights"] != weights


def test_overstepping_attack_is_flagged_everywhere(host, tmp_path):
    session = Session(host, tmp_path)
    result = session.run_and_store(RunSpec(attack="overstep", eps=0.05, **SMALL))
    assert result["status"] == "done" and result["audit"]["passed"] is False
    failed = {c["name"] for c in result["audit"]["checks"] if not c["passed"]}
    assert failed == {"budget"}
    from ecgarena.store import export

    assert "VIOLATION" in export(session.store.results(), "md")


def test_gradient_masking_warning(host, tmp_path):
    result = Session(host, tmp_path).run(RunSpec(defense="quantise", attack="fgsm", **SMALL))
    assert any("gradient is zero" in w for w in result["warnings"]), result["warnings"]


def test_median_bpda_is_reported_and_attack_still_works(host, tmp_path):
    result = Session(host, tmp_path).run(RunSpec(defense="median", attack="pgd", eps=0.1, **SMALL))
    assert result["classifier"]["gradient"] == "bpda"
    assert any("BPDA" in w for w in result["warnings"])
    assert result["audit"]["passed"]
    assert result["fooling"]["flip_rate"] > 0


def test_accuracy_falls_as_budget_grows(host, tmp_path):
    """Gradient-masking check: a real attack gets stronger with ε."""
    session = Session(host, tmp_path)
    aucs = [
        session.run(RunSpec(attack="pgd", eps=eps, **SMALL))["adversarial"]["macro_auc"]
        for eps in (0.0, 0.05, 0.5)
    ]
    assert aucs[0] > aucs[1] > aucs[2], aucs
    assert aucs[2] < 0.6


def test_result_is_json_ready_and_has_versions(host, tmp_path):
    result = Session(host, tmp_path).run(RunSpec(attack="noise", **SMALL))
    text = json.dumps(result)
    installed = metadata.version("ecgarena-basic-attacks")
    assert result["versions"]["basic-attacks"] == installed and "ecgarena" in result["versions"]
    assert "seed" in text and result["timings"]["total_s"] > 0


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
    result = Session(host, shared_cache).run(spec)
    assert result["clean"]["n"] == 64
    assert result["clean"]["macro_auc"] > 0.7, result["clean"]
    assert result["adversarial"]["macro_auc"] < result["clean"]["macro_auc"]
    assert result["audit"]["passed"]


def test_weaker_attack_or_smaller_budget_doing_more_damage_is_flagged(host, tmp_path):
    session = Session(host, tmp_path)
    crippled = {"steps": 1, "step_size": 0.01, "random_start": False}
    pgd = session.run_and_store(RunSpec(attack="pgd", eps=0.02, attack_params=crippled, **SMALL))
    fgsm = session.run_and_store(RunSpec(attack="fgsm", eps=0.02, **SMALL))
    assert any("'fgsm' does more damage than the stronger 'pgd'" in w for w in fgsm["warnings"])
    assert not any("does more damage" in w for w in pgd["warnings"])  # nothing stored before
    # the same attack at a larger budget must not do less damage
    larger = session.run_and_store(RunSpec(attack="fgsm", eps=0.001, **SMALL))
    assert not any("not monotone" in w for w in larger["warnings"])
    stored = {**fgsm, "key": "made-up", "spec": {**fgsm["spec"], "eps": 0.5}}
    stored["adversarial"] = {**fgsm["adversarial"], "macro_auc": 0.999, "accuracy": 0.999}
    session.store.add(stored)
    assert any("not monotone in ε" in w for w in consistency(host, session.store, fgsm))


def test_consistency_guard_reads_the_compared_metric(host, tmp_path):
    """CPR's case: exact-match accuracy is 0 at both budgets but macro AUC rises from 0.162
    (50 µV) to 0.392 (1 mV): a failing attack, flagged, not excused as saturation."""
    session = Session(host, tmp_path)
    small = session.run_and_store(RunSpec(attack="fgsm", eps=0.05, **SMALL))
    small["adversarial"] = {**small["adversarial"], "macro_auc": 0.162, "accuracy": 0.0}
    session.store.add({**small, "key": "stored-small"})
    large = {**small, "key": "large", "spec": {**small["spec"], "eps": 1.0}}
    large["adversarial"] = {**small["adversarial"], "macro_auc": 0.392, "accuracy": 0.0}
    warned = consistency(host, session.store, large)
    assert any("not monotone in ε" in w and "macro_auc 0.162 vs 0.392" in w for w in warned)
    violating = {**large, "key": "v", "audit": {"passed": False, "checks": []}}
    session.store.add(violating)  # a cell that broke its threat model is never compared
    again = {**small, "key": "again"}
    assert not any("1.0 mV" in w for w in consistency(host, session.store, again))


def test_a_stored_cell_stands_only_while_its_data_and_versions_match():
    stored = {"data_key": "d1", "versions": {"ecgarena": "0.1.0", "ecgarena-cpr": "0.1.0"}}
    assert stale_because(stored, "d1", {"ecgarena": "0.1.0", "ecgarena-cpr": "0.1.0"}) is None
    assert stale_because(stored, "d2", stored["versions"]) == "the data changed"
    moved = stale_because(stored, "d1", {"ecgarena": "0.1.0", "ecgarena-cpr": "0.2.0"})
    assert moved == "versions changed (ecgarena-cpr 0.1.0 → 0.2.0)"
    assert stale_because({"data_key": None}, "d1", {"ecgarena": "0.1.0"}) is None
