"""The meeting loop: what a meeting said, typed into a CSV file, counts with everything else.

The story: the review phase is open on F1 and F2. On 2 March, at the Maison de l'ESS, twelve
association members and three elected officials met; the secretary typed their cards and their
show of hands into a file. Then the rank phase: the same room ranked the shortlist on paper.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from bot.text import render_html
from consultation import actions, findings, meetings, observations, trace
from consultation.errors import UserError
from models import Channel, Meeting, MeetingBallot, MeetingStance, Observation
from tests.consultation.evaluation_story import move_on
from tests.factories import make_consultation, make_coordinator, make_participant

MARCH_2 = date(2026, 3, 2)
ATTENDANCE = {"association": 12, "elected": 3}
HEADER = "kind;category;finding;choice;ranking;text\n"


async def in_review(session):
    consultation = await make_consultation(session, current="review")
    coordinator = await make_coordinator(session, consultation)
    for text in ("Les SCOP sont isolées.", "Le foncier est hors de prix."):
        await findings.draft_finding(
            session=session, consultation_id=consultation.id, by=coordinator, text=text
        )
    await findings.publish_findings(
        session=session, consultation_id=consultation.id, by=coordinator
    )
    aicha = await make_participant(session, consultation, name="Aïcha", category="association")
    await findings.record_stance(
        session=session, participant=aicha, code="F1", choice="confirm", channel=Channel.TELEGRAM
    )
    return consultation


async def import_text(session, consultation, text, when=MARCH_2, attendance=ATTENDANCE):
    rows = meetings.read_meeting_csv(text, "meeting.csv")
    return await meetings.import_meeting(
        session=session,
        consultation_id=consultation.id,
        meeting=meetings.MeetingSpec(held_on=when, place="Maison de l'ESS", attendance=attendance),
        rows=rows,
        by=None,
        actor_label="cli",
    )


async def test_a_meeting_s_stances_count_under_their_category_without_anyone_s_name(db, clock):
    async with db.session() as session:
        consultation = await in_review(session)
        report = await import_text(
            session,
            consultation,
            HEADER
            + "avis;association;F1;confirme;;\n"
            + "stance;association;F1;contest;;Trop général\n"
            + "stance;elected;F1;abstain;;\n"
            + "stance;elected;F2;confirm;;\n",
        )
    assert (report.rejected, report.stances) == ([], 4)
    async with db.session() as session:
        results = {
            row["code"]: row
            for row in await findings.finding_results(
                session=session, consultation_id=consultation.id
            )
        }
        stored = (await session.exec(select(MeetingStance))).all()
    # F1: Aïcha's confirmation by Telegram, plus the meeting's confirmation, contest, abstention.
    assert (results["F1"]["confirm"], results["F1"]["contest"], results["F1"]["abstain"]) == (
        2,
        1,
        1,
    )
    assert results["F1"]["from_meetings"] == 3
    assert results["F1"]["by_category"]["association"]["confirm"] == 2
    assert results["F1"]["contest_reasons"] == ["Trop général"]
    assert results["F2"]["by_category"]["elected"]["confirm"] == 1
    assert all(not hasattr(row, "participant_id") for row in stored)


async def test_a_file_with_bad_rows_imports_nothing_and_names_each_bad_line(db, clock):
    text = (
        HEADER
        + "observation;association;;;;Il manque un lieu ressource.\n"  # line 2: fine
        + "stance;pirate;F1;confirm;;\n"  # line 3: no such category
        + "stance;association;F1;contest;;\n"  # line 4: a contest needs a reason
        + "stance;association;F9;confirm;;\n"  # line 5: no such finding
        + "vote;association;;;A1;\n"  # line 6: ballots wait for the rank phase
        + "stance;elected;F2;confirm;;\n"
        + "stance;elected;F2;confirm;;\n"
        + "stance;elected;F2;confirm;;\n"
        + "stance;elected;F2;contest;;Non\n"  # line 10: a fourth answer, three elected came
        + "remarque;elected;;;;\n"  # line 11: unknown kind
    )
    async with db.session() as session:
        consultation = await in_review(session)
        report = await import_text(session, consultation, text)
    assert [(line, error.code) for line, error in report.rejected] == [
        (2, "phase.not_open"),
        (3, "meeting.unknown_category"),
        (4, "stance.reason_required"),
        (5, "finding.unknown"),
        (6, "phase.not_open"),
        (10, "meeting.more_than_attended"),
        (11, "meeting.unknown_kind"),
    ]
    async with db.session() as session:
        assert (await session.exec(select(Meeting))).all() == []
        assert (await session.exec(select(MeetingStance))).all() == []
        assert (await session.exec(select(Observation))).all() == []


async def test_observations_and_paper_ballots_of_a_meeting_enter_the_pipeline(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        report = await import_text(
            session, consultation, HEADER + "observation;association;;;;Il manque un lieu.\n"
        )
        assert report.observations == 1
        observation = (await session.exec(select(Observation))).one()
        assert (observation.author_id, observation.channel) == (None, Channel.MEETING)
        assert observation.meeting_id == report.meeting_id
        with pytest.raises(UserError) as caught:
            await import_text(session, consultation, HEADER)
        assert caught.value.code == "meeting.already_imported"
        with pytest.raises(UserError) as caught:
            await import_text(session, consultation, HEADER, when=date(2026, 3, 3))
        assert caught.value.code == "meeting.in_the_future"

        for phase in ("review", "propose"):
            await move_on(session, consultation, phase, clock)
        for text in ("Un guichet unique.", "Une foncière solidaire."):
            await actions.add_action(
                session=session, consultation_id=consultation.id, by=None, text=text
            )
        await actions.shortlist(
            session=session, consultation_id=consultation.id, by=None, codes=["A1", "A2"]
        )
        await move_on(session, consultation, "rank", clock)
        ballots = "".join("ballot;association;;;A2 A1;\n" for _ in range(6))
        report = await import_text(
            session,
            consultation,
            HEADER + ballots,
            when=clock.now().date(),
            attendance={"association": 6},
        )
        assert report.ballots == 6
        result = await actions.ranking_results(session=session, consultation_id=consultation.id)
        stored = (await session.exec(select(MeetingBallot))).all()
    assert result["ballots"] == 6 and result["overall"]["tiers"] == [["A2"], ["A1"]]
    assert result["ballots_by_category"]["association"] == 6
    assert len(stored) == 6


def test_attendance_is_written_as_category_equals_number():
    assert meetings.parse_attendance("association=12, elected=3;citizen=1") == {
        "association": 12,
        "elected": 3,
        "citizen": 1,
    }
    with pytest.raises(Exception, match="category=number"):
        meetings.parse_attendance("association: 12")


async def test_a_finding_drawing_on_a_meeting_says_so_in_each_author_s_trace(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        aicha = await make_participant(session, consultation, name="Aïcha")
        mine = await observations.submit_observation(
            session=session, participant=aicha, text="Les SCOP sont isolées.", channel="telegram"
        )
        report = await import_text(
            session, consultation, HEADER + "observation;elected;;;;Les SCOP manquent d'appui.\n"
        )
        said = (
            await session.exec(
                select(Observation).where(Observation.meeting_id == report.meeting_id)
            )
        ).one()
        await move_on(session, consultation, "review", clock)
        await findings.draft_finding(
            session=session,
            consultation_id=consultation.id,
            by=None,
            text="Les petites coopératives sont isolées.",
            observation_ids=[mine.id, said.id],
        )
        await findings.publish_findings(session=session, consultation_id=consultation.id, by=None)
        contributions = await trace.contributions_of(session=session, participant=aicha)
    (finding,) = contributions[0]["findings"]
    assert finding["meetings"] == ["2026-03-02"]
    text = render_html("mine", "fr", contributions=trace.summary(contributions)["contributions"])
    assert "F1" in text and "également soulevé à la réunion du 2 mars" in text
