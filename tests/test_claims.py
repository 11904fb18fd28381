"""Several processes on one home split a matrix (the store's claim table): every cell is stored
once and every classifier trained once; a dead owner's claim is taken over."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from ecgarena.claims import Claims
from ecgarena.store import Store

MATRIX = [
    "matrix", "--defenses", "none,median", "--attacks", "fgsm,pgd", "--eps", "0.02,0.05",
    "--param", "synthetic.n_records=300", "--param", "pgd.steps=3", "--epochs", "1",
    "--max-records", "8", "--json",
]  # fmt: skip
RUN = "import sys; from ecgarena.cli import main; sys.argv = ['ecgarena', *sys.argv[1:]]; main()"


def test_two_concurrent_matrix_processes_never_repeat_work(tmp_path):
    home = ["--home", str(tmp_path)]
    procs = [
        subprocess.Popen([sys.executable, "-c", RUN, *MATRIX, *home], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = []
    for p in procs:
        outputs.append(json.loads(p.communicate(timeout=600)[0])["cells"])
        assert p.returncode == 0
    rows = Store(tmp_path / "results.sqlite").results(True)
    assert len(rows) == 8 and len({r.key for r in rows}) == 8  # every cell stored once
    # cells a process ran itself ("done", not read back as "skipped") say whether it trained
    # their classifier (cached False) or loaded the other process's weights: trained once
    trained_by = {
        defense: [
            any(c["spec"]["defense"] == defense and not c["training"]["cached"] for c in cells)
            for cells in ([c for c in out if c["status"] == "done"] for out in outputs)
        ]
        for defense in ("none", "median")
    }
    assert all(sum(by) == 1 for by in trained_by.values()), trained_by


def test_a_live_claim_is_respected_and_a_stale_one_taken_over(tmp_path):
    store = Store(tmp_path / "results.sqlite")
    first, second = Claims(store.path), Claims(store.path, stale_s=0.2)
    assert first.take("cell-a") and first.take("cell-a")  # taking one's own claim again
    assert not second.take("cell-a")  # live: held by the first process
    time.sleep(0.3)
    assert second.take("cell-a")  # the first stopped beating: taken over
    with first.alive(every_s=0.05):
        assert first.take("cell-b")
        time.sleep(0.3)  # renewed meanwhile, so still live for a 0.2 s staleness
        assert not Claims(store.path, stale_s=0.2).take("cell-b")
    assert Claims(store.path).take("cell-b")  # released when the block ended


def test_a_claim_of_a_process_of_this_machine_that_ended_is_taken_over_at_once(tmp_path):
    """A killed driver's claims (fresh heartbeat, but its pid gone) do not make a re-run wait."""
    store = Store(tmp_path / "results.sqlite")
    code = "import sys; from ecgarena.claims import Claims; assert Claims(sys.argv[1]).take('x')"
    subprocess.run([sys.executable, "-c", code, str(store.path)], check=True)  # ends, no release
    assert Claims(store.path).take("x")
    foreign = Claims(store.path)
    foreign.owner = "another-machine:1:nonce"  # pid 1 elsewhere says nothing about here
    assert foreign.take("y") and not Claims(store.path).take("y")


def test_the_pool_leaves_a_claimed_cell_to_its_owner_and_reads_it_back(tmp_path):
    """Another process (here a thread with its own claims) holds one cell: the pool runs the
    other, waits for the held one to be stored and returns it, storing nothing twice."""
    from ecgarena.host import get_host
    from ecgarena.matrix import plan, run_and_store
    from ecgarena.pool import run_pool
    from ecgarena.resources import Resources
    from ecgarena.specs import MatrixSpec, TrainSpec

    spec = MatrixSpec(
        attacks=["fgsm"],
        eps=[0.02, 0.05],
        params={"synthetic": {"n_records": 300}},
        train=TrainSpec(epochs=1),
        max_attack_records=8,
    )
    res = Resources(get_host(), tmp_path)
    store = Store(tmp_path / "results.sqlite")
    work = plan(spec, res)
    held = work.cells[1].spec
    other = Claims(store.path)
    assert other.take(held.key())
    claimed = threading.Event()

    def owner() -> None:
        with other.alive(every_s=0.2):
            claimed.set()
            time.sleep(2)  # the pool meanwhile runs the cell it could claim
            run_and_store(Resources(get_host(), tmp_path), store, held)

    thread = threading.Thread(target=owner)
    thread.start()
    claimed.wait()
    results = run_pool(work, res, store, 1, 1)
    thread.join()
    assert [r.status for r in results] == ["done", "skipped"]  # the second: the owner's row
    assert len(store.results(True)) == 2


def test_a_refused_claim_gives_back_only_what_it_took(tmp_path):
    """Claiming cell B (needs X and Y) fails on Y, held elsewhere: B's claim is given back,
    but the training of X, held already for this process's cell A, stays claimed."""
    from ecgarena.matrix import CellTask, claim
    from ecgarena.resources import Resources
    from ecgarena.specs import RunSpec

    store = Store(tmp_path / "results.sqlite")
    res = Resources(None, tmp_path)  # only its weights paths are read
    mine, other = Claims(store.path), Claims(store.path)
    a, b = RunSpec(attack="fgsm"), RunSpec(attack="pgd")
    assert claim(mine, res, a, CellTask(a, ("X",))) == [a.key(), "train:X"]
    assert other.take("train:Y")
    assert claim(mine, res, b, CellTask(b, ("X", "Y"))) is None
    assert mine.held == {a.key(), "train:X"}
    assert not other.take("train:X") and other.take(b.key())


def test_processes_opening_one_new_home_at_once_migrate_it_once(tmp_path):
    """The schema migrates under one write lock: a second process waits, then sees the new
    version (it used to read version 0 too and fail adding the same columns again)."""
    code = "import sys; from ecgarena.store import Store; Store(sys.argv[1])"
    for round_ in range(5):
        path = str(tmp_path / f"r{round_}.sqlite")
        procs = [subprocess.Popen([sys.executable, "-c", code, path]) for _ in range(4)]
        assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
