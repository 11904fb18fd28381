"""The pool executor: the same numbers as the local one for the same seeds and thread count,
each classifier trained once (by its train task), the driver alone storing every cell."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from ecgarena.cli import app
from ecgarena.host import get_host
from ecgarena.matrix import plan, run_local
from ecgarena.pool import run_pool
from ecgarena.resources import Resources
from ecgarena.specs import MatrixSpec, TrainSpec
from ecgarena.store import Store
from typer.testing import CliRunner

SPEC = MatrixSpec(
    defenses=["none", "median"],
    attacks=["fgsm", "pgd"],
    eps=[0.05],
    params={"synthetic": {"n_records": 300}, "pgd": {"steps": 3}},
    train=TrainSpec(epochs=1),
    max_attack_records=16,
)
SAME = ("clean", "adversarial", "fooling", "perturbation", "audit", "gate", "intervals", "targets")


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' count: numbers depend on it on CPU
    yield
    torch.set_num_threads(before)


def check_executor(run: Callable[..., list], tmp_path: Path) -> None:
    """`run(work, res, store, on_cell)` gives local's numbers for SPEC, trains each classifier
    once (by its train task), stores one row per cell (its driver) and resumes running nothing."""
    local_res = Resources(get_host(), tmp_path / "local")
    local = run_local(plan(SPEC, local_res), local_res, Store(tmp_path / "local" / "r.db"))
    res = Resources(get_host(), tmp_path / "other")
    store = Store(tmp_path / "other" / "r.db")
    seen = []
    results = run(plan(SPEC, res), res, store, lambda t, r: seen.append(r is None))
    assert [r.status for r in results] == ["done"] * 4
    assert [r.key for r in results] == [r.key for r in local]
    for a, b in zip(local, results, strict=True):
        assert {k: getattr(a, k) for k in SAME} == {k: getattr(b, k) for k in SAME}, a.spec
    # cells start only once their train task finished, so they load (never train) weights
    assert len(list((tmp_path / "other" / "weights").glob("*.safetensors"))) == 2
    assert seen.count(True) == seen.count(False) == 4
    assert len(store.results(True)) == 4  # one row per cell, written by the driver
    again = run(plan(SPEC, res), res, store, None)  # resumes: nothing runs
    assert [r.status for r in again] == ["skipped"] * 4 and len(store.results(True)) == 4


def test_pool_gives_the_local_numbers_and_trains_each_classifier_once(tmp_path, one_thread):
    check_executor(lambda w, r, s, on: run_pool(w, r, s, 2, 1, on_cell=on), tmp_path)


def test_matrix_executor_pool_from_the_cli(tmp_path):
    args = ["matrix", "--home", str(tmp_path), "--attacks", "fgsm", "--defenses", "none,median"]
    args += ["--param", "synthetic.n_records=300", "--epochs", "1", "--max-records", "8"]
    out = CliRunner().invoke(app, [*args, "--executor", "pool", "--devices", "cpu,cpu", "--json"])
    assert out.exit_code == 0, out.output
    cells = json.loads(out.stdout)["cells"]
    assert [c["status"] for c in cells] == ["done", "done"]
    bad = CliRunner().invoke(app, [*args, "--executor", "cluster"])
    assert (
        bad.exit_code == 2 and "unknown executor 'cluster' (valid: local, pool, ray)" in bad.output
    )
