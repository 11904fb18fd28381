"""`ecgarena run --defense dna` end to end on the embedded synthetic dataset (shrunk)."""

from __future__ import annotations

import json

from ecgarena.cli import app
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
