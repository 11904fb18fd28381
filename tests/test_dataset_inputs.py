"""Bad input a new user may have, on folders built in tmp from copies of a few real records:
each is one DataError naming the bad value and what is valid, and through the CLI one line
with exit code 2 and no traceback."""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from ecgarena.cli import app
from ecgarena.datasets.ptbxl import PTBXLDataset
from ecgarena.errors import DataError
from typer.testing import CliRunner

from .conftest import real_data
from .test_datasets import small_ptbxl
from .test_datasets_more import write_kaggle_csv


def cli_error(args: list[str]) -> str:
    """The CLI's answer to `args`, checked to be one error line with exit code 2."""
    out = CliRunner().invoke(app, args)
    text = out.output.strip()
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output and len(text.splitlines()) == 1, out.output
    assert text.startswith("error: ")
    return text


def info_error(name: str, root: Path, home: Path) -> str:
    return cli_error(["data", "info", name, "--data-dir", str(root), "--home", str(home)])


def edit_csv(path: Path, change: Callable[[list[list[str]]], list[list[str]]]) -> None:
    """FIXTURE: rewrite a copied CSV's rows (row 0 is the header where there is one)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(change(rows))


def cell(row: list[str], index: int, value: str) -> list[str]:
    """A copy of `row` with field `index` replaced."""
    return [value if i == index else v for i, v in enumerate(row)]


# ---------------------------------------------------------------- PTB-XL


def fold_at(rows: list[list[str]], i: int, value: str) -> list[list[str]]:
    """`rows` with row `i`'s strat_fold set to `value`."""
    col = rows[0].index("strat_fold")
    return [cell(r, col, value) if k == i else r for k, r in enumerate(rows)]


PTBXL_CASES = {
    "blank_fold": (
        lambda rows: fold_at(rows, 3, ""),
        "ptbxl_database.csv line 4: strat_fold of record 3 is blank (valid: 1–10)",
    ),
    "bad_fold": (
        lambda rows: fold_at(rows, 1, "11"),
        "ptbxl_database.csv line 2: strat_fold '11' of record 1 is not a fold (valid: 1–10)",
    ),
    "header_only": (
        lambda rows: rows[:1],
        "ptbxl_database.csv has no records, only a header (valid: PTB-XL's "
        "ptbxl_database.csv, one row per record)",
    ),
    "empty": (
        lambda rows: [],
        "ptbxl_database.csv is empty (valid: PTB-XL's ptbxl_database.csv, a header and one "
        "row per record)",
    ),
}


@pytest.fixture
def ptbxl_copy(tmp_path) -> Path:
    return small_ptbxl(tmp_path)


@pytest.mark.parametrize("case", sorted(PTBXL_CASES))
def test_ptbxl_database_bad_rows_through_data_info_and_run(ptbxl_copy, tmp_path, case):
    change, message = PTBXL_CASES[case]
    edit_csv(ptbxl_copy / "ptbxl_database.csv", change)
    line = info_error("ptbxl", ptbxl_copy, tmp_path / "home")
    assert line == f"error: {ptbxl_copy / message}"
    run = ["run", "--dataset", "ptbxl", "--data-dir", str(ptbxl_copy), "--attack", "fgsm"]
    assert cli_error([*run, "--epochs", "1", "--home", str(tmp_path / "home")]) == line


def test_ptbxl_blank_path_bad_scp_codes_and_unreadable_csv(ptbxl_copy, tmp_path):
    db = ptbxl_copy / "ptbxl_database.csv"
    original = db.read_bytes()
    edit_csv(db, lambda rows: [rows[0], cell(rows[1], rows[0].index("filename_lr"), ""), *rows[2:]])
    assert info_error("ptbxl", ptbxl_copy, tmp_path / "h").endswith(
        "line 2: filename_lr of record 1 is blank (valid: a record path, e.g. "
        "records100/00000/00001_lr)"
    )
    db.write_bytes(original.replace(b"\"{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}\"", b"5", 1))
    with pytest.raises(DataError, match=re.escape("PTB-XL record 1: unreadable scp_codes '5'")):
        PTBXLDataset(data_dir=ptbxl_copy, cache_dir=tmp_path / "c").load("train")
    db.write_bytes(b"\xff\xfe" + original)
    assert "ptbxl_database.csv: cannot be read as CSV (UnicodeDecodeError" in info_error(
        "ptbxl", ptbxl_copy, tmp_path / "h"
    )


def test_ptbxl_scp_statements_header_only_and_no_superclass(ptbxl_copy, tmp_path):
    scp = ptbxl_copy / "scp_statements.csv"
    original = scp.read_text()
    edit_csv(scp, lambda rows: rows[:1])
    assert info_error("ptbxl", ptbxl_copy, tmp_path / "h") == (
        f"error: {scp} has no records, only a header (valid: PTB-XL's scp_statements.csv, "
        "one row per record)"
    )
    scp.write_text(original.replace(",1.0,", ",0.0,"))  # no statement is diagnostic any more
    assert "has a diagnostic superclass (valid: scp codes with diagnostic 1.0" in info_error(
        "ptbxl", ptbxl_copy, tmp_path / "h"
    )


# ---------------------------------------------------------------- CinC 2017


def cinc2017_copy(tmp_path: Path) -> Path:
    """FIXTURE: the first 8 real CinC 2017 records with their REFERENCE rows and RECORDS."""
    src, root = real_data("cinc2017"), tmp_path / "cinc2017"
    root.mkdir()
    rows = (src / "REFERENCE.csv").read_text().splitlines()[:8]
    for row in rows:
        for ext in (".hea", ".mat"):
            shutil.copy(src / f"{row.split(',')[0]}{ext}", root)
    (root / "REFERENCE.csv").write_text("\n".join(rows) + "\n")
    (root / "RECORDS").write_text("".join(f"{r.split(',')[0]}\n" for r in rows))
    return root


@pytest.mark.parametrize(
    "case, message",
    [
        ("blank_label", "REFERENCE.csv line 3: label '' of A00003 is unknown (valid: N, A, O, ~)"),
        ("blank_name", "REFERENCE.csv line 2: the record name is blank (valid: one 'name,label'"),
        ("empty_reference", "REFERENCE.csv has no records (valid: one 'name,label' row"),
        ("empty_records", "RECORDS lists no records (valid: one name a line)"),
    ],
)
def test_cinc2017_blank_fields_and_empty_files(tmp_path, case, message):
    root = cinc2017_copy(tmp_path)
    ref = root / "REFERENCE.csv"
    if case == "blank_label":
        edit_csv(ref, lambda rows: [*rows[:2], cell(rows[2], 1, ""), *rows[3:]])
    elif case == "blank_name":
        edit_csv(ref, lambda rows: [rows[0], cell(rows[1], 0, ""), *rows[2:]])
    elif case == "empty_reference":
        ref.write_text("\n")
        (root / "RECORDS").unlink()
    else:
        (root / "RECORDS").write_text("")
    assert info_error("cinc2017", root, tmp_path / "h").startswith(f"error: {root / message}")


# ---------------------------------------------------------------- CPSC 2018


def cpsc2018_copy(tmp_path: Path) -> Path:
    """FIXTURE: three real CPSC 2018 records and the REFERENCE.csv header and their rows."""
    src, root = real_data("cpsc2018"), tmp_path / "cpsc2018"
    root.mkdir()
    names = ("A1980", "A1981", "A1982")
    for name in names:
        shutil.copy(src / f"{name}.mat", root)
    lines = (src / "REFERENCE.csv").read_text().splitlines()
    keep = [ln for ln in lines[1:] if ln.split(",")[0] in names]
    (root / "REFERENCE.csv").write_text("\n".join([lines[0], *keep]) + "\n")
    return root


@pytest.mark.parametrize(
    "case, message",
    [
        (
            "header_only",
            "REFERENCE.csv has no records, only a header (valid: "
            "Recording,First_label,Second_label,Third_label, a row per record)",
        ),
        ("blank_first", "REFERENCE.csv line 3: First_label of A1981 is blank (valid: 1–9 = "),
        ("blank_recording", "REFERENCE.csv line 2: Recording is blank (valid: a name"),
    ],
)
def test_cpsc2018_blank_fields_and_header_only(tmp_path, case, message):
    root = cpsc2018_copy(tmp_path)
    ref = root / "REFERENCE.csv"
    if case == "header_only":
        edit_csv(ref, lambda rows: rows[:1])
    elif case == "blank_first":  # A1981,8,, → A1981,,8, : the label moved out of First_label
        edit_csv(ref, lambda rows: [*rows[:2], ["A1981", "", "8", ""], *rows[3:]])
    else:
        edit_csv(ref, lambda rows: [rows[0], cell(rows[1], 0, ""), *rows[2:]])
    assert info_error("cpsc2018", root, tmp_path / "h").startswith(f"error: {root / message}")


# ---------------------------------------------------------------- MIT-BIH beats, Kaggle CSV


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty", "mitbih_train.csv has no rows (valid: rows of 187 numbers and a label 0–4"),
        ("blank_value", "mitbih_train.csv line 3 column 5: '' is not a number (valid: rows of"),
        ("blank_label", "mitbih_train.csv line 2 column 188: '' is not a number"),
        ("header", "mitbih_train.csv line 1 column 1: 'c0' is not a number"),
    ],
)
def test_mitdb_beats_kaggle_csv_blank_cells_and_empty_file(tmp_path, case, message):
    root = tmp_path / "kaggle"
    root.mkdir()
    train = root / "mitbih_train.csv"
    write_kaggle_csv(train, 10, 0)
    write_kaggle_csv(root / "mitbih_test.csv", 5, 1)
    if case == "empty":
        train.write_text("")
    elif case == "blank_value":
        edit_csv(train, lambda rows: [*rows[:2], cell(rows[2], 4, ""), *rows[3:]])
    elif case == "blank_label":
        edit_csv(train, lambda rows: [rows[0], cell(rows[1], 187, ""), *rows[2:]])
    else:
        edit_csv(train, lambda rows: [[f"c{i}" for i in range(188)], *rows])
    assert info_error("mitdb-beats", root, tmp_path / "h").startswith(f"error: {root / message}")


# ---------------------------------------------------------------- WFDB headers (CinC 2021, MIT-BIH)


def cinc2021_copy(tmp_path: Path) -> Path:
    """FIXTURE: four real Georgia records of CinC 2021."""
    src, root = real_data("cinc2021"), tmp_path / "cinc2021"
    root.mkdir()
    for name in ("E07500", "E07501", "E07502", "E07503"):
        for ext in (".hea", ".mat"):
            shutil.copy(src / f"{name}{ext}", root)
    return root


@pytest.mark.parametrize(
    "case, message",
    [
        (
            "record_line_only",
            "E07501.hea: 0 signal lines, the record line declares 12 (valid: one line per signal)",
        ),
        ("empty", "E07501.hea is empty (valid: a record line NAME NSIG FS NSAMP"),
        ("blank_fs", "E07501.hea: record line 'E07501 12 5000' lacks a field (valid: NAME NSIG"),
        ("blank_gain", "E07501.hea: signal line 'E07501.mat 16x1+24 16 0 126 -21611 0 I' has 8"),
        ("blank_dx", "E07501: blank Dx line '# Dx:' (valid: SNOMED-CT codes separated by commas"),
    ],
)
def test_cinc2021_headers_with_blank_fields(tmp_path, case, message):
    root = cinc2021_copy(tmp_path)
    hea = root / "E07501.hea"
    text = hea.read_text()
    first_signal = text.splitlines()[1]
    edited = {
        "record_line_only": text.splitlines()[0] + "\n",
        "empty": "",
        "blank_fs": text.replace("E07501 12 500 5000", "E07501 12  5000", 1),
        "blank_gain": text.replace(first_signal, first_signal.replace(" 1000.0(0)/mV", " ")),
        "blank_dx": re.sub(r"# Dx:.*", "# Dx:", text),
    }[case]
    hea.write_text(edited)
    line = info_error("cinc2021", root, tmp_path / "h")
    assert message in line and (str(hea) in line or "CinC 2021 record E07501" in line)


def test_mitdb_header_with_a_blank_field(tmp_path):
    root = tmp_path / "mitdb"
    shutil.copytree(real_data("mitdb"), root)
    hea = root / "100.hea"
    hea.write_text(hea.read_text().replace("100 2 360 650000", "100 2  650000"))
    assert info_error("mitdb", root, tmp_path / "h") == (
        f"error: header {hea}: record line '100 2 650000' lacks a field "
        "(valid: NAME NSIG FS NSAMP, e.g. 00001_lr 12 100 1000)"
    )
