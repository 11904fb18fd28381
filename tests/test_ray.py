"""The Ray executor on a real local Ray cluster (num_cpus=2): the local numbers for the same
seeds and threads, each classifier trained once, the driver alone storing, weights through the
object store, a dying worker retried by Ray or its cell stored as failed with the reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import ray  # installed by the README's install command (the `ray` extra): never skipped
from ecgarena.cli import app
from ecgarena.host import get_host
from ecgarena.matrix import plan
from ecgarena.resources import Resources
from ecgarena.specs import MatrixSpec, TrainSpec
from ecgarena.store import Store
from typer.testing import CliRunner

from tests.dists import install, visible
from tests.test_pool import SPEC, check_executor, one_thread  # noqa: F401 (a fixture)

pytestmark = pytest.mark.xdist_group("ray")  # one local cluster, on one xdist worker

CRASHING = '''
import os
from pathlib import Path
from typing import ClassVar

import ecgarena
import torch


class Crash(ecgarena.Options):
    """Kills the worker process it attacks in; with `once`, only the first time (the file
    `marker` says it happened), so Ray's retry then succeeds with δ = 0."""

    name: ClassVar[str] = "crash"
    once: bool = False
    marker: str

    def threat_model(self, budget_mv):
        return ecgarena.ThreatModel(norm="linf", budget_mv=budget_mv)

    def run(self, classifier, x, y, threat, ctx):
        if not (self.once and Path(self.marker).exists()):
            Path(self.marker).touch()
            os._exit(1)
        return torch.zeros_like(x)


@ecgarena.hookimpl
def ecgarena_register_attacks(register):
    register(Crash)
'''


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real local Ray cluster whose workers also see an installed `crash` attack plugin."""
    root = tmp_path_factory.mktemp("site")
    install(
        root,
        "ecgarena-crash",
        {"crash": "ecgarena_crash"},
        {"ecgarena_crash": textwrap.dedent(CRASHING)},
    )
    with visible(root, os.environ["ECGARENA_PLUGINS"] + ",crash", ("ecgarena_crash",)):
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        yield root
        ray.shutdown()


@pytest.mark.usefixtures(
    "one_thread"
)  # each task's count (2 CPUs / 2 workers): numbers depend on it
def test_ray_gives_the_local_numbers_and_trains_each_classifier_once(cluster, tmp_path):
    from ecgarena.ray_executor import run_ray

    check_executor(lambda w, r, s, on: run_ray(w, r, s, 2, on_cell=on), tmp_path)


def test_a_cell_task_installs_the_weights_it_is_given_in_its_own_home(cluster, tmp_path):
    """A node whose home does not hold the trained weights gets them through the object
    store (the file's bytes), verified on read like any cached file: it trains nothing."""
    from ecgarena.ray_executor import _cell, _train

    spec = plan(SPEC, Resources(get_host(), tmp_path)).cells[0].spec
    trained = _train((str(tmp_path / "a"), False, 1), spec.model_dump_json())
    assert trained is not None and len(trained[1]) > 1000
    result = json.loads(_cell((str(tmp_path / "b"), False, 1), spec.model_dump_json(), trained))
    assert result["status"] == "done" and result["training"]["cached"], result.get("error")
    assert (tmp_path / "b" / "weights" / f"{trained[0]}.safetensors").read_bytes() == trained[1]


def crash_matrix(tmp_path, once: bool) -> MatrixSpec:
    tmp_path.mkdir()
    return MatrixSpec(
        attacks=["crash"],
        eps=[0.05],
        params={
            "synthetic": {"n_records": 300},
            "crash": {"once": once, "marker": str(tmp_path / "m")},
        },
        train=TrainSpec(epochs=1),
        max_attack_records=8,
    )


def test_a_worker_that_dies_is_retried_then_its_cell_stored_as_failed(cluster, tmp_path):
    from ecgarena.ray_executor import run_ray

    res = Resources(get_host(), tmp_path / "home")
    store = Store(tmp_path / "home" / "r.db")
    once = run_ray(plan(crash_matrix(tmp_path / "a", True), res), res, store, 2)
    assert [r.status for r in once] == ["done"], once[0].error  # the first attempt died
    always = run_ray(plan(crash_matrix(tmp_path / "b", False), res), res, store, 2)
    assert [r.status for r in always] == ["failed"]
    assert always[0].error.startswith("worker failed: WorkerCrashedError: The worker died")
    assert [r.status for r in store.results(True)] == ["done", "failed"]


def test_matrix_executor_ray_from_the_cli(cluster, tmp_path):
    """The CLI joins the running cluster (a CLI process would start its own)."""
    args = ["matrix", "--home", str(tmp_path), "--attacks", "fgsm", "--defenses", "none,median"]
    args += ["--param", "synthetic.n_records=300", "--epochs", "1", "--max-records", "8"]
    out = CliRunner().invoke(app, [*args, "--executor", "ray", "--workers", "2", "--json"])
    assert out.exit_code == 0, out.output
    assert [c["status"] for c in json.loads(out.stdout)["cells"]] == ["done", "done"]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--executor", "ray", "--ray-address", "127.0.0.1:9"], "no Ray cluster answers there"),
        (["--executor", "ray", "--ray-address", "nowhere"], "is not auto, HOST:PORT"),
        (["--ray-address", "auto"], "--ray-address 'auto' needs --executor ray (not local)"),
        (["--executor", "pool", "--devices", "cuda:7"], "--devices 'cuda:7' is not a device"),
    ],
)
def test_bad_executor_flags_are_one_line_before_anything_runs(tmp_path, flags, says):
    """In a fresh process (no cluster joined), so `--ray-address` is really tried."""
    code = (
        "import sys; from ecgarena.cli import main; sys.argv = ['ecgarena', *sys.argv[1:]]; main()"
    )
    args = ["matrix", "--home", str(tmp_path), "--attacks", "fgsm", *flags]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not (tmp_path / "weights").exists()  # nothing trained
