"""CinC 2017, CPSC 2018 and Kachuee-style MIT-BIH beats: real data (skipped when absent),
fixtures written here in the exact on-disk formats, pad/crop properties and the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from ecgarena.cli import app
from ecgarena.datasets.cinc2017 import CinC2017Dataset
from ecgarena.datasets.cpsc2018 import CPSC2018Dataset
from ecgarena.datasets.framing import fit_length, stratified_split
from ecgarena.datasets.mitdb_beats import MITDBBeatsDataset
from ecgarena.errors import DataError, UserError
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from .conftest import real_data

CINC_COUNTS = {"N": 150, "A": 50, "O": 70, "~": 30}


# ---------------------------------------------------------------- pad / crop / split properties


@settings(max_examples=60, deadline=None)
@given(
    leads=st.integers(1, 3),
    length=st.integers(0, 60),
    n=st.integers(1, 60),
    pad=st.sampled_from(["both", "end"]),
    seed=st.integers(0, 2**16),
)
def test_fit_length_shape_content_and_no_in_place_change(leads, length, n, pad, seed):
    x = np.random.default_rng(seed).normal(size=(leads, length)).astype(np.float32)
    before = x.copy()
    out = fit_length(x, n, pad)
    assert out.shape == (leads, n) and out.dtype == x.dtype
    assert np.array_equal(x, before) and not np.shares_memory(out, x)
    if length >= n:
        assert np.array_equal(out, x[:, :n])  # crop keeps the first n samples
    else:
        r = n - length
        start = r // 2 if pad == "both" else 0
        assert np.array_equal(out[:, start : start + length], x)
        assert not out[:, :start].any() and not out[:, start + length :].any()
    out[...] = 7  # the result is a fresh array
    assert np.array_equal(x, before)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=0, max_size=80),
    seed=st.integers(0, 1000),
    fractions=st.sampled_from([(0.7, 0.1, 0.2), (0.8, 0.2, 0.0), (0.6, 0.2, 0.2)]),
)
def test_stratified_split_is_a_seeded_partition(labels, seed, fractions):
    y = np.array(labels, np.int64)
    idx = stratified_split(y, fractions, seed)
    joined = np.concatenate(list(idx.values()))
    assert sorted(joined.tolist()) == list(range(len(y)))  # disjoint and complete
    again = stratified_split(y, fractions, seed)
    assert all(np.array_equal(idx[s], again[s]) for s in idx)
    if len(y) >= 3:
        for s, f in zip(("train", "val", "test"), fractions):
            assert (len(idx[s]) > 0) == (f > 0)  # non-empty exactly when asked for


def test_stratified_split_keeps_class_shares():
    y = np.repeat(np.arange(4), [150, 50, 70, 30])
    idx = stratified_split(y, (0.7, 0.1, 0.2), 0)
    assert {s: len(i) for s, i in idx.items()} == {"train": 210, "val": 30, "test": 60}
    assert np.bincount(y[idx["test"]]).tolist() == [30, 10, 14, 6]


# ---------------------------------------------------------------- CinC 2017: real data + CLI


@pytest.fixture(scope="module")
def cinc_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cinc-home")


def test_cinc2017_real_validation_set(cinc_home):
    root = real_data("cinc2017")
    d = CinC2017Dataset(data_dir=root, cache_dir=cinc_home / "cache")
    info = d.describe()
    assert info["records"] == 300 and info["class_counts"] == CINC_COUNTS
    assert info["split_sizes"] == {"train": 210, "val": 30, "test": 60}
    assert info["split_class_counts"]["test"] == {"N": 30, "A": 10, "O": 14, "~": 6}
    assert "mV" in info["units"] and "both sides" in info["length_rule"]
    train = d.load("train")
    assert train.x.shape[1:] == (1, 18000) and train.x.dtype == np.float32
    assert train.y.dtype == np.int64 and set(np.unique(train.y)) == {0, 1, 2, 3}
    # µV integers became mV: QRS peaks of ~1 mV
    assert 0.3 < np.median(np.abs(train.x).max(axis=2)) < 5
    # A00001: 9000 samples of µV, zero-padded on both sides to 18 000
    val = scipy.io.loadmat(root / "A00001.mat")["val"][0]
    split = next(s for s in ("train", "val", "test") if "A00001" in d.load(s).ids)
    x = d.load(split).x[d.load(split).ids.index("A00001"), 0]
    np.testing.assert_allclose(x[4500:13500], val / 1000, atol=1e-6)
    assert not x[:4500].any() and not x[13500:].any()


def test_cli_data_info_cinc2017_real_counts(cinc_home):
    runner = CliRunner()
    args = ["data", "info", "cinc2017", "--data-dir", str(real_data("cinc2017"))]
    out = runner.invoke(app, [*args, "--home", str(cinc_home), "--json"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    described = json.loads(out.stdout)
    assert described["records"] == 300 and described["class_counts"] == CINC_COUNTS
    table = runner.invoke(app, [*args, "--home", str(cinc_home)], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    for word in ("N: 150", "A: 50", "O: 70", "~: 30", "18000"):
        assert word in table.output


# ---------------------------------------------------------------- CinC 2017: on-disk fixtures


def write_cinc_record(
    root: Path,
    name: str,
    val: np.ndarray,
    gain: str = "1000/mV",
    fs: str = "300",
    n_samples: int | None = None,
) -> None:
    """FIXTURE: one record in the CinC 2017 layout (MATLAB v4 `val` int16, CRLF header whose
    base date comes before the time, as in the real files)."""
    scipy.io.savemat(root / f"{name}.mat", {"val": val.reshape(1, -1)}, format="4")
    n = len(val) if n_samples is None else n_samples
    header = (
        f"{name} 1 {fs} {n} 2014-04-15 03:04:41 \r\n"
        f"{name}.mat 16+24 {gain} 16 0 {int(val[0]) if len(val) else 0} 0 0 ECG \r\n"
    )
    (root / f"{name}.hea").write_text(header, newline="")


def cinc_folder(tmp_path: Path, per_class: int = 3) -> Path:
    """FIXTURE: a CinC 2017 folder, `per_class` records of each class, values i·100 µV + t."""
    root = tmp_path / "cinc2017"
    root.mkdir()
    names, rows = [], []
    for k, label in enumerate("NAO~"):
        for j in range(per_class):
            i = k * per_class + j
            name = f"A{i:05d}"
            val = (np.arange(300 * (2 + i)) % 500 + i * 100).astype(np.int16)
            write_cinc_record(root, name, val)
            names.append(name)
            rows.append(f"{name},{label}")
    (root / "RECORDS").write_text("\n".join(names) + "\n")
    (root / "REFERENCE.csv").write_text("\n".join(rows) + "\n")
    return root


def test_cinc2017_fixture_units_length_and_splits(tmp_path):
    root = cinc_folder(tmp_path)
    # one record with baseline 10 and gain 500/mV: (val − 10) / 500 mV
    write_cinc_record(root, "A00000", np.full(600, 510, np.int16), gain="500(10)/mV")
    d = CinC2017Dataset(data_dir=root, cache_dir=tmp_path / "c", length_s=3, pad="end")
    info = d.describe()
    assert info["records"] == 12 and info["class_counts"] == {"N": 3, "A": 3, "O": 3, "~": 3}
    assert info["records_padded"] == 1 and info["records_cropped"] == 10  # A00001 fits exactly
    assert all(v > 0 for v in info["split_sizes"].values())
    xs = {i: x for s in ("train", "val", "test") for i, x in zip(d.load(s).ids, d.load(s).x)}
    assert xs["A00000"].shape == (1, 900)
    np.testing.assert_allclose(xs["A00000"][0, :600], 1.0)  # (510 − 10) / 500
    assert not xs["A00000"][0, 600:].any()  # pad="end"
    expected = (np.arange(900) % 500 + 500) / 1000  # A00005 cropped to its first 900 samples
    np.testing.assert_allclose(xs["A00005"][0], expected, atol=1e-6)


def test_cinc2017_splits_follow_seed(tmp_path):
    root = cinc_folder(tmp_path, per_class=10)
    ids = {
        seed: CinC2017Dataset(data_dir=root, cache_dir=tmp_path / "c", seed=seed).load("test").ids
        for seed in (0, 1)
    }
    assert len(ids[0]) == 8 and ids[0] != ids[1]
    with pytest.raises(ValidationError, match="sum to 1"):
        CinC2017Dataset(data_dir=root, train=0.5, val=0.1, test=0.1)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncated_mat", "A00004.mat: cannot be read"),
        ("nan_values", "A00004.mat: contains NaN"),
        ("short_mat", "header says 1800 samples"),
        ("bad_gain", "bad gain field 'abc/mV'"),
        ("bad_fs", "sampling rate 250 Hz, expected 300 Hz"),
        ("bad_record_line", "bad record line"),
        ("two_signals", "2 signals, expected 1"),
        ("unknown_label", "line 5: label 'X' of A00004 is unknown (valid: N, A, O, ~)"),
        ("unlabelled", "record A00004 has no label"),
        ("missing_mat", "A00004.mat is missing"),
    ],
)
def test_cinc2017_corrupt_files_are_clear_errors(tmp_path, damage, message):
    root = cinc_folder(tmp_path)
    mat, hea, ref = root / "A00004.mat", root / "A00004.hea", root / "REFERENCE.csv"
    if damage == "truncated_mat":
        mat.write_bytes(mat.read_bytes()[:100])
    elif damage == "nan_values":
        scipy.io.savemat(mat, {"val": np.full((1, 1800), np.nan)}, format="4")
    elif damage == "short_mat":
        scipy.io.savemat(mat, {"val": np.zeros((1, 1000), np.int16)}, format="4")
    elif damage == "bad_gain":
        hea.write_text(hea.read_text().replace("1000/mV", "abc/mV"))
    elif damage == "bad_fs":
        hea.write_text(hea.read_text().replace(" 300 ", " 250 ", 1))
    elif damage == "bad_record_line":
        hea.write_text(hea.read_text().replace(" 1800 ", " many ", 1))
    elif damage == "two_signals":
        hea.write_text(hea.read_text().replace("A00004 1 ", "A00004 2 ", 1))
    elif damage == "unknown_label":
        ref.write_text(ref.read_text().replace("A00004,A", "A00004,X"))
    elif damage == "unlabelled":
        ref.write_text("\n".join(ln for ln in ref.read_text().splitlines() if "A00004" not in ln))
    elif damage == "missing_mat":
        mat.unlink()
    with pytest.raises(DataError, match=re.escape(message)):
        CinC2017Dataset(data_dir=root, cache_dir=tmp_path / "c").load("train")


def test_cinc2017_cache_follows_sources_and_folder_check(tmp_path):
    root = cinc_folder(tmp_path)
    d = CinC2017Dataset(data_dir=root, cache_dir=tmp_path / "c", length_s=2)
    before = {s: d.load(s).x.copy() for s in ("train", "val", "test")}
    write_cinc_record(root, "A00004", np.full(1800, 2000, np.int16))
    again = CinC2017Dataset(data_dir=root, cache_dir=tmp_path / "c", length_s=2)
    after = {s: again.load(s).x for s in ("train", "val", "test")}
    assert any(not np.array_equal(before[s], after[s]) for s in before)
    with pytest.raises(UserError, match="no REFERENCE.csv"):
        CinC2017Dataset(data_dir=tmp_path / "c", cache_dir=tmp_path / "c").load("train")


# ---------------------------------------------------------------- CPSC 2018


def test_cpsc2018_real_subset(tmp_path):
    root = real_data("cpsc2018")
    d = CPSC2018Dataset(data_dir=root, cache_dir=tmp_path)
    info = d.describe()
    assert info["records_found"] == 10 and info["records_listed"] == 6877
    counts = {"Normal": 1, "I-AVB": 3, "RBBB": 2, "PAC": 1, "STD": 3}
    assert {k: v for k, v in info["class_counts"].items() if v} == counts
    assert all(v > 0 for v in info["split_sizes"].values())
    assert sum(info["split_sizes"].values()) == 10
    assert info["units"].startswith("mV") and d.info.task == "multiclass"
    xs = {i: x for s in ("train", "val", "test") for i, x in zip(d.load(s).ids, d.load(s).x)}
    assert xs["A1980"].shape == (12, 15000) and xs["A1980"].dtype == np.float32
    raw = scipy.io.loadmat(root / "A1980.mat", squeeze_me=True, struct_as_record=False)["ECG"].data
    start = (15000 - raw.shape[1]) // 2  # 5000 samples centred in 15 000
    np.testing.assert_allclose(xs["A1980"][:, start : start + 5000], raw, atol=1e-6)
    assert 0.3 < np.median([np.abs(x).max() for x in xs.values()]) < 10  # mV
    eight = CPSC2018Dataset(data_dir=root, cache_dir=tmp_path, leads="8", labels="all")
    train = eight.load("train")
    assert train.x.shape[1:] == (8, 15000) and eight.info.leads[2] == "V1"
    assert train.y.shape[1:] == (9,) and eight.info.task == "multilabel"


def write_cpsc_record(root: Path, name: str, data: np.ndarray, sex="Male", age=50) -> None:
    """FIXTURE: one record in the original CPSC 2018 layout (MATLAB v5 struct ECG)."""
    scipy.io.savemat(root / f"{name}.mat", {"ECG": {"sex": sex, "age": age, "data": data}})


def cpsc_folder(tmp_path: Path) -> Path:
    """FIXTURE: 6 CPSC records (lead k holds the constant k/10 mV, 2–4 s) and a REFERENCE.csv
    listing two more records that are absent, one with a label outside 1–9."""
    root = tmp_path / "cpsc2018"
    root.mkdir()
    rows = ["Recording,First_label,Second_label,Third_label"]
    for i, labels in enumerate(["1,,", "1,,", "2,7,", "2,,", "5,1,9", "5,,"]):
        data = np.repeat(np.arange(12)[:, None] / 10, 1000 + 500 * (i % 3), axis=1)
        write_cpsc_record(root, f"A{i:04d}", data)
        rows.append(f"A{i:04d},{labels}")
    rows += ["A0100,3,,", "A0101,10,,"]
    (root / "REFERENCE.csv").write_text("\r\n".join(rows) + "\r\n")
    return root


def test_cpsc2018_fixture_leads_labels_length(tmp_path):
    root = cpsc_folder(tmp_path)
    d = CPSC2018Dataset(data_dir=root, cache_dir=tmp_path / "c", length_s=3, leads="8")
    info = d.describe()
    assert info["records_found"] == 6 and info["records_listed"] == 8
    assert info["listed_rows_with_labels_outside_1_9"] == 1
    assert info["class_counts"]["Normal"] == 2 and info["label_counts_all"]["Normal"] == 3
    assert all(v > 0 for v in info["split_sizes"].values())
    x = {i: v for s in ("train", "val", "test") for i, v in zip(d.load(s).ids, d.load(s).x)}
    np.testing.assert_allclose(
        x["A0002"][:, 0], [0, 0.1, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]
    )  # I,II,V1-6
    np.testing.assert_allclose(x["A0001"][2], 0.6)  # 1500 samples = 3 s: neither pad nor crop
    assert not x["A0000"][:, :250].any() and x["A0000"][2, 250:1250].min() == pytest.approx(0.6)
    multi = CPSC2018Dataset(data_dir=root, cache_dir=tmp_path / "c", labels="all")
    y = {i: v for s in ("train", "val", "test") for i, v in zip(multi.load(s).ids, multi.load(s).y)}
    assert y["A0004"].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 1] and y["A0002"][6] == 1


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncated", "A0003.mat: cannot be read"),
        ("nan", "A0003.mat: contains NaN"),
        ("transposed", r"shape \(1000, 12\), expected 12 leads"),
        ("microvolts", "looks like µV"),
        ("no_struct", "no struct 'ECG'"),
        ("unlisted", "record A0003.mat has no row"),
        ("unknown_label", "label '12' of A0003 is unknown"),
        ("bad_header", "valid: Recording,First_label"),
    ],
)
def test_cpsc2018_corrupt_files_are_clear_errors(tmp_path, damage, message):
    root = cpsc_folder(tmp_path)
    mat, ref = root / "A0003.mat", root / "REFERENCE.csv"
    data = np.repeat(np.arange(12)[:, None] / 10, 1000, axis=1)
    if damage == "truncated":
        mat.write_bytes(mat.read_bytes()[:300])
    elif damage == "nan":
        data[3, 10] = np.nan
        write_cpsc_record(root, "A0003", data)
    elif damage == "transposed":
        write_cpsc_record(root, "A0003", data.T)
    elif damage == "microvolts":
        write_cpsc_record(root, "A0003", (data * 1000 + 100).astype(np.int16))
    elif damage == "no_struct":
        scipy.io.savemat(mat, {"val": data})
    elif damage == "unlisted":
        ref.write_text(ref.read_text().replace("A0003,2,,", ""))
    elif damage == "unknown_label":
        ref.write_text(ref.read_text().replace("A0003,2,,", "A0003,12,,"))
    elif damage == "bad_header":
        ref.write_text(ref.read_text().replace("Recording,First_label", "id,label"))
    with pytest.raises(DataError, match=message):
        CPSC2018Dataset(data_dir=root, cache_dir=tmp_path / "c").load("train")


# ---------------------------------------------------------------- MIT-BIH beats (Kachuee / Kaggle)


def test_mitdb_beats_real_record_100(tmp_path):
    d = MITDBBeatsDataset(data_dir=real_data("mitdb"), cache_dir=tmp_path)
    info = d.describe()
    assert info["records"] == ["100"] and info["units"] == "mV"
    assert info["class_counts"] == {"N": 2237, "S": 33, "V": 1, "F": 0, "Q": 0}
    assert info["split_rule"].startswith("intra-patient")
    train = d.load("train")
    assert train.x.shape[1:] == (1, 187) and d.info.fs == 125 and train.y.dtype == np.int64
    x = train.x[:, 0, :]
    # windows start at the R peak: the beat's largest value sits in its first samples
    assert np.median(np.abs(x[:, :60]).argmax(axis=1)) <= 2
    # 1.2 × R–R (~ 0.8 s at 125 Hz ≈ 120 samples) of signal, then zeros up to 187
    nonzero = (x != 0).sum(axis=1)
    assert 90 < np.median(nonzero) < 160 and not x[:, 170:].any()
    fixed = MITDBBeatsDataset(data_dir=real_data("mitdb"), cache_dir=tmp_path, segment="fixed")
    assert (fixed.load("train").x[:, 0, 170:] != 0).any(axis=1).mean() > 0.99


def write_kaggle_csv(path: Path, n: int, seed: int) -> None:
    """FIXTURE (not the Kaggle data): rows of 187 values in [0, 1] + a label 0–4, the layout of
    Kaggle's mitbih_train.csv / mitbih_test.csv (floats in %.18e, label as 0.000…e+00)."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, size=(n, 187))
    values[:, 150:] = 0.0  # zero padding as in the real rows
    labels = np.arange(n) % 5
    np.savetxt(path, np.column_stack([values, labels]), delimiter=",")


def test_mitdb_beats_kaggle_csv_layout(tmp_path):
    root = tmp_path / "kaggle"
    root.mkdir()
    write_kaggle_csv(root / "mitbih_train.csv", 100, 0)
    write_kaggle_csv(root / "mitbih_test.csv", 25, 1)
    d = MITDBBeatsDataset(data_dir=root, cache_dir=tmp_path / "c")
    info = d.describe()
    assert "NOT mV" in info["units"] and info["source"].startswith("Kaggle CSV")
    assert info["split_sizes"] == {"train": 90, "val": 10, "test": 25}
    assert info["class_counts"] == {"N": 25, "S": 25, "V": 25, "F": 25, "Q": 25}
    assert info["split_class_counts"]["val"] == dict.fromkeys("NSVFQ", 2)
    test = d.load("test")
    assert test.x.shape == (25, 1, 187) and test.ids[0] == "test:0"
    assert test.y.tolist() == [i % 5 for i in range(25)]
    raw = np.loadtxt(root / "mitbih_test.csv", delimiter=",")
    np.testing.assert_allclose(test.x[:, 0], raw[:, :187], atol=1e-6)
    assert set(d.load("train").ids).isdisjoint(d.load("val").ids)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("nan", "mitbih_train.csv line 4: NaN"),
        ("label", "mitbih_train.csv line 3: label 7 is unknown"),
        ("columns", "100 columns, expected 187 values"),
        ("text", "mitbih_train.csv line 2: 1 columns, expected 187 values"),
        ("no_test", "mitbih_test.csv is missing"),
    ],
)
def test_mitdb_beats_kaggle_csv_errors(tmp_path, damage, message):
    root = tmp_path / "kaggle"
    root.mkdir()
    train, test = root / "mitbih_train.csv", root / "mitbih_test.csv"
    write_kaggle_csv(train, 10, 0)
    write_kaggle_csv(test, 5, 1)
    lines = train.read_text().splitlines()
    if damage == "nan":
        lines[3] = "nan," + lines[3].split(",", 1)[1]
    elif damage == "label":
        lines[2] = lines[2].rsplit(",", 1)[0] + ",7.0"
    elif damage == "columns":
        lines = [",".join(ln.split(",")[:100]) for ln in lines]
    elif damage == "text":
        lines[1] = "garbage"
    elif damage == "no_test":
        test.unlink()
    train.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message):
        MITDBBeatsDataset(data_dir=root, cache_dir=tmp_path / "c").load("train")


def test_mitdb_beats_csv_source_needs_the_csvs(tmp_path):
    root = tmp_path / "mitdb"
    root.mkdir()
    shutil.copy(real_data("mitdb") / "100.hea", root)
    with pytest.raises(DataError, match="mitbih_train.csv is missing"):
        MITDBBeatsDataset(data_dir=root, cache_dir=tmp_path / "c", source="csv").load("train")
