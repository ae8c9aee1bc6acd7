"""`palabre meeting import`, `palabre export` and `palabre results --pdf`, as a coordinator types
them, on the small consultation of the brief's story (its rank phase is open)."""

from __future__ import annotations

import csv
import io
import json

from tests.palabre.test_brief import _in_db, a_small_consultation

HEADER = "kind;category;finding;choice;ranking;text\r\n"


def test_a_meeting_file_with_a_bad_line_imports_nothing_then_the_corrected_one_counts(
    cli, empty_database_url, clock, tmp_path
):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    assert cli("db", "upgrade", env=env).exit_code == 0
    _in_db(empty_database_url, lambda session: a_small_consultation(session, clock))
    meeting = tmp_path / "reunion.csv"
    # As Excel in French saves it: semicolons, Windows-1252, CRLF.
    lines = [
        "classement;association;;;A2 A1;",
        "classement;association;;;A2;",
        "classement;association;;;A9 A2;",  # line 4: A9 is not on the shortlist
        "classement;élu;;;A1;",  # line 5: no such category
    ]
    meeting.write_bytes((HEADER + "\r\n".join(lines) + "\r\n").encode("cp1252"))
    options = ["--date", "2026-03-08", "--place", "Salle des fêtes", "--attendance"]

    refused = cli("meeting", "import", str(meeting), *options, "association=20 elected=3", env=env)
    assert refused.exit_code == 1
    assert f"{meeting}, line 4: A9 is not on the shortlist" in refused.output
    assert f'{meeting}, line 5: "élu" is not a category of this consultation' in refused.output
    assert "Nothing imported" in refused.output
    assert json.loads(cli("results", "--json", env=env).stdout)["ranking"]["ballots"] == 9

    corrected = [*lines[:2], "classement;elected;;;A1;"]
    meeting.write_bytes((HEADER + "\r\n".join(corrected) + "\r\n").encode("cp1252"))
    present = "association=20, elected=3 citizen=2"
    done = cli("meeting", "import", str(meeting), *options, present, env=env)
    assert done.exit_code == 0, done.output
    assert "Meeting of 2026-03-08 at Salle des fêtes recorded: 0 observations" in done.output
    assert "3 ballots" in done.output
    document = json.loads(cli("results", "--json", env=env).stdout)
    assert document["ranking"]["ballots"] == 12
    assert document["meetings"] == [
        {
            "held_on": "2026-03-08",
            "place": "Salle des fêtes",
            "attendance": {"association": 20, "elected": 3, "citizen": 2},
            "attended": 25,
            "observations": 0,
            "stances": 0,
            "ballots": 3,
        }
    ]
    # In the export, the meeting's ballots carry its date, and no pseudonym; the three elected
    # officials and two residents present are "other", five together.
    out = tmp_path / "export"
    assert cli("export", "--out", str(out), "--format", "json", env=env).exit_code == 0
    (path,) = out.glob("*-ballots.json")
    from_meeting = [row for row in json.loads(path.read_text("utf-8")) if row["meeting"]]
    assert [(row["category"], row["participant"]) for row in from_meeting] == [
        ("association", None),
        ("association", None),
        ("other", None),
    ]
    assert {row["meeting"] for row in from_meeting} == {"2026-03-08"}
    again = cli("meeting", "import", str(meeting), *options, present, env=env)
    assert again.exit_code == 1 and "has already been imported" in again.output


def test_the_export_writes_every_table_without_a_name_and_the_pdf_brief_is_written(
    cli, empty_database_url, clock, tmp_path
):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    assert cli("db", "upgrade", env=env).exit_code == 0
    story = _in_db(empty_database_url, lambda session: a_small_consultation(session, clock))
    slug = story.consultation.slug

    out = tmp_path / "export"
    written = cli("export", "--out", str(out), "--separator", ";", env=env)
    assert written.exit_code == 0, written.output
    assert "6 files written" in written.output
    raw = (out / f"{slug}-ballots.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads the accents right
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == 9
    assert {row["ranking"] for row in rows} >= {"A1 A2 A3", "A2"}
    assert all(row["participant"].startswith("P") for row in rows)
    stances = list(
        csv.DictReader(
            io.StringIO((out / f"{slug}-stances.csv").read_text("utf-8-sig")), delimiter=";"
        )
    )
    assert {row["choice"] for row in stances} == {"confirm", "contest", "abstain"}
    assert cli("export", "--out", str(out), "--format", "json", env=env).exit_code == 0
    observations = json.loads((out / f"{slug}-observations.json").read_text("utf-8"))
    assert len(observations) == 3
    everything = "".join(path.read_text("utf-8-sig") for path in out.iterdir())
    for person in story.people:
        assert person.name not in everything and person.email not in everything

    pdf = tmp_path / "brief.pdf"
    made = cli("results", "--pdf", str(pdf), "--locale", "fr", env=env)
    assert made.exit_code == 0, made.output
    assert made.output == f"Meeting brief written to {pdf}.\n"
    assert pdf.read_bytes().startswith(b"%PDF-")
