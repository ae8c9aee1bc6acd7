"""The plan: derived from the database alone, with deterministic ids, on the example timetable."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from sqlmodel import select

from consultation import definition
from models import Phase, PhaseStatus
from scheduler import plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ess-plan.toml"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def _example(db):
    async with db.session() as session:
        consultation, _ = await definition.apply(session=session, spec=definition.load(EXAMPLE))
        return consultation


async def test_the_example_consultation_has_its_whole_timetable_planned(db, clock):
    """Given the example consultation defined two months before it starts, the plan holds every
    step in order, at the dates of the definition, each under a deterministic id."""
    consultation = await _example(db)
    c = consultation.id
    async with db.session() as session:
        jobs = await plan.derive(session=session, now=clock.now())
    assert not any(job.due for job in jobs)
    by_id = {job.id: job for job in jobs}
    assert len(by_id) == len(jobs)
    first = jobs[0]
    assert (first.kind, first.subject, first.at) == (
        plan.PHASE_OPEN,
        "observe",
        _at("2027-01-11T09:00:00+01:00"),
    )
    observe = first.phase_id
    assert by_id[f"phase-close:{c}:{observe}"].at == _at("2027-02-01T18:00:00+01:00")
    assert by_id[f"reminder:{c}:{observe}:48"].at == _at("2027-01-30T18:00:00+01:00")
    assert by_id[f"reminder:{c}:{observe}:6"].at == _at("2027-02-01T12:00:00+01:00")
    # The first digest is the first morning after the opening.
    assert by_id[f"digest:{c}"].at == _at("2027-01-12T08:00:00+01:00")
    kinds = [job.kind for job in jobs]
    assert kinds.count(plan.PHASE_OPEN) == kinds.count(plan.PHASE_CLOSE) == 6
    # Four phases are reminded twice; the evaluation has the final questionnaire's reminder,
    # and the follow-up reminds nobody to answer it.
    assert kinds.count(plan.REMINDER) == 8
    assert kinds.count(plan.QUESTIONNAIRE_OPEN) == 4
    assert kinds.count(plan.QUESTIONNAIRE_REMINDER) == 1
    final_plan = by_id[f"final-plan:{c}"]
    assert final_plan.at == _at("2027-06-07T18:00:00+02:00")
    final = next(
        job for job in jobs if job.kind == plan.QUESTIONNAIRE_OPEN and job.subject == "final"
    )
    assert final.at == final_plan.at  # with the evaluation phase
    # Two weeks after the ranking closes, the coordinators hear of the decisions still missing.
    assert by_id[f"plan-missing:{c}"].at == _at("2027-06-21T18:00:00+02:00")
    assert [job.at for job in jobs] == sorted(job.at for job in jobs)


async def test_the_same_database_gives_the_same_plan_and_a_new_timetable_a_new_one(db, clock):
    """Deriving twice gives the same ids and times (a restart rebuilds the same plan); editing
    a date in the definition changes the fingerprint, which the running service notices."""
    await _example(db)
    async with db.session() as session:
        once = await plan.derive(session=session, now=clock.now())
        twice = await plan.derive(session=session, now=clock.now())
    assert once == twice
    assert plan.fingerprint(once) == plan.fingerprint(twice)

    spec = definition.load(EXAMPLE)
    spec.phases[0].closes = _at("2027-02-02T18:00:00+01:00")
    async with db.session() as session:
        await definition.apply(session=session, spec=spec)
        changed = await plan.derive(session=session, now=clock.now())
    assert plan.fingerprint(changed) != plan.fingerprint(once)
    assert {job.id for job in changed} == {job.id for job in once}


async def test_a_phase_too_short_for_a_reminder_offset_skips_it(db, clock):
    """A reminder 48 h before the deadline of a 36-hour phase would come before it opens:
    only the 6 h one is planned."""
    spec = definition.load(EXAMPLE)
    spec.phases[0].closes = _at("2027-01-12T21:00:00+01:00")
    spec.phases[0].min_days = 1
    async with db.session() as session:
        consultation, _ = await definition.apply(session=session, spec=spec)
        jobs = await plan.derive(session=session, now=clock.now())
    observe = jobs[0].phase_id
    reminders = [job.id for job in jobs if job.kind == plan.REMINDER and job.phase_id == observe]
    assert reminders == [f"reminder:{consultation.id}:{observe}:6"]


async def test_the_digest_morning_follows_the_local_clock_across_summer_time(db, clock):
    consultation = await _example(db)
    async with db.session() as session:
        [state] = await plan.load(session=session, consultation_id=consultation.id)
    assert plan.digest_slot(state, date(2027, 3, 27)) == datetime(2027, 3, 27, 7, 0, tzinfo=UTC)
    assert plan.digest_slot(state, date(2027, 3, 29)) == datetime(2027, 3, 29, 6, 0, tzinfo=UTC)


async def test_the_follow_phase_plans_its_digests_and_questionnaires_from_its_opening(db, clock):
    """The example's follow phase, opened on time: a follow-up digest on the 29th of each month
    (the first morning after the opening, then monthly), a questionnaire each year and one at
    the end; after a stop of months, only the latest missed digest is due."""
    await _example(db)
    async with db.session() as session:
        phases = {p.kind: p for p in (await session.exec(select(Phase))).all()}
        for kind, phase in phases.items():
            phase.status = PhaseStatus.OPEN if kind == "follow" else PhaseStatus.CLOSED
            phase.opened_at = phase.opens_at
            phase.closed_at = None if kind == "follow" else phase.closes_at
            session.add(phase)
    clock.set(_at("2027-06-28T18:00:00+02:00"))
    async with db.session() as session:
        jobs = await plan.derive(session=session, now=clock.now())
    by_kind = {job.kind: job for job in jobs}
    assert by_kind[plan.FOLLOW_DIGEST].at == _at("2027-06-29T08:00:00+02:00")
    asked = [job for job in jobs if job.kind == plan.FOLLOW_QUESTIONNAIRE]
    assert [(job.number, job.at, job.final) for job in asked] == [
        (1, _at("2028-06-28T08:00:00+02:00"), False),
        (2, _at("2029-06-28T08:00:00+02:00"), False),
        (3, _at("2030-06-28T18:00:00+02:00"), True),
    ]
    assert not any(job.due for job in asked)

    clock.set(_at("2027-11-02T09:00:00+01:00"))
    async with db.session() as session:
        jobs = await plan.derive(session=session, now=clock.now())
    [digest] = [job for job in jobs if job.kind == plan.FOLLOW_DIGEST]
    assert (digest.at, digest.due) == (_at("2027-10-29T08:00:00+02:00"), True)
    assert digest.run_key.endswith(":2027-10-29")


def test_months_are_added_to_the_last_day_of_a_shorter_month():
    assert plan.add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert plan.add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)
