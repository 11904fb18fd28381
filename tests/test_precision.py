"""`--precision bf16|fp16`: forward passes under autocast, δ and audits in fp32; on CPU bf16 is
checked for correctness against fp32 (same weights: training stays fp32), and fp32 cells keep
the keys they had before the option existed."""

from __future__ import annotations

import json

import pytest
import torch
from ecgarena.cell import run_cell
from ecgarena.cli import app
from ecgarena.host import get_host
from ecgarena.resources import Resources, set_precision
from ecgarena.specs import RunSpec, TrainSpec
from ecgarena.testing import tiny_classifier
from typer.testing import CliRunner

SMALL = {"dataset_params": {"n_records": 300}, "train": TrainSpec(epochs=1), "eps": 0.05}


def test_fp32_is_no_autocast_and_keeps_the_old_keys():
    spec = RunSpec(attack="pgd", **SMALL)
    assert "precision" not in json.dumps(spec.model_dump(mode="json")) or spec.precision == "fp32"
    assert spec.key() == spec.model_copy(update={"precision": "fp32"}).key()
    assert spec.key() != spec.model_copy(update={"precision": "bf16"}).key()
    clf = tiny_classifier()
    x = torch.randn(2, 2, 32, requires_grad=True)
    set_precision(clf, "bf16")
    assert clf(x).dtype == torch.float32  # logits fp32
    clf(x).sum().backward()
    assert x.grad.dtype == torch.float32
    set_precision(clf, "fp32")
    assert clf.half is None


def test_bf16_reaches_classifiers_with_their_own_forward_and_ensemble_members():
    """Autocast wraps the call, not `Classifier.forward`: an ensemble whose forward averages
    its members' runs them in bf16 (the members' linear layers see bf16 inputs)."""
    from ecgarena import Classifier

    class Mean(Classifier):
        def forward(self, x):
            return torch.stack([m(x) for m in self.net]).mean(0)

    members = [tiny_classifier() for _ in range(2)]
    clf = Mean(torch.nn.ModuleList(members))
    seen = []
    members[0].net.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
    x = torch.randn(2, 2, 32)
    fp32 = clf(x)
    set_precision(clf, "bf16")
    bf16 = clf(x)
    assert seen == [torch.float32, torch.bfloat16] and bf16.dtype == torch.float32
    assert torch.allclose(bf16, fp32, atol=0.05) and not torch.equal(bf16, fp32)


@pytest.mark.parametrize("attack", ["pgd", "universal-deepfool"])
def test_bf16_cells_agree_with_fp32_on_cpu(tmp_path, attack):
    res = Resources(get_host(), tmp_path)
    options = {"max_passes": 1, "batch": 8, "max_records": 32} if attack != "pgd" else {}
    base = RunSpec(attack=attack, attack_params=options, max_attack_records=32, **SMALL)
    fp32 = run_cell(base, res)
    bf16 = run_cell(base.model_copy(update={"precision": "bf16"}), res)
    failing = [(c.name, c.detail) for c in bf16.audit.checks if not c.passed]
    assert bf16.status == "done" and not failing, failing  # δ in fp32, within its budget
    assert bf16.training.weights == fp32.training.weights  # one classifier, trained in fp32
    assert bf16.clean.accuracy == pytest.approx(fp32.clean.accuracy, abs=0.07)  # ≤ 2 of 32
    assert bf16.fooling.flip_rate == pytest.approx(fp32.fooling.flip_rate, abs=0.16)  # ≤ 5/32
    assert bf16.perturbation.linf_mv <= 0.05 + 1e-5
    again = run_cell(base, res)  # the shared classifier is back in fp32 for an fp32 cell
    assert (again.clean, again.perturbation) == (fp32.clean, fp32.perturbation)


def test_precision_from_the_cli_and_a_bad_value(tmp_path):
    args = ["run", "--attack", "fgsm", "--dataset-opt", "n_records=300", "--epochs", "1"]
    args += ["--max-records", "8", "--home", str(tmp_path)]
    out = CliRunner().invoke(app, [*args, "--precision", "bf16", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["spec"]["precision"] == "bf16"
    bad = CliRunner().invoke(app, [*args, "--precision", "fp8"])
    assert bad.exit_code == 2 and "fp8" in bad.output and "bf16" in bad.output


def test_attack_batch_sets_the_records_per_attack_call(tmp_path):
    """`--attack-batch`: the engine's call size (default 128, keys of default cells kept)."""
    spec = RunSpec(attack="fgsm", max_attack_records=20, **SMALL)
    assert spec.key() == spec.model_copy(update={"attack_batch": 128}).key()
    calls = []
    cls = get_host().get("attacks", "fgsm").cls
    original = cls.run

    def counted(self, clf, x, *args):
        calls.append(len(x))
        return original(self, clf, x, *args)

    cls.run = counted
    try:
        res = Resources(get_host(), tmp_path)
        small = run_cell(spec.model_copy(update={"attack_batch": 8}), res)
        whole = run_cell(spec, res)
    finally:
        cls.run = original
    assert calls == [8, 8, 4, 20]
    assert small.fooling == whole.fooling  # fgsm is per record: the batch size changes nothing
    bad = CliRunner().invoke(app, ["run", "--attack-batch", "0"])
    assert bad.exit_code == 2 and "--attack-batch" in bad.output
