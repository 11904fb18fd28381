"""End-to-end CLI tests through Typer's CliRunner on a small embedded dataset."""

from __future__ import annotations

import json

import pytest
from ecgarena.cli import app
from ecgarena.result import CellResult
from typer.testing import CliRunner

from .conftest import real_data

runner = CliRunner()
SMALL = ["--dataset-opt", "n_records=300", "--epochs", "2"]


def invoke(*args: str):
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


def ok_json(*args: str) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory):
    return tmp_path_factory.mktemp("cli-home")


def test_run_pgd_json_then_resume_then_force(cli_home):
    out = ok_json(
        "run", "--attack", "pgd", "--defense", "none", "--eps", "50uV", *SMALL, "--home", cli_home
    )
    assert {"spec", "clean", "adversarial", "audit", "timings"} <= set(out)
    assert CellResult.model_validate(out).row() == out  # the typed result, strict JSON
    assert out["status"] == "done" and out["audit"]["passed"]
    assert out["spec"]["eps"] == pytest.approx(0.05)
    assert out["adversarial"]["macro_auc"] <= out["clean"]["macro_auc"]
    assert out["perturbation"]["linf_mv"] <= 0.05 + 1e-6
    again = ok_json(
        "run", "--attack", "pgd", "--defense", "none", "--eps", "0.05mV", *SMALL, "--home", cli_home
    )
    assert again["status"] == "skipped" and again["clean"] == out["clean"]
    forced = ok_json(
        "run", "--attack", "pgd", "--eps", "0.05", *SMALL, "--force", "--home", cli_home
    )
    assert forced["status"] == "done" and forced["training"]["cached"] is True
    assert forced["adversarial"] == out["adversarial"]  # seeded: same numbers
    rows = json.loads(invoke("results", "--format", "json", "--all", "--home", cli_home).stdout)
    assert len(rows) == 2


def test_run_table_output(cli_home):
    result = invoke("run", "--attack", "fgsm", *SMALL, "--home", cli_home)
    assert result.exit_code == 0, result.output
    for word in ("clean", "adversarial", "macro_auc", "fooling rate", "audit: pass", "timings"):
        assert word in result.output


def test_matrix_from_flags(cli_home):
    out = ok_json(
        "matrix",
        "--attacks",
        "noise,fgsm,pgd",
        "--defenses",
        "none,median",
        "--eps",
        "0.02,0.05",
        "--param",
        "synthetic.n_records=300",
        "--param",
        "pgd.steps=3",
        "--epochs",
        "2",
        "--home",
        cli_home,
    )
    assert len(out["cells"]) == 12
    assert {c["spec"]["attack"] for c in out["cells"]} == {"noise", "fgsm", "pgd"}
    assert all(
        c["spec"]["attack_params"] == ({"steps": 3} if c["spec"]["attack"] == "pgd" else {})
        for c in out["cells"]
    )


def test_matrix_with_config_and_resume(cli_home, tmp_path):
    cfg = tmp_path / "m.toml"
    cfg.write_text(
        'attacks = ["noise", "fgsm", "pgd"]\ndefenses = ["none", "median", "pgd-at"]\neps = ["20uV", "0.05mV"]\n'
        "[train]\nepochs = 2\n[params.synthetic]\nn_records = 300\n[params.pgd-at]\nsteps = 2\n"
    )
    first = ok_json("matrix", "--config", cfg, "--home", cli_home)
    cells = first["cells"]
    assert len(cells) == 18 and all(c["status"] in ("done", "skipped") for c in cells)
    assert all(c["audit"]["passed"] for c in cells)
    by = {(c["spec"]["defense"], c["spec"]["attack"], c["spec"]["eps"]): c for c in cells}
    noise, pgd = by[("none", "noise", 0.05)], by[("none", "pgd", 0.05)]
    assert pgd["fooling"]["flip_rate"] >= noise["fooling"]["flip_rate"]
    second = ok_json("matrix", "--config", cfg, "--home", cli_home)
    assert {c["status"] for c in second["cells"]} == {"skipped"}
    table = invoke("results", "--home", cli_home)
    assert "pgd-at" in table.output and "median" in table.output


def test_matrix_failing_cell_is_recorded_and_others_go_on(cli_home, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(  # conv-vit fails when built: 4 s records are too short for its patch
        'attacks = ["noise"]\nmodels = ["cnn", "conv-vit"]\n[train]\nepochs = 2\n'
        "[params.synthetic]\nn_records = 300\nduration_s = 4.0\n[params.conv-vit]\npatch = 256\n"
    )
    result = invoke("matrix", "--config", cfg, "--home", cli_home, "--json")
    assert result.exit_code == 1
    cells = json.loads(result.stdout)["cells"]
    assert [c["status"] for c in cells] in (["done", "failed"], ["skipped", "failed"])
    assert "too short for patch 256" in cells[1]["error"] and "traceback" not in cells[1]


def test_matrix_checks_every_option_and_budget_before_anything_runs(cli_home, tmp_path):
    for args, message in (
        (["--param", "pgd.nosuch=3"], "nosuch: unknown option"),
        (["--eps", "0.05,[0.1, 0.2]"], "per-lead budget has 2 values but the data has 12"),
    ):
        home = tmp_path / message[:6]
        result = invoke("matrix", *args, "--epochs", "1", "--home", home)
        assert result.exit_code == 2 and message in result.output, result.output
        assert not (home / "weights").exists()  # nothing trained, nothing stored
        assert invoke("results", "--home", home, "--format", "json").stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--attack", "pgdd"], "did you mean pgd"),
        (["run", "--eps", "-1"], "eps"),
        (["run", "--eps", "5kg"], "not a voltage"),
        (["run", "--device", "tpu"], "device"),
        (["run", "--dataset", "ptbxl", "--data-dir", "/nonexistent/ptbxl"], "does not exist"),
        (["run", "--attack-opt", "steps"], "KEY=VALUE"),
        (["run", "--attack-opt", "stepz=3"], "stepz: unknown option"),
        (["matrix", "--defenses", "none,medain"], "did you mean median"),
        (["list", "gizmos"], "unknown kind"),
        (["run", "--seed", "abc"], "Invalid value for '--seed'"),
        (["run", "--sed", "1"], "No such option: --sed"),
        (["run", "--eps", "[0.1, 0.2]"], "per-lead budget has 2 values but the data has 12"),
        (["run", "--eps", "[0.1, 0.2"], "is not a per-lead list"),
        (["run", "--eps", '[0.1, "5kg"]'], "not a voltage"),
        (["results", "--format", "xml"], "unknown format"),
        (["data", "info", "nosuch"], "unknown dataset"),
        (["data", "download", "ptbxx", "--dest", "/tmp/x"], "ptbxl"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, message, cli_home):
    result = invoke(
        *args, *(["--home", cli_home] if args[0] in ("run", "matrix", "results") else [])
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_cuda_without_gpu_is_a_user_error(cli_home):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: --device cuda is valid here")
    result = invoke("run", "--device", "cuda", "--home", cli_home)
    assert result.exit_code == 2 and "no CUDA GPU" in result.output


def test_bad_toml_config(tmp_path, cli_home):
    cfg = tmp_path / "run.toml"
    cfg.write_text("attack = [")
    result = invoke("run", "--config", cfg, "--home", cli_home)
    assert result.exit_code == 2 and "not valid TOML" in result.output


def test_run_from_toml_config(tmp_path, cli_home):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'attack = "noise"\neps = "30uV"\nseed = 1\n[dataset_params]\nn_records = 300\n[train]\nepochs = 2\n'
    )
    out = ok_json("run", "--config", cfg, "--home", cli_home)
    assert out["spec"]["attack"] == "noise" and out["spec"]["seed"] == 1
    assert out["perturbation"]["linf_mv"] <= 0.03 + 1e-6


def test_plugins_and_list():
    rows = ok_json("plugins")
    by = {r["name"]: r for r in rows}
    assert by["basic-attacks"]["registers"] == {
        "attacks": ["noise", "fgsm", "pgd", "mi-fgsm", "cw-l2"]
    }
    assert by["basic-attacks"]["registry"] == "known" and by["ecgarena"]["registry"] == "core"
    assert by["sap"]["registry"] == "known"
    assert by["cpr"]["registry"] == "known"
    table = invoke("plugins")
    assert table.exit_code == 0 and "basic-defenses" in table.output
    attacks = ok_json("list", "attacks")
    pgd = next(a for a in attacks if a["name"] == "pgd")
    assert pgd["plugin"] == "basic-attacks" and pgd["options"]["steps"] == "10"
    assert "synthetic" in invoke("list", "datasets").output


def test_data_info_synthetic_and_real(tmp_path):
    syn = ok_json("data", "info", "synthetic", "--opt", "n_records=100", "--home", tmp_path)
    assert syn["records"] == 100 and syn["leads"][0] == "I"
    ptb = ok_json("data", "info", "ptbxl", "--data-dir", real_data("ptbxl"), "--home", tmp_path)
    assert ptb["records"] == 500 and ptb["class_counts"]["NORM"] == 297
    table = invoke("data", "info", "mitdb", "--data-dir", real_data("mitdb"), "--home", tmp_path)
    assert table.exit_code == 0 and "N: 2237" in table.output and "S: 33" in table.output


def test_results_pivot_over_seeds(tmp_path):
    result = invoke(
        "matrix",
        "--attacks",
        "fgsm",
        "--seeds",
        "0,1",
        "--param",
        "synthetic.n_records=300",
        "--epochs",
        "1",
        "--home",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    out = invoke("results", "--pivot", "--attack", "fgsm", "--format", "json", "--home", tmp_path)
    view = json.loads(out.stdout)
    rows = [r for r in view["rows"] if r["defense"] == "none"]
    assert len(rows) == 1 and rows[0]["seed list"] == [0, 1] and rows[0]["seeds"] == 2
    assert rows[0]["clean model"] in ("ok", "DEGENERATE (1 of 2)", "DEGENERATE (2 of 2)")
    trivial_rows = [r for r in view["rows"] if r["defense"].startswith("trivial")]
    assert len(trivial_rows) == 1 and view["left_out_violations"] == 0
    md = invoke("results", "--pivot", "--format", "md", "--home", tmp_path)
    assert "| clean F1 |" in md.output and "±" in md.output
    empty = invoke("results", "--pivot", "--attack", "nothing", "--home", tmp_path)
    assert empty.exit_code == 2 and "no finished results" in empty.output


def test_cpr_table1_recipe_is_a_valid_matrix_of_registered_plugins():
    import tomllib

    from ecgarena.host import get_host
    from ecgarena.specs import MatrixSpec

    from .conftest import ROOT

    spec = MatrixSpec.model_validate(tomllib.loads((ROOT / "recipes/cpr_table1.toml").read_text()))
    host = get_host()
    for kind, names in (
        ("defenses", spec.defenses),
        ("attacks", spec.attacks),
        ("models", spec.models),
        ("datasets", spec.datasets),
    ):
        for name in names:
            host.get(kind, name)
    assert spec.seeds == [0, 1, 2] and "cpr" in spec.defenses


def test_matrix_plan_shows_train_tasks_and_what_will_run_and_runs_nothing(tmp_path):
    args = ["--attacks", "noise", "--epochs", "1", "--param", "synthetic.n_records=300"]
    home = ["--home", tmp_path]
    assert invoke("matrix", *args, *home).exit_code == 0
    weights = sorted((tmp_path / "weights").iterdir())
    out = invoke("matrix", *args, "--defenses", "none,median", "--plan", *home)
    assert out.exit_code == 0, out.output
    assert "2 classifier(s) to train or load, 2 cell(s)" in out.output
    assert "stored" in out.output and "to run" in out.output
    assert sorted((tmp_path / "weights").iterdir()) == weights  # nothing trained
