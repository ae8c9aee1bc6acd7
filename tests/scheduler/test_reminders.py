"""Reminders say exactly what is missing, and agree with what `status.awaiting` tells each person.

They are computed for everyone at once and written in batches; a job interrupted between two
batches runs again and writes nothing twice.
"""

from __future__ import annotations

from sqlmodel import select

from consultation import actions, findings, observations, questionnaires, reminders, status
from models import Channel, JobRun
from scheduler import jobs
from tests.scheduler.story import messages, paris, phases_by_kind, set_up


async def _compare_with_awaiting(db, phase_kind: str, consultation_id: int) -> int:
    """For everyone who may be reminded: the reminder's 'missing' is what awaits them."""
    async with db.session() as session:
        phase = (await phases_by_kind(db, consultation_id))[phase_kind]
        phase = await session.get(type(phase), phase.id)
        found = {
            person.id: missing
            for person, missing in await reminders.phase_recipients(session=session, phase=phase)
        }
        people = await reminders.audience(session=session, consultation_id=consultation_id)
        compared = 0
        for person in people:
            waiting = await status.awaiting(session=session, participant=person)
            missing = found.get(person.id)
            owes = bool(waiting.findings) or waiting.ballot_needed
            if phase_kind in ("review", "rank"):
                assert (missing is not None) == owes, person.id
            if missing is None:
                continue
            assert sorted(missing.findings) == sorted(waiting.findings)
            assert missing.ballot == waiting.ballot_needed
            assert [q["key"] for q in missing.questionnaires] == waiting.questionnaires
            compared += 1
    return compared


async def test_what_a_reminder_says_is_missing_is_what_awaits_each_person(db, clock, make_service):
    """Given findings answered in part, a questionnaire answered by some, then a shortlist
    ranked by some, each person's reminder lists exactly what `status.awaiting` says awaits
    them, and nobody with nothing awaiting is reminded."""
    cast = await set_up(db)
    c = cast.consultation.id
    service = make_service()
    clock.set(paris("2026-03-02 11:00"))
    await service.run_due()
    async with db.session() as session:
        for person in (cast.aicha, cast.bruno, cast.farid):
            await observations.submit_observation(
                session=session, participant=person, text="Un constat de terrain.", channel="cli"
            )
    clock.set(paris("2026-03-09 18:00"))
    await service.run_due()
    async with db.session() as session:
        for text in ("Premier constat.", "Deuxième constat.", "Troisième constat."):
            await findings.draft_finding(
                session=session, consultation_id=c, by=cast.celine, text=text
            )
        await findings.publish_findings(session=session, consultation_id=c, by=cast.celine)
        for person, codes in ((cast.aicha, "F1 F3"), (cast.chloe, "F1 F2 F3"), (cast.bruno, "F2")):
            for code in codes.split():
                await findings.record_stance(
                    session=session, participant=person, code=code, choice="abstain", channel="cli"
                )
        await questionnaires.answer_question(
            session=session,
            participant=cast.farid,
            questionnaire_key="after-observe",
            position=1,
            value=3,
            channel=Channel.TELEGRAM,
        )
        # A revised finding asks again those who answered the old wording.
        await findings.edit_finding(
            session=session,
            finding_id=(
                await findings.get_finding(session=session, consultation_id=c, code="F1")
            ).id,
            by=cast.celine,
            text="Premier constat, reformulé.",
        )
    clock.set(paris("2026-03-12 10:00"))
    assert await _compare_with_awaiting(db, "review", c) == 4
    async with db.session() as session:
        review = (await phases_by_kind(db, c))["review"]
        by_person = {
            person.id: missing
            for person, missing in await reminders.phase_recipients(
                session=session, phase=await session.get(type(review), review.id)
            )
        }
    assert by_person[cast.chloe.id].findings == ["F1"]  # asked again on the new wording
    assert by_person[cast.aicha.id].findings == ["F1", "F2"]
    assert [q["key"] for q in by_person[cast.aicha.id].questionnaires] == ["after-observe"]
    assert by_person[cast.farid.id].questionnaires == []

    clock.set(paris("2026-03-16 09:00"))
    await service.run_due()
    async with db.session() as session:
        await actions.add_action(session=session, consultation_id=c, by=cast.celine, text="A.")
        await actions.add_action(session=session, consultation_id=c, by=cast.celine, text="B.")
        await actions.shortlist(
            session=session, consultation_id=c, by=cast.celine, codes=["A1", "A2"]
        )
    clock.set(paris("2026-03-20 18:00"))
    await service.run_due()
    async with db.session() as session:
        await actions.cast_ballot(
            session=session, participant=cast.aicha, codes=["A2"], channel="cli"
        )
    clock.set(paris("2026-03-22 10:00"))
    assert await _compare_with_awaiting(db, "rank", c) == 3  # Bruno, Chloé, Farid


async def test_a_reminder_interrupted_between_batches_runs_again_without_repeating(
    db, clock, make_service, monkeypatch
):
    """Given reminders written two people per transaction, and a job that stopped after its
    first batch (its messages written, the job not recorded as run), the next run writes the
    rest, each person once, and records the job."""
    cast = await set_up(db)
    monkeypatch.setattr(jobs, "BATCH", 2)
    service = make_service()
    clock.set(paris("2026-03-02 11:00"))
    await service.run_due()
    deadline = paris("2026-03-09 18:00")
    clock.set(paris("2026-03-07 18:00"))
    observe = (await phases_by_kind(db, cast.consultation.id))["observe"]
    async with db.session() as session:
        ids = await reminders.audience_ids(session=session, consultation_id=cast.consultation.id)
        first_batch = ids[:2]
        await reminders.remind_phase(
            session=session,
            phase_id=observe.id,
            offset_hours=48,
            deadline=deadline,
            participant_ids=first_batch,
        )
    assert len(await messages(db, "reminder")) == 2

    report = await service.run_due()
    assert report.failed == []
    rows = await messages(db, "reminder")
    assert len(rows) == 4 and len({row.participant_id for row in rows}) == 4
    async with db.session() as session:
        run = (await session.exec(select(JobRun).where(JobRun.job_key.like("reminder:%")))).one()
    assert run.detail["messages"] == 2 and run.detail["batches"] == 2
    assert (await service.run_due()).ran == []
