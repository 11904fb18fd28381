"""Real-data loaders on ../shared/data (skipped when absent) and on-disk fixtures for errors."""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from ecgarena.datasets.mitdb import MITDBDataset
from ecgarena.datasets.ptbxl import PTBXLDataset
from ecgarena.errors import DataError, UserError

from .conftest import real_data


@pytest.fixture(scope="module")
def ptbxl_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ptbxl-cache")


def test_ptbxl_real_subset_describe(ptbxl_cache):
    d = PTBXLDataset(data_dir=real_data("ptbxl"), cache_dir=ptbxl_cache)
    info = d.describe()
    assert info["records"] == 500 and info["dropped_without_superclass"] == 12
    assert info["class_counts"] == {"CD": 78, "HYP": 40, "MI": 73, "NORM": 297, "STTC": 96}
    folds = {1: 58, 2: 51, 3: 34, 4: 42, 5: 47, 6: 33, 7: 44, 8: 44, 9: 81, 10: 66}
    assert {int(k): v for k, v in info["fold_counts"].items()} == folds
    train, test = d.load("train"), d.load("test")
    assert train.x.shape[1:] == (12, 1000) and train.x.dtype == np.float32
    assert len(train) + len(d.load("val")) + len(test) == 488
    assert set(np.unique(train.y)) == {0.0, 1.0} and (train.y.sum(1) >= 1).all()
    # physical units: QRS complexes of a few mV, no absurd values
    assert 0.3 < np.percentile(np.abs(train.x).max(axis=2), 50) < 5


def test_ptbxl_500hz_and_cache_is_memory_mapped(ptbxl_cache):
    d = PTBXLDataset(data_dir=real_data("ptbxl"), cache_dir=ptbxl_cache, rate=500)
    first = d.load("test")
    assert first.x.shape[1:] == (12, 5000)
    t = time.perf_counter()
    again = PTBXLDataset(data_dir=real_data("ptbxl"), cache_dir=ptbxl_cache, rate=500).load("test")
    assert time.perf_counter() - t < 2.0
    assert isinstance(again.x, np.memmap) and np.array_equal(first.x, again.x)
    assert first.ids == again.ids


def small_ptbxl(tmp_path: Path, n: int = 6) -> Path:
    """FIXTURE: a PTB-XL folder with the first n real records (copied into tmp, never committed)."""
    src, dst = real_data("ptbxl"), tmp_path / "ptbxl"
    (dst / "records100" / "00000").mkdir(parents=True)
    shutil.copy(src / "scp_statements.csv", dst)
    with open(src / "ptbxl_database.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for _, r in zip(range(n), reader)]
        fields = reader.fieldnames
    for i, r in enumerate(rows):
        r["strat_fold"] = str(i % 3 + 8)  # folds 8, 9, 10 so every split is non-empty
        for ext in (".hea", ".dat"):
            shutil.copy(src / f"{r['filename_lr']}{ext}", dst / f"{r['filename_lr']}{ext}")
    with open(dst / "ptbxl_database.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return dst


def test_ptbxl_truncated_record_is_a_clear_error(tmp_path):
    root = small_ptbxl(tmp_path)
    dat = root / "records100/00000/00003_lr.dat"
    dat.write_bytes(dat.read_bytes()[:5000])
    with pytest.raises(DataError, match="00003_lr"):
        PTBXLDataset(data_dir=root, cache_dir=tmp_path / "c").load("train")


def test_ptbxl_corrupt_header_and_missing_file(tmp_path):
    root = small_ptbxl(tmp_path)
    (root / "records100/00000/00002_lr.hea").write_text("garbage header\n")
    with pytest.raises(DataError, match="00002_lr"):
        PTBXLDataset(data_dir=root, cache_dir=tmp_path / "c").load("train")
    (root / "records100/00000/00004_lr.dat").unlink()
    with pytest.raises(DataError, match="00004_lr.dat is missing"):
        PTBXLDataset(data_dir=root, cache_dir=tmp_path / "c").load("train")


def test_ptbxl_cache_key_follows_source_files(tmp_path):
    root = small_ptbxl(tmp_path)
    d = PTBXLDataset(data_dir=root, cache_dir=tmp_path / "c")
    before = d.load("test").x.copy()
    dat = root / "records100/00000/00003_lr.dat"
    raw = bytearray(dat.read_bytes())
    raw[100:110] = bytes(10)  # change samples of record 3 (fold 10 = test)
    dat.write_bytes(bytes(raw))
    after = PTBXLDataset(data_dir=root, cache_dir=tmp_path / "c").load("test").x
    assert not np.array_equal(before, after)
    assert len(list((tmp_path / "c" / "datasets").iterdir())) == 2


def test_missing_data_dir_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("ECGARENA_DATA", raising=False)
    with pytest.raises(UserError, match="needs --data-dir"):
        PTBXLDataset(cache_dir=tmp_path).load("train")
    with pytest.raises(UserError, match="does not exist"):
        PTBXLDataset(data_dir=tmp_path / "nope", cache_dir=tmp_path).load("train")
    with pytest.raises(UserError, match="no ptbxl_database.csv"):
        PTBXLDataset(data_dir=tmp_path, cache_dir=tmp_path).load("train")
    with pytest.raises(UserError, match="unknown split"):
        PTBXLDataset(data_dir=tmp_path, cache_dir=tmp_path).load("holdout")


def test_mitdb_record_100_beats_by_aami_class(tmp_path):
    d = MITDBDataset(data_dir=real_data("mitdb"), cache_dir=tmp_path)
    info = d.describe()
    assert info["records"] == ["100"]
    assert info["class_counts"] == {"N": 2237, "S": 33, "V": 1, "F": 0, "Q": 0}
    assert info["split_rule"].startswith("intra-patient")
    train = d.load("train")
    assert train.x.shape[1:] == (1, 252) and train.y.dtype == np.int64
    # windows are centred on R peaks: the peak sits at the pre-window offset
    assert np.median(np.abs(train.x[:, 0, :]).argmax(axis=1)) == pytest.approx(90, abs=3)


def renamed_record(src: Path, dst: Path, old: str, new: str) -> None:
    """FIXTURE: copy a real MIT-BIH record under another record number (header rewritten)."""
    header = (src / f"{old}.hea").read_text().replace(f"{old}.dat", f"{new}.dat")
    header = (
        header.replace(f"\n{old} ", f"\n{new} ", 1)
        if not header.startswith(old)
        else header.replace(old, new, 1)
    )
    (dst / f"{new}.hea").write_text(header)
    shutil.copy(src / f"{old}.dat", dst / f"{new}.dat")
    shutil.copy(src / f"{old}.atr", dst / f"{new}.atr")


def test_mitdb_inter_patient_split_when_ds1_and_ds2_present(tmp_path):
    src, root = real_data("mitdb"), tmp_path / "mitdb"
    root.mkdir()
    renamed_record(src, root, "100", "100")
    renamed_record(src, root, "100", "101")  # fixture: record 100's data filed as DS1 record 101
    d = MITDBDataset(data_dir=root, cache_dir=tmp_path / "c")
    info = d.describe()
    assert info["split_rule"] == "inter-patient DS1/DS2"
    assert all(i.startswith("100:") for i in d.load("test").ids)
    assert all(i.startswith("101:") for i in d.load("train").ids + d.load("val").ids)


def test_mitdb_unlabelled_records_are_reported_not_used(tmp_path):
    d = MITDBDataset(data_dir=real_data("mitdb_noann"), cache_dir=tmp_path)
    with pytest.raises(DataError, match="no .atr beat annotations"):
        d.load("train")
    assert "104" in d.records()[1]


def test_mitdb_corrupt_annotation(tmp_path):
    root = tmp_path / "mitdb"
    root.mkdir()
    renamed_record(real_data("mitdb"), root, "100", "100")
    (root / "100.atr").write_bytes(b"\x00\x01garbage")
    with pytest.raises(DataError, match="100"):
        MITDBDataset(data_dir=root, cache_dir=tmp_path / "c").load("train")
