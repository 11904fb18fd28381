"""CinC 2021 (SNOMED → PTB-XL superclasses) and zero-shot cells: train on one dataset,
evaluate on every record of another with the same classes and shape."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from ecgarena.datasets.cinc2021 import (
    SINUS_RHYTHM,
    SUPERCLASS,
    CinC2021Dataset,
    dx_codes,
    source_of,
    superclasses,
)
from ecgarena.errors import DataError
from hypothesis import given
from hypothesis import strategies as st

from .conftest import real_data
from .test_cli import invoke, ok_json


def test_cinc2021_real_records_map_to_ptbxl_superclasses(tmp_path):
    d = CinC2021Dataset(data_dir=real_data("cinc2021"), cache_dir=tmp_path, rate=100)
    info = d.describe()
    assert info["records"] == 50
    assert info["records_by_source"] == {"georgia": 20, "ptbxl": 10, "chapman-ningbo": 20}
    assert info["records_with_superclass"] == 44
    assert info["class_counts"] == {"CD": 12, "HYP": 8, "MI": 0, "NORM": 12, "STTC": 18}
    test = d.load("test")
    assert test.x.shape[1:] == (12, 1000) and test.x.dtype == np.float32
    assert 0.2 < np.percentile(np.abs(test.x).max(axis=2), 50) < 5  # mV, not µV
    only = CinC2021Dataset(
        data_dir=real_data("cinc2021"), cache_dir=tmp_path, sources=["georgia"]
    ).describe()
    assert only["records"] == 20 and only["dropped_without_superclass"] == {"georgia": 3}


@given(st.lists(st.sampled_from([*SUPERCLASS, SINUS_RHYTHM, "427084000", "284470004"])))
def test_sinus_rhythm_is_norm_only_without_another_superclass(codes):
    found = superclasses(codes)
    mapped = {SUPERCLASS[c] for c in codes if c in SUPERCLASS}
    assert found == (mapped or ({"NORM"} if SINUS_RHYTHM in codes else set()))


def test_header_errors_name_the_record():
    with pytest.raises(DataError, match="E1.*no '# Dx:'"):
        dx_codes(["Age: 50", "Sex: Male"], "E1")
    with pytest.raises(DataError, match="malformed Dx"):
        dx_codes(["Dx: 4271,abc"], "E1")
    with pytest.raises(DataError, match="unknown prefix 'ZZ'"):
        source_of("ZZ001")


def test_truncated_cinc2021_record_is_a_data_error(tmp_path):
    """FIXTURE: a real Georgia record whose .mat is cut in half."""
    src = real_data("cinc2021")
    for ext in (".hea", ".mat"):
        shutil.copy(src / f"E07500{ext}", tmp_path / f"E07500{ext}")
    mat = tmp_path / "E07500.mat"
    mat.write_bytes(mat.read_bytes()[: mat.stat().st_size // 2])
    with pytest.raises(DataError, match="E07500"):
        CinC2021Dataset(data_dir=tmp_path, cache_dir=tmp_path / "c").load("test")


def test_zero_shot_run_evaluates_every_target_record(tmp_path):
    home = str(tmp_path / "home")
    common = [
        "--dataset", "ptbxl", "--data-dir", str(real_data("ptbxl")), "--eval-dataset",
        "cinc2021", "--eval-data-dir", str(real_data("cinc2021")), "--attack", "noise",
        "--epochs", "1", "--home", home,
    ]  # fmt: skip
    out = ok_json("run", *common, "--eval-dataset-opt", "rate=100")
    assert out["spec"]["eval_dataset"] == "cinc2021"
    assert out["clean"]["n"] == 44  # every mapped record, not a test split
    table = invoke("results", "--home", home)
    assert "ptbxl→cinc2021" in table.output
    wrong = invoke("run", *common)  # cinc2021 at 500 Hz against PTB-XL at 100 Hz
    assert wrong.exit_code == 2 and "fs 500.0" in wrong.output


def test_a_stored_cell_is_rerun_when_its_data_changed(tmp_path):
    """FIXTURE: four real CinC 2021 records copied to tmp; train on the embedded data (same
    five superclasses, 12 leads, 100 Hz, 10 s) and evaluate zero-shot on the copies."""
    folder = tmp_path / "cinc2021"
    folder.mkdir()
    for record in ("E07500", "E07501", "HR06000", "JS20000"):
        for ext in (".hea", ".mat"):
            shutil.copy(real_data("cinc2021") / f"{record}{ext}", folder)
    args = [
        "run", "--attack", "noise", "--dataset-opt", "n_records=200", "--epochs", "1",
        "--eval-dataset", "cinc2021", "--eval-data-dir", str(folder), "--eval-dataset-opt",
        "rate=100", "--home", str(tmp_path / "home"),
    ]  # fmt: skip
    first = ok_json(*args)
    assert first["status"] == "done" and first["clean"]["n"] == 4
    assert ok_json(*args)["status"] == "skipped"
    shutil.copy(real_data("cinc2021") / "E07503.hea", folder)  # a new record arrives
    shutil.copy(real_data("cinc2021") / "E07503.mat", folder)
    again = ok_json(*args)
    assert again["status"] == "done" and again["clean"]["n"] == 5
    assert any("data changed" in w for w in again["warnings"])
