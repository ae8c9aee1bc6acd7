"""Hand-written files as offices save them: Excel in French, with a BOM, in Windows-1252."""

from __future__ import annotations

import codecs

import pytest

from consultation import files, participants
from consultation.errors import DefinitionError

CATEGORIES = {"association", "cooperative"}
ROWS = [
    ("name", "email", "organisation", "category"),
    ("Aïcha Benali", "aicha@example.org", "Régie de quartier; Empalot", "association"),
    ("Gaëlle Simon", "gaelle@example.org", "SCOP « L'Établi »", "cooperative"),
]


def excel_csv(separator: str) -> str:
    """What Excel writes: fields quoted only when they hold the separator, CRLF line ends."""

    def field(value: str) -> str:
        return f'"{value}"' if separator in value else value

    return "".join(separator.join(field(value) for value in row) + "\r\n" for row in ROWS)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("Excel in French (CSV, Windows-1252, semicolons)", excel_csv(";").encode("cp1252")),
        ("Excel's CSV UTF-8 (a BOM)", codecs.BOM_UTF8 + excel_csv(";").encode("utf-8")),
        ("LibreOffice (UTF-8, commas)", excel_csv(",").encode("utf-8")),
        ("Unicode text (UTF-16, tabs)", excel_csv("\t").encode("utf-16")),
    ],
)
def test_every_office_flavour_reads_as_the_same_people(tmp_path, name, data):
    path = tmp_path / "people.csv"
    path.write_bytes(data)
    rows, report = participants.read_csv_file(path, categories=CATEGORIES)
    assert report.rejected == [], name
    assert [(row.name, row.email, row.organisation, row.category) for row in rows] == [
        ("Aïcha Benali", "aicha@example.org", "Régie de quartier; Empalot", "association"),
        ("Gaëlle Simon", "gaelle@example.org", "SCOP « L'Établi »", "cooperative"),
    ], name


def test_a_windows_1252_file_keeps_its_accents_and_its_euro_sign(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("Économie sociale : 15 000 € par an, « très » utile".encode("cp1252"))
    assert files.read_text(path) == "Économie sociale : 15 000 € par an, « très » utile"


def test_bytes_no_encoding_explains_are_refused_with_the_file_named(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_bytes(b"name;email\r\nA\x81;b@example.org\r\n")
    with pytest.raises(DefinitionError, match="neither UTF-8 nor Windows-1252") as caught:
        files.read_text(path)
    assert "broken.csv" in str(caught.value)


def test_the_separator_is_the_one_the_header_uses():
    assert files.delimiter_of("email;ranking") == ";"
    assert files.delimiter_of("email,ranking") == ","
    assert files.delimiter_of("email") == ","
    records = files.csv_records(
        "email;ranking\na@example.org;A1 A2\n", source="b.csv", required=("email", "ranking")
    )
    assert records == [(2, {"email": "a@example.org", "ranking": "A1 A2"})]
