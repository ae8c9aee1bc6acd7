"""Importing participants from CSV: every row checked, nothing half done, nothing repeated."""

from __future__ import annotations

import pytest
from sqlmodel import select

from consultation import participants
from consultation.errors import DefinitionError
from models import Participant
from tests.factories import make_consultation

CATEGORIES = {"association", "cooperative", "elected", "citizen"}
HEADER = "name,email,organisation,category,role,locale\n"


def test_good_rows_are_read_with_defaults_and_normalised_addresses():
    rows, report = participants.read_csv(
        HEADER + "Aïcha Benali, Aicha.Benali@Example.ORG ,Régie,Association,,\n"
        "Julien Marty,julien@example.org,,cooperative,coordinator,en\n",
        categories=CATEGORIES,
        source="people.csv",
    )
    assert report.rejected == []
    assert [(row.email, row.category, row.role, row.locale) for row in rows] == [
        ("aicha.benali@example.org", "association", "participant", "fr"),
        ("julien@example.org", "cooperative", "coordinator", "en"),
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (",a@example.org,,citizen,,", "name is empty"),
        ("Paul,,,citizen,,", "email is empty"),
        ("Paul,paul@,,citizen,,", "invalid email 'paul@'"),
        ("Paul,paul@example.org,,pirate,,", "unknown category 'pirate'"),
        ("Paul,paul@example.org,,citizen,boss,", "unknown role 'boss'"),
        ("Paul,paul@example.org,,citizen,,de", "unknown locale 'de'"),
        ("Paul,paul@example.org,,citizen,,fr,extra", "more fields than columns"),
    ],
)
def test_each_bad_row_is_rejected_with_its_line_and_reason(row, reason):
    rows, report = participants.read_csv(
        HEADER + "Aïcha,aicha@example.org,,citizen,,\n" + row + "\n",
        categories=CATEGORIES,
        source="people.csv",
    )
    assert len(rows) == 1
    assert len(report.rejected) == 1
    line, why = report.rejected[0]
    assert line == 3
    assert reason in why


def test_a_file_without_the_required_columns_is_refused_whole():
    with pytest.raises(DefinitionError, match="missing column: category"):
        participants.read_csv("name,email\nA,a@example.org\n", categories=CATEGORIES, source="x")
    with pytest.raises(DefinitionError, match="the file is empty"):
        participants.read_csv("", categories=CATEGORIES, source="x")


async def test_reimporting_changes_only_what_changed(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        rows, report = participants.read_csv(
            HEADER + "Aïcha,aicha@example.org,Régie,association,,\n"
            "Julien,julien@example.org,,cooperative,,\n",
            categories=CATEGORIES,
            source="x",
        )
        await participants.import_rows(
            session=session,
            consultation=consultation,
            rows=rows,
            report=report,
            erasure_key="test-key",
        )
        assert (report.imported, report.updated) == (2, 0)
    async with db.session() as session:
        rows, report = participants.read_csv(
            HEADER + "Aïcha,aicha@example.org,Régie de quartier,association,,\n"
            "Julien,julien@example.org,,cooperative,,\n",
            categories=CATEGORIES,
            source="x",
        )
        await participants.import_rows(
            session=session,
            consultation=consultation,
            rows=rows,
            report=report,
            erasure_key="test-key",
        )
        assert (report.imported, report.updated, report.unchanged) == (0, 1, 1)
        aicha = (
            await session.exec(select(Participant).where(Participant.email == "aicha@example.org"))
        ).one()
        assert aicha.organisation == "Régie de quartier"
