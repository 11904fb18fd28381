"""SAP, SCAR and universal DeepFool end to end through the CLI: audits, stored universal
perturbations, transfer to other models, plots, and fooling rates above random noise of the
same per-lead budget on the embedded data and on the real PTB-XL subset (500 Hz)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from .conftest import real_data
from .test_cli import invoke, ok_json

SMALL = ["--dataset-opt", "n_records=600", "--epochs", "3"]
FAST = {
    "scar": ["--attack-opt", "epochs=4"],
    "universal-deepfool": ["--attack-opt", "max_passes=2", "--attack-opt", "batch=8"],
    "sap": ["--attack-opt", "pgd_steps=5", "--attack-opt", "steps=10"],
}
SEED_BUDGET = ",".join(["0.1"] * 7 + ["0.2"] * 5)  # limb leads and V1 / V2–V6, in mV


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("paper-attacks")


def run(home: Path, attack: str, *extra: str) -> dict:
    return ok_json("run", "--attack", attack, *SMALL, *FAST.get(attack, []), *extra, "--home", home)


def noise_at_seed_budget(home: Path, *extra: str) -> dict:
    """Random ℓ∞ noise with the same per-lead budgets as SCAR's seed profile."""
    return ok_json("run", "--attack", "noise", "--eps", f"[{SEED_BUDGET}]", *extra, "--home", home)


def test_scar_is_universal_band_limited_audited_and_beats_noise(home):
    out = run(home, "scar", "--attack-opt", 'projection="clip-filter"')  # keeps its band
    assert out["spec"]["eps"] == pytest.approx(0.2)  # SCAR's default budget (V2–V6)
    assert out["threat"]["budget_mv"] == pytest.approx([0.1] * 7 + [0.2] * 5)
    checks = {c["name"]: c["passed"] for c in out["audit"]["checks"]}
    assert checks["band limit"] and checks["universal"] and out["audit"]["passed"]
    assert out["perturbation"]["energy_above_cutoff"] < 0.05  # above 15 Hz
    assert out["attack_report"]["epochs_run"] >= 1
    stored = out["universal_perturbation"]
    with safe_open(stored["file"], "pt") as f:
        v = f.get_tensor("delta")
        assert json.loads(f.metadata()["spec"])["attack"] == "scar"
    assert tuple(v.shape) == (1, 12, 1000)
    noise = noise_at_seed_budget(home, *SMALL)
    assert noise["audit"]["passed"]
    assert out["fooling"]["flip_rate"] >= noise["fooling"]["flip_rate"] + 0.05


def test_universal_deepfool_with_post_filter_beats_noise(home):
    out = run(home, "universal-deepfool")
    assert out["threat"]["universal"] and out["threat"]["band_hz"] == 15
    assert out["audit"]["passed"], out["audit"]
    assert out["attack_report"]["post_filter"] is True
    assert out["attack_report"]["raw_flip_rate"] > 0
    noise = noise_at_seed_budget(home, *SMALL)
    assert out["fooling"]["flip_rate"] > noise["fooling"]["flip_rate"]


def test_sap_budget_in_paper_units_and_audit(home):
    micro = run(home, "sap", "--eps", "10uV")
    milli = run(home, "sap", "--eps", "0.01mV")
    assert micro["key"] == milli["key"] and milli["status"] == "skipped"
    assert micro["perturbation"]["linf_mv"] <= 0.01 + 1e-6 and micro["audit"]["passed"]
    strong = run(home, "sap", "--eps", "0.1")
    assert strong["adversarial"]["macro_auc"] < strong["clean"]["macro_auc"]


def test_transfer_reuses_the_stored_source_perturbation(home):
    source = run(home, "scar")
    out = run(home, "scar", "--source-model", "cnn", "--model", "conv-vit")
    assert out["threat"]["access"] == "transfer"
    assert out["source"]["model"] == "cnn" and out["spec"]["model"] == "conv-vit"
    assert out["universal_perturbation"]["reused"] is True
    assert out["universal_perturbation"]["file"] == source["universal_perturbation"]["file"]
    assert out["perturbation"]["linf_mv"] == pytest.approx(source["perturbation"]["linf_mv"])
    assert out["audit"]["passed"]


def test_transfer_source_options_reach_the_source_model(home):
    out = run(home, "scar", "--source-model", "resnet1d18", "--source-model-opt", "width=8")
    assert out["source"]["model_params"] == {"width": 8}
    assert out["spec"]["source_model_params"] == {"width": 8}
    wider = run(home, "scar", "--source-model", "resnet1d18", "--source-model-opt", "width=12")
    assert (
        wider["universal_perturbation"]["source_weights"]
        != (out["universal_perturbation"]["source_weights"])
    )  # the option changed the source classifier the attack was crafted on
    result = invoke("run", "--source-defense-opt", "eps_mv=0.1", "--home", home)
    assert result.exit_code == 2 and "without source_defense" in result.output


def test_matrix_with_a_source_model_and_target_models(home):
    result = invoke(
        "matrix",
        "--attacks",
        "scar",
        "--source-model",
        "cnn",
        "--models",
        "cnn,resnet1d18",
        "--param",
        "resnet1d18.width=8",
        "--param",
        "scar.epochs=4",
        "--param",
        "synthetic.n_records=600",
        "--epochs",
        "3",
        "--home",
        home,
        "--json",
    )
    assert result.exit_code == 0, result.output
    cells = json.loads(result.stdout)["cells"]
    assert [c["spec"]["model"] for c in cells] == ["cnn", "resnet1d18"]
    assert all(c["spec"]["source_model"] == "cnn" and c["status"] != "failed" for c in cells)


def test_scar_adversarial_training_defenses_run(home):
    for defense in ("scar-at", "hybrid-at"):
        out = run(home, "scar", "--defense", defense, "--defense-opt", "refresh_every=2")
        assert out["audit"]["passed"] and out["training"]["epochs_run"] >= 1


def test_plots_are_written(home, tmp_path):
    run(home, "scar")
    run(home, "scar", "--eps", "0.05")
    for kind in ("overlay", "psd", "targets", "sweep"):
        png = tmp_path / f"{kind}.png"
        result = invoke("plot", kind, "--attack", "scar", "--out", png, "--home", home)
        assert result.exit_code == 0, result.output
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["plot", "bogus"], "unknown plot 'bogus'"),
        (["plot", "psd", "--attack", "nothing-like-this"], "no stored result matches"),
        (["plot", "overlay", "--attack", "scar", "--record", "9"], "record 9 is not stored"),
        (["plot", "sweep", "--attack", "sap", "--dataset", "ptbxl"], "no stored result"),
    ],
)
def test_plot_user_errors(home, args, message):
    run(home, "scar")
    result = invoke(*args, "--home", home)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_scar_option_errors_are_one_line(home):
    result = invoke(
        "run", "--attack", "scar", "--attack-opt", "cutoff_hz=80", *SMALL, "--home", home
    )
    assert result.exit_code == 2 and "Nyquist" in result.output
    result = invoke("run", "--attack", "scar", "--attack-opt", 'projection="box"', "--home", home)
    assert result.exit_code == 2 and "projection" in result.output


PTBXL = ["--dataset", "ptbxl", "--dataset-opt", "rate=500", "--epochs", "6"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "attack, options, margin",
    [
        ("scar", [], 0.1),
        # the raw UAP; its post-filtered form is barely above noise here (see the issue note)
        ("universal-deepfool", ["--attack-opt", "post_filter=false"], 0.3),
    ],
)
def test_real_ptbxl_500hz_universal_attacks_beat_noise(attack, options, margin, shared_cache):
    folder = real_data("ptbxl")
    extra = [*PTBXL, "--data-dir", folder]
    out = ok_json("run", "--attack", attack, *options, *extra, "--home", shared_cache)
    noise = noise_at_seed_budget(shared_cache, *extra)
    assert out["audit"]["passed"], out["audit"]
    assert out["spec"]["dataset"] == "ptbxl" and out["perturbation"]["linf_mv"] <= 0.2 + 1e-5
    assert out["threat"]["budget_mv"] == pytest.approx([0.1] * 7 + [0.2] * 5)
    assert out["fooling"]["flip_rate"] >= noise["fooling"]["flip_rate"] + margin


def test_sap_adversarial_training_is_more_robust_under_sap(home):
    erm = run(home, "sap", "--eps", "0.05")
    sap_at = run(home, "sap", "--eps", "0.05", "--defense", "sap-at", "--defense-opt", "steps=5")
    assert sap_at["audit"]["passed"] and sap_at["training"]["epochs_run"] >= 1
    drop = lambda r: r["clean"]["macro_auc"] - r["adversarial"]["macro_auc"]  # noqa: E731
    assert drop(sap_at) < drop(erm)
