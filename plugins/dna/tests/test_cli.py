"""`ecgarena run --defense dna` end to end on the embedded synthetic dataset (shrunk)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ecgarena.cli import app
from ecgarena.ensemble import member0_protocol, wilson
from typer.testing import CliRunner

SMALL = [
    "--dataset-opt", "n_records=60",
    "--model-opt", "width=8",
    "--epochs", "1",
    "--max-records", "8",
    "--attack-opt", "steps=2",
]  # fmt: skip


def test_run_pgd_against_fdec(tmp_path):
    args = ["run", "--attack", "pgd", "--defense", "dna", "--defense-opt", "variant=fdec"]
    args += ["--defense-opt", "members=2", *SMALL, "--home", str(tmp_path), "--json"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "done" and out["audit"]["passed"]
    assert out["spec"]["defense"] == "dna"
    assert out["training"]["variant"] == "fdec" and len(out["training"]["members"]) == 2
    assert out["classifier"]["forward_passes"] == 2
    assert "macro_auc" in out["adversarial"]
    ens = out["ensemble"]  # the engine's ensemble block, from the `members` ModuleList
    assert ens["members"] == 2 and len(ens["member_accuracy"]["adversarial"]) == 2
    clean_k = ens["at_least_k_correct"]["clean"]
    assert clean_k["1"] >= clean_k["2"]
    transfer = ens["member_transfer"]
    assert transfer["records"] == out["clean"]["n"] and len(transfer["accuracy"]) == 2
    assert all(len(row) == 3 for row in transfer["accuracy"])  # 2 members + the ensemble
    assert transfer["audit"]["passed"]
    m0 = ens["member0_protocol"]  # crafted on member 0, only records member 0 gets right
    assert m0["of"] == transfer["records"]
    assert m0["records"] == round(ens["member_accuracy"]["clean"][0] * m0["of"])
    if m0["records"]:
        assert m0["at_least_k_correct"]["clean"]["1"] == 1.0  # member 0 itself is right
        assert m0["average"] == pytest.approx(sum(m0["member_accuracy"]) / 2)


def test_member0_protocol_counts_only_records_member0_gets_right_when_clean():
    clean = np.array([[1, 1, 0, 1], [0, 1, 1, 1], [1, 0, 1, 1]], bool)
    attacked = np.array([[0, 0, 1, 1], [1, 0, 0, 1], [0, 0, 1, 0]], bool)
    out = member0_protocol(clean, attacked, np.array([0, 0, 1, 1], bool))
    assert out["records"] == 3 and out["of"] == 4  # record 2 is wrong for member 0 clean
    assert out["member_accuracy"] == pytest.approx([1 / 3, 2 / 3, 0])
    assert out["average"] == pytest.approx(1 / 3) and out["ensemble_accuracy"] == 1 / 3
    # attacked, kept records 0, 1, 3: 1, 0 and 2 members right
    assert out["at_least_k_correct"]["adversarial"] == pytest.approx({1: 2 / 3, 2: 1 / 3, 3: 0})
    assert out["at_least_k_correct"]["clean"][1] == 1.0
    for k, value in out["at_least_k_correct"]["adversarial"].items():
        low, high = out["at_least_k_interval"]["adversarial"][k]
        assert low <= value <= high and 0 <= low < high <= 1  # 3 records: wide, never a point


def test_wilson_interval_matches_the_published_formula_and_has_none_for_no_records():
    assert wilson(7, 15) == pytest.approx([0.2481, 0.6988], abs=1e-4)  # Wilson 1927, z = 1.96
    assert wilson(0, 24)[0] == 0.0 and wilson(24, 24)[1] == 1.0
    assert wilson(0, 0) is None
