"""Budget parsing and spec validation: one readable line for every bad value."""

from __future__ import annotations

import pytest
from ecgarena.errors import UserError
from ecgarena.specs import MatrixSpec, RunSpec, ThreatModel, read_toml, validate
from ecgarena.units import format_mv, parse_mv
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    "text, mv",
    [
        ("0.05", 0.05),
        ("0.05mV", 0.05),
        ("50uV", 0.05),
        ("50µV", 0.05),
        ("50 μV", 0.05),
        (".1mv", 0.1),
        ("10uV", 0.01),
        ("0.01mV", 0.01),
        (0.2, 0.2),
        (0, 0.0),
    ],
)
def test_parse_mv_accepts_units(text, mv):
    assert parse_mv(text) == pytest.approx(mv)


@pytest.mark.parametrize("bad", ["-1", "abc", "5kg", "nan", "inf", "100", "1e9uV", True])
def test_parse_mv_rejects_bad_values(bad):
    with pytest.raises(ValueError) as e:
        parse_mv(bad)
    assert repr(bad) in str(e.value)


@given(st.floats(0, 50, allow_nan=False))
def test_parse_format_roundtrip(mv):
    assert parse_mv(format_mv(mv)) == pytest.approx(mv, rel=1e-5, abs=1e-9)


def test_run_spec_error_is_one_line_naming_field():
    with pytest.raises(UserError) as e:
        validate(RunSpec, {"eps": "-3mV", "device": "tpu"}, "run spec")
    msg = str(e.value)
    assert "\n" not in msg and "eps" in msg and "device" in msg and "'cpu'" in msg


def test_unknown_field_is_named():
    with pytest.raises(UserError, match="colour: unknown option"):
        validate(RunSpec, {"colour": "red"}, "run spec")


def test_threat_model_per_lead_budget_length_checked():
    tm = ThreatModel(budget_mv=["0.1mV", "200uV"])
    assert tm.budget_mv == [0.1, 0.2]
    assert tm.lead_budgets(2) == [0.1, 0.2]
    with pytest.raises(UserError, match="2 values but the data has 12 leads"):
        tm.lead_budgets(12)


def test_run_key_ignores_data_location_but_not_budget(tmp_path):
    a = RunSpec(eps=0.05, data_dir=tmp_path)
    assert a.key() == RunSpec(eps="50uV").key()
    assert a.key() != RunSpec(eps=0.1).key()


def test_matrix_expands_cross_product():
    m = MatrixSpec(
        defenses=["none", "median"], attacks=["fgsm", "pgd"], eps=["0.02", "50uV"], seeds=[0, 1]
    )
    cells = m.cells()
    assert len(cells) == 2 * 2 * 2 * 2
    assert len({c.key() for c in cells}) == 16
    # cells of one defended model are contiguous, so it is trained once then reused
    first = [c.defense for c in cells]
    assert first == sorted(first, key=["none", "median"].index)


def test_read_toml_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("attack = [unclosed")
    with pytest.raises(UserError, match="not valid TOML"):
        read_toml(bad)


def test_matrix_pairs_option_set_grids_and_dataset_folders(tmp_path):
    m = MatrixSpec(
        datasets=["synthetic", "ptbxl"],
        pairs=[("cnn", "none"), ("resnet1d18", "pgd-at")],
        params={"pgd-at": [{"steps": 3}, {"steps": 5}], "pgd": {"steps": 7}},
        data_dirs={"ptbxl": tmp_path},
        data_dir=tmp_path / "other",
    )
    cells = m.cells()
    assert len(cells) == 2 * (1 + 2)
    assert {(c.model, c.defense, c.defense_params.get("steps")) for c in cells} == {
        ("cnn", "none", None),
        ("resnet1d18", "pgd-at", 3),
        ("resnet1d18", "pgd-at", 5),
    }
    assert {c.dataset: c.data_dir for c in cells} == {
        "synthetic": tmp_path / "other",
        "ptbxl": tmp_path,
    }
    assert all(c.attack_params == {"steps": 7} for c in cells)


def test_matrix_options_can_name_the_kind_where_a_model_and_a_defense_share_a_name():
    spec = MatrixSpec(
        models=["caslcnet"],
        defenses=["caslcnet"],
        params={"defenses.caslcnet": {"clean_mse": True}, "caslcnet": {"width": 8}},
    )
    (cell,) = spec.cells()
    assert cell.defense_params == {"clean_mse": True} and cell.model_params == {"width": 8}
