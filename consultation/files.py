"""Reading the files coordinators write by hand: one way to fail, naming the file and the line.

The consultation definition, the participants' CSV, the findings file and the paper ballots all
come through here, so every one of them reports an unreadable file, a wrong encoding, a missing
column, a control character or a malformed CSV line in the same words.

Control characters (NUL and the other C0/C1 codes, DEL) are refused wherever text comes in, with
one line naming where: PostgreSQL cannot store a NUL at all and SQLite would keep it silently,
and none of them is ever typed on purpose. Line breaks and tabs are text, not controls.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from pathlib import Path

from consultation.errors import DefinitionError

# Text, not controls: line breaks (a Windows line end included) and tabs.
ALLOWED_CONTROLS = frozenset("\n\t")


def control_character(value: str, *, allowed: frozenset[str] = ALLOWED_CONTROLS) -> str | None:
    """The first control character of `value` (C0, DEL, C1) other than `allowed`, or None."""
    for char in value:
        if unicodedata.category(char) == "Cc" and char not in allowed:
            return char
    return None


def describe_control(char: str) -> str:
    return f"contains the control character U+{ord(char):04X}, which text never holds: remove it"


def refuse_controls(text: str, *, source: str) -> str:
    """`text` unchanged, or a `DefinitionError` naming the line and column of a control character.

    A carriage return is accepted only as part of a Windows line end.
    """
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        char = control_character(line)
        if char is not None:
            column = line.index(char) + 1
            raise DefinitionError(source, f"line {number}, column {column}", describe_control(char))
    return text


def read_text(path: str | Path) -> str:
    """The file's text; a missing file, one that is not UTF-8 or that holds a control character
    is a `DefinitionError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(str(path), None, f"cannot read the file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            str(path), None, "not UTF-8 text (save it as CSV UTF-8 or UTF-8 text)"
        ) from exc
    return refuse_controls(text, source=str(path))


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
    reader = csv.DictReader(io.StringIO(refuse_controls(text.lstrip("\ufeff"), source=source)))
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
