"""Reading the files coordinators write by hand: one way to fail, naming the file and the line.

The consultation definition, the participants' CSV, the findings file, the paper ballots and the
meeting records all come through here, so every one of them reports an unreadable file, a wrong
encoding, a missing column, a control character or a malformed CSV line in the same words.

They also accept what an office produces without asking anyone to change a setting: Excel in
French saves "CSV" with semicolons between the fields and in Windows-1252, "CSV UTF-8" with a
byte-order mark, and "Unicode text" in UTF-16. All of these read as the same text here.

Control characters (NUL and the other C0/C1 codes, DEL) are refused wherever text comes in, with
one line naming where: PostgreSQL cannot store a NUL at all and SQLite would keep it silently,
and none of them is ever typed on purpose. Line breaks and tabs are text, not controls.
"""

from __future__ import annotations

import codecs
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


# Tried in this order; UTF-8 first because a Windows-1252 file that happens to be valid UTF-8 is
# (almost) always plain ASCII, which reads the same either way.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_FALLBACK = "cp1252"
DELIMITERS = (",", ";", "\t")


def decode(data: bytes, source: str) -> str:
    """The text of a file's bytes: UTF-8 (with or without a BOM), UTF-16 with a BOM, else
    Windows-1252; bytes that are none of these are a `DefinitionError`."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DefinitionError(source, None, f"not valid {encoding} text") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode(_FALLBACK)
    except UnicodeDecodeError as exc:
        raise DefinitionError(
            source, None, "neither UTF-8 nor Windows-1252 text (save it as CSV UTF-8 or UTF-8 text)"
        ) from exc


def read_text(path: str | Path) -> str:
    """The file's text (see `decode`); a missing or unreadable file, or one that holds a control
    character, is a `DefinitionError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DefinitionError(str(path), None, f"cannot read the file: {exc.strerror}") from exc
    # Line ends as Python's text mode reads them: "\r\n" and a lone "\r" become "\n".
    text = decode(data, str(path)).replace("\r\n", "\n").replace("\r", "\n")
    return refuse_controls(text, source=str(path))


def delimiter_of(header: str) -> str:
    """The field separator a CSV header line uses: the one of `DELIMITERS` it has most of.

    Column names never contain a separator, so counting them on the header line is enough; a
    header with one column has none, and the comma is as good as any.
    """
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def csv_records(
    text: str,
    *,
    source: str,
    required: tuple[str, ...],
    known: set[str] | None = None,
) -> list[tuple[int, dict[str, str | None]]]:
    """The records of a CSV text with a header, each with the line number where it ends.

    The separator is the comma, the semicolon or the tab, whichever the header line uses. Column
    names are matched case-insensitively; a missing required column, an unknown one (when
    `known` is given) or a malformed line is a `DefinitionError`. A record with more fields than
    the header has them under the key None, for the caller to reject with its line.
    """
    text = refuse_controls(text.lstrip("\ufeff"), source=source)
    first_line = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter_of(first_line))
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
