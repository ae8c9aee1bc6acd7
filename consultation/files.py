"""Reading the files coordinators write by hand: one way to fail, naming the file and the line.

The consultation definition, the participants' CSV, the findings file and the paper ballots all
come through here, so every one of them reports an unreadable file, a wrong encoding, a missing
column or a malformed CSV line in the same words.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from consultation.errors import DefinitionError


def read_text(path: str | Path) -> str:
    """The file's text; a missing file or one that is not UTF-8 is a `DefinitionError`."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(str(path), None, f"cannot read the file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            str(path), None, "not UTF-8 text (save it as CSV UTF-8 or UTF-8 text)"
        ) from exc


def csv_records(
    text: str,
    *,
    source: str,
    required: tuple[str, ...],
    known: set[str] | None = None,
) -> list[tuple[int, dict[str, str | None]]]:
    """The records of a CSV text with a header, each with the line number where it ends.

    Column names are matched case-insensitively; a missing required column, an unknown one
    (when `known` is given) or a malformed line is a `DefinitionError`. A record with more fields
    than the header has them under the key None, for the caller to reject with its line.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    columns = ",".join(required)
    if not header:
        raise DefinitionError(source, None, f"the file is empty: expected a header line {columns}")
    missing = [column for column in required if column not in header]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise DefinitionError(
            source, "header", f"missing column{plural}: {', '.join(missing)} (columns: {columns})"
        )
    if known is not None:
        unknown = [column for column in header if column not in known]
        if unknown:
            raise DefinitionError(source, "header", f"unknown column(s): {', '.join(unknown)}")
    reader.fieldnames = header
    records: list[tuple[int, dict[str, str | None]]] = []
    try:
        for record in reader:
            records.append((reader.line_num, record))
    except csv.Error as exc:
        raise DefinitionError(source, f"line {reader.line_num}", f"malformed CSV: {exc}") from exc
    return records
