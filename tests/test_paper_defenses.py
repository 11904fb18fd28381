"""The paper defenses end to end through the CLI on the embedded data: CPR against SCAR and
SAP, with its one-pass inference stated in the result."""

from __future__ import annotations

from .test_cli import ok_json

SMALL = ["--dataset-opt", "n_records=600", "--epochs", "2", "--max-records", "64"]
CPR = ["--defense", "cpr", "--defense-opt", "width=8", "--defense-opt", "latent=32"]


def test_scar_against_cpr(tmp_path):
    out = ok_json(
        "run", "--attack", "scar", "--attack-opt", "epochs=2", *CPR, *SMALL, "--home", tmp_path
    )
    assert out["audit"]["passed"] and out["classifier"]["forward_passes"] == 1
    assert 0 < out["training"]["mask_coverage"] <= 1
    assert out["clean"]["macro_auc"] > 0.6  # it learned something in two epochs
