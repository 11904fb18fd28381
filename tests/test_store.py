"""The SQLite results store: append-only, newest per cell, exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from ecgarena.specs import RunSpec
from ecgarena.store import Store, export


def result(spec: RunSpec, status="done", auc=0.8) -> dict:
    return {
        "key": spec.key(),
        "status": status,
        "spec": spec.model_dump(mode="json"),
        "device": "cpu",
        "clean": {"macro_auc": auc, "macro_f1": 0.5},
        "adversarial": {"macro_auc": auc / 2, "macro_f1": 0.2},
        "fooling": {"fooling_rate": 0.4},
        "audit": {"passed": status == "done", "checks": []},
    }


def test_store_is_append_only_and_reads_newest(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    spec = RunSpec()
    assert not store.done(spec.key())
    store.add(result(spec, auc=0.7))
    store.add(result(spec, auc=0.9))  # a forced re-run
    assert store.done(spec.key())
    assert store.latest(spec.key())["clean"]["macro_auc"] == 0.9
    assert len(store.results()) == 1 and len(store.results(all_rows=True)) == 2
    # reopening the file keeps everything
    assert len(Store(tmp_path / "r.sqlite").results(all_rows=True)) == 2


def test_failed_cell_is_not_done(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    spec = RunSpec(attack="fgsm")
    store.add(
        {
            "key": spec.key(),
            "status": "failed",
            "spec": spec.model_dump(mode="json"),
            "error": "boom",
        }
    )
    assert not store.done(spec.key())
    assert store.results()[0]["error"] == "boom"


def test_exports(tmp_path):
    rows = [result(RunSpec(eps=0.02)), result(RunSpec(eps=0.05), status="failed")]
    parsed = list(csv.DictReader(io.StringIO(export(rows, "csv"))))
    assert [r["eps_mv"] for r in parsed] == ["0.02", "0.05"]
    assert parsed[0]["audit"] == "pass" and parsed[1]["audit"] == "VIOLATION"
    assert json.loads(export(rows, "json"))[0]["spec"]["eps"] == 0.02
    md = export(rows, "md").splitlines()
    assert md[0].startswith("| dataset") and len(md) == 4


def test_pivot_aggregates_seeds_mean_and_std():
    from ecgarena.views import pivot

    def cell(defense, seed, clean_f1, adv_f1):
        return {
            "status": "done",
            "spec": {
                "dataset": "d",
                "model": "m",
                "defense": defense,
                "attack": "sap",
                "eps": 0.05,
                "seed": seed,
            },
            "clean": {"macro_f1": clean_f1, "macro_auc": 0.8},
            "adversarial": {"macro_f1": adv_f1, "macro_auc": 0.4},
        }

    rows = pivot(
        [
            cell("none", 0, 0.8, 0.4),
            cell("none", 1, 0.6, 0.3),
            cell("cpr", 0, 0.5, 0.5),
            {"status": "failed", "spec": {}},
        ]
    ).rows
    by = {r["defense"]: r for r in rows}
    f1 = by["none"]["clean F1"]
    assert (f1["mean"], f1["std"], f1["n"]) == pytest.approx((0.7, 0.1414213, 2), rel=1e-5)
    assert by["none"]["gap %"]["mean"] == pytest.approx(50.0)
    one = by["cpr"]["attacked AUC"]
    assert one["mean"] == 0.4 and one["std"] is None  # one seed: n/a, never ± 0.000
    assert by["cpr"]["seeds"] == 1 and by["cpr"]["seed list"] == [0]


def _curve_cell(defense, seed, eps, adv_acc, passed=True, **defense_params):
    """A stored cell on one ε of a robustness curve (clean accuracy 0.8, F1 0.6)."""
    spec = RunSpec(defense=defense, defense_params=defense_params, eps=eps, seed=seed)
    return {
        "key": spec.key(),
        "status": "done",
        "spec": spec.model_dump(mode="json"),
        "clean": {"accuracy": 0.8, "macro_f1": 0.6},
        "adversarial": {"accuracy": adv_acc, "macro_f1": adv_acc / 2},
        "audit": {"passed": passed, "checks": []},
    }


def test_robust_view_integrates_each_seed_curve_and_labels_variants():
    from ecgarena.views import robust

    def cell(variant, seed, eps, adv_acc):
        return _curve_cell("dna", seed, eps, adv_acc, variant=variant)

    rows = robust(
        [
            cell("cor", 0, 0.05, 0.4),
            cell("cor", 0, 0.1, 0.0),
            cell("fdec", 0, 0.05, 0.8),
            cell("fdec", 0, 0.1, 0.8),
        ]
    ).rows
    by = {r["defense"]: r for r in rows}
    assert set(by) == {"dna(variant=cor)", "dna(variant=fdec)"}
    # cor: area = (0.8+0.4)/2·0.05 + (0.4+0)/2·0.05 = 0.04 → /0.1 = 0.4; sqrt(0.8·0.4)
    assert by["dna(variant=cor)"]["ACC_robust"]["mean"] == pytest.approx((0.8 * 0.4) ** 0.5)
    assert by["dna(variant=fdec)"]["ACC_robust"]["mean"] == pytest.approx(0.8)  # flat curve
    assert by["dna(variant=cor)"]["ε grid (mV)"] == [0.0, 0.05, 0.1]


def test_pivot_never_merges_cells_that_differ_beyond_the_seed():
    from ecgarena.views import pivot

    cells = [
        result(RunSpec(seed=0, max_attack_records=24)),
        result(RunSpec(seed=1, max_attack_records=24)),
        result(RunSpec(seed=0, max_attack_records=60)),
    ]
    rows = pivot(cells).rows
    assert sorted(r["seed list"] for r in rows) == [[0], [0, 1]]


def test_results_filter_on_stored_columns(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    for seed, defense in ((0, "none"), (1, "none"), (0, "median")):
        store.add(result(RunSpec(seed=seed, defense=defense)))
    got = store.results(defense="none", seed=0)
    assert [(r["spec"]["defense"], r["spec"]["seed"]) for r in got] == [("none", 0)]
    assert len(store.results(defense="none")) == 2 and len(store.results()) == 3
    with pytest.raises(ValueError, match="cannot filter on \\['eps'\\]"):
        store.results(eps=0.05)


def test_robust_refuses_to_rank_rows_over_different_grids():
    from ecgarena.errors import UserError
    from ecgarena.views import robust

    cells = [
        _curve_cell("dna", 0, 0.05, 0.6),
        _curve_cell("none", 0, 0.02, 0.5),
        _curve_cell("none", 0, 0.05, 0.3),
        _curve_cell("none", 0, 0.1, 0.1),
    ]
    with pytest.raises(UserError, match="different ε grids") as err:
        robust(cells)
    assert "[0.0, 0.05]" in str(err.value) and "[0.0, 0.02, 0.05, 0.1]" in str(err.value)
    rows = robust(cells, grid=[0.05]).rows  # a grid both rows hold: comparable
    assert {r["defense"]: r["ε grid (mV)"] for r in rows} == {
        "dna": [0.0, 0.05],
        "none": [0.0, 0.05],
    }
    with pytest.raises(UserError, match="no stored cell at ε \\[0.02\\]"):
        robust(cells, grid=[0.02, 0.05])


def test_robust_single_seed_is_n_a_and_violations_are_left_out():
    from ecgarena.views import robust

    cells = [_curve_cell("none", 0, 0.05, 0.4), _curve_cell("none", 0, 0.1, 0.2)]
    cells += [_curve_cell("bad", 0, e, 0.8, passed=False) for e in (0.05, 0.1)]
    view = robust(cells)
    assert [r["defense"] for r in view.rows] == ["none"] and view.left_out == 2
    assert "left out" in view.note()
    row = view.rows[0]
    assert row["ACC_robust"]["std"] is None and row["seeds"] == 1
