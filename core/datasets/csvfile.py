"""Reading a data folder's CSV tables, every failure a one-line DataError."""

from __future__ import annotations

import csv
from pathlib import Path

from ..errors import DataError


def read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file, each with the (last) line number it ends on."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            return [(reader.line_num, row) for row in reader if "".join(row).strip()]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot be read as CSV ({type(e).__name__}: {e})") from None


def read_table(path: Path, need: set[str], what: str) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header as dicts (missing cells ''), checked for the `need` columns
    and for at least one record; `what` names the file's role in the messages."""
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path} is empty (valid: {what}, a header and one row per record)")
    head = [h.strip() for h in rows[0][1]]
    missing = need - set(head)
    if missing:
        raise DataError(f"{path} lacks columns {sorted(missing)}: is it {what}?")
    if len(rows) == 1:
        raise DataError(f"{path} has no records, only a header (valid: {what}, one row per record)")
    return [
        (line, {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(head)})
        for line, row in rows[1:]
    ]
