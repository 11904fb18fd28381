"""Randomized smoothing end to end through the CLI: certification reported with the run, the
attack goes through the noise expectation (EOT, no warning), and robustness falls as ε grows."""

from __future__ import annotations

import pytest

from .conftest import real_data
from .test_cli import ok_json

RS = [
    "--defense",
    "randomized-smoothing",
    "--defense-opt",
    "n=200",
    "--defense-opt",
    "samples=4",
    "--max-records",
    "24",
]
SMALL = ["--dataset-opt", "n_records=600", "--epochs", "3"]
SAP_FAST = ["--attack-opt", "pgd_steps=5", "--attack-opt", "steps=10"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("certified")


def test_sap_against_randomized_smoothing_reports_certificates(home):
    out = ok_json("run", "--attack", "sap", *SAP_FAST, *RS, *SMALL, "--home", home)
    cert = out["certification"]
    assert cert["n"] == 24 and cert["forward_passes_per_record"] == 300
    curve = list(cert["certified_accuracy"].values())
    assert curve == sorted(curve, reverse=True) and curve[0] <= 1
    assert 0 <= cert["abstain_rate"] <= 1 and cert["median_radius_mv"] >= 0
    # the radius cannot exceed σ·Φ⁻¹(α^(1/n)) = 0.1 mV × 2.31 for n = 200, α = 0.001
    assert cert["certified_accuracy"]["0.5"] == 0.0
    assert out["classifier"]["gradient"] == "eot" and out["classifier"]["certifies"]
    assert not any("without EOT" in w for w in out["warnings"])
    assert out["audit"]["passed"]
    # decisions are Cohen's PREDICT, abstaining counted wrong; AUROC stays on the soft scores
    assert out["thresholds"]["macro_f1"].startswith("PREDICT (Cohen et al.), n=200")
    for part in ("clean", "adversarial"):
        m = out[part]
        assert 0 <= m["abstain_rate"] <= 1 and m["accuracy"] <= 1 - m["abstain_rate"] + 1e-9
    assert "abstained" in out["targets"]
    # the attack's actual δ in the certificate's norm, beside the radii
    size = cert["attack_delta_mv"]
    assert size["norm"] == "l2" and 0 < size["median"] <= size["max"]
    assert size["max"] <= 0.05 * (12 * 1000) ** 0.5 + 1e-6  # ℓ∞ 0.05 mV bounds its ℓ2
    assert size["median"] > 0.231  # the ℓ2 radius cap (above): an ℓ∞ budget is no ℓ2 radius
    assert size["certified_accuracy_at_it"] <= cert["accuracy"]


def test_robust_accuracy_falls_as_the_budget_grows(home):
    aucs = [
        ok_json("run", "--attack", "pgd", "--eps", eps, *RS, *SMALL, "--home", home)["adversarial"][
            "macro_auc"
        ]
        for eps in ("0.01", "0.1", "1.0")
    ]
    # no gradient masking: robustness falls with ε and is far below chance at a large ε
    # (at the floor two near-zero AUCs may swap by sampling noise)
    assert aucs[0] > aucs[1] and aucs[2] <= aucs[1] + 0.05 and aucs[2] < 0.5


@pytest.mark.slow
def test_real_ptbxl_sap_against_randomized_smoothing(shared_cache):
    folder = real_data("ptbxl")
    out = ok_json(
        "run",
        "--dataset",
        "ptbxl",
        "--data-dir",
        folder,
        "--attack",
        "sap",
        *SAP_FAST,
        *RS,
        "--epochs",
        "4",
        "--home",
        shared_cache,
    )
    assert out["audit"]["passed"] and out["certification"]["n"] == 24
    assert out["adversarial"]["macro_auc"] <= out["clean"]["macro_auc"]
