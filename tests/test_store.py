"""The SQLite results store: append-only, newest per cell, exports."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest
from ecgarena.errors import DataError
from ecgarena.result import CellResult
from ecgarena.specs import RunSpec
from ecgarena.store import SCHEMA_VERSION, Store
from ecgarena.tables import export


def result(spec: RunSpec, status="done", auc=0.8) -> CellResult:
    return CellResult.model_validate(
        {
            "key": spec.key(),
            "status": status,
            "spec": spec.model_dump(mode="json"),
            "task": "multilabel",
            "device": "cpu",
            "clean": {"n": 10, "macro_auc": auc, "macro_f1": 0.5, "accuracy": 0.3},
            "adversarial": {"n": 10, "macro_auc": auc / 2, "macro_f1": 0.2, "accuracy": 0.1},
            "fooling": {"fooling_rate": 0.4, "flip_rate": 0.5, "n_correct_clean": 3},
            "audit": {"passed": status == "done", "checks": []},
        }
    )


def test_store_is_append_only_and_reads_newest(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    spec = RunSpec()
    assert store.latest_done(spec.key()) is None
    store.add(result(spec, auc=0.7))
    store.add(result(spec, auc=0.9))  # a forced re-run
    assert store.latest_done(spec.key()).clean.macro_auc == 0.9
    assert len(store.results()) == 1 and len(store.results(all_rows=True)) == 2
    # reopening the file keeps everything
    assert len(Store(tmp_path / "r.sqlite").results(all_rows=True)) == 2


def test_failed_cell_is_not_done_and_a_failed_rerun_is_the_cells_state(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    spec = RunSpec(attack="fgsm")
    failed = CellResult(key=spec.key(), status="failed", spec=spec.model_dump(), error="boom")
    store.add(failed)
    assert store.latest_done(spec.key()) is None
    assert store.results()[0].error == "boom"
    store.add(result(spec))
    assert store.latest_done(spec.key()) is not None
    store.add(failed)  # a failed --force re-run: the cell is failed now, the done row is kept
    assert store.latest_done(spec.key()) is None and store.latest(spec.key()).status == "failed"
    assert [r.status for r in store.results(all_rows=True)] == ["failed", "done", "failed"]


def test_rows_are_strict_json_with_the_reason_for_each_null(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    raw = result(RunSpec()).row()
    raw["clean"]["macro_auc"] = float("nan")
    raw["fooling"]["fooling_rate"] = float("inf")
    store.add(CellResult.from_raw(raw))
    with sqlite3.connect(tmp_path / "r.sqlite") as db:  # SQLite's JSON functions accept it
        got = db.execute("SELECT json_extract(result, '$.clean.macro_auc') FROM cells").fetchone()
    assert got == (None,)
    back = store.results()[0]
    assert (
        back.clean.macro_auc is None
        and "both a positive and a negative" in (back.nulls["clean.macro_auc"])
    )
    assert "(inf)" in back.nulls["fooling.fooling_rate"]


def test_store_has_a_schema_version_and_migrates_an_old_file(tmp_path):
    path = tmp_path / "old.sqlite"
    old = result(RunSpec()).row()
    old["clean"]["macro_auc"] = float("nan")  # what version 0 stored
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE cells (id INTEGER PRIMARY KEY AUTOINCREMENT, cell_key TEXT NOT NULL,"
            " created REAL NOT NULL, status TEXT NOT NULL, dataset TEXT, model TEXT, defense"
            " TEXT, attack TEXT, eps TEXT, seed INTEGER, device TEXT, audit_passed INTEGER,"
            " error TEXT, result TEXT NOT NULL)"
        )
        db.execute(
            "INSERT INTO cells (cell_key, created, status, result) VALUES (?, 0, 'done', ?)",
            (old["key"], json.dumps(old)),
        )
    store = Store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        text, data_key = db.execute("SELECT result, data_key FROM cells").fetchone()
    assert "NaN" not in text and store.results()[0].nulls == {
        "clean.macro_auc": "undefined: no scored class has both a positive and a negative record"
    }
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(DataError, match="newer than this ecgarena"):
        Store(path)


def test_a_row_that_is_not_a_cell_result_is_named(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    store.add(result(RunSpec()))
    with sqlite3.connect(tmp_path / "r.sqlite") as db:
        db.execute("UPDATE cells SET result = '{\"key\": 1}'")
    with pytest.raises(DataError, match="row 1 of .* is not a valid cell result"):
        store.results()


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
        spec = {"dataset": "d", "model": "m", "defense": defense, "attack": "sap", "eps": 0.05}
        return CellResult.model_validate(
            {
                "key": f"{defense}{seed}",
                "status": "done",
                "spec": {**spec, "seed": seed},
                "clean": {"n": 5, "macro_f1": clean_f1, "macro_auc": 0.8, "accuracy": 0.5},
                "adversarial": {"n": 5, "macro_f1": adv_f1, "macro_auc": 0.4, "accuracy": 0.1},
            }
        )

    rows = pivot(
        [
            cell("none", 0, 0.8, 0.4),
            cell("none", 1, 0.6, 0.3),
            cell("cpr", 0, 0.5, 0.5),
            CellResult(key="x", status="failed", spec={}),
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
    return CellResult.model_validate(
        {
            "key": spec.key(),
            "status": "done",
            "spec": spec.model_dump(mode="json"),
            "clean": {"n": 5, "accuracy": 0.8, "macro_f1": 0.6},
            "adversarial": {"n": 5, "accuracy": adv_acc, "macro_f1": adv_acc / 2},
            "audit": {"passed": passed, "checks": []},
        }
    )


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
    assert [(r.spec["defense"], r.spec["seed"]) for r in got] == [("none", 0)]
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
