"""Downtime and restarts: the database is the scheduler's only memory.

A restarted scheduler (a new service over the same database) repeats nothing and loses
nothing; a missed transition happens at once; a missed reminder whose deadline has passed is
not sent, and of several missed reminders only the latest is.
"""

from __future__ import annotations

from sqlmodel import select

from consultation import phases as core_phases
from models import JobRun
from tests.scheduler.story import messages, paris, phases_by_kind, set_up


async def _runs(db) -> list[str]:
    async with db.session() as session:
        return sorted((await session.exec(select(JobRun.job_key))).all())


async def test_a_restart_in_the_middle_loses_nothing_and_repeats_nothing(db, clock, make_service):
    """Given the observe phase open and its 48 h reminder sent, when the scheduler restarts at
    that same moment, nothing is written again; the restarted one then sends the 6 h reminder
    and closes the phase, each once."""
    cast = await set_up(db)
    first = make_service()
    clock.set(paris("2026-03-02 11:00"))
    await first.run_due()
    clock.set(paris("2026-03-07 18:00"))
    await first.run_due()
    before = [(row.dedupe_key, row.next_attempt_at) for row in await messages(db)]
    runs_before = await _runs(db)
    # Aïcha, Bruno, Chloé and Farid owe an observation; Denis, Emma and Céline are not asked.
    assert len(await messages(db, "reminder", hours=48)) == 4
    await first.shutdown()

    restarted = make_service()
    report = await restarted.run_due()
    assert report.ran == [] and report.failed == []
    assert [(row.dedupe_key, row.next_attempt_at) for row in await messages(db)] == before
    assert await _runs(db) == runs_before

    clock.set(paris("2026-03-09 12:30"))
    await restarted.run_due()
    assert len(await messages(db, "reminder", hours=6)) == 4
    clock.set(paris("2026-03-09 18:01"))
    report = await restarted.run_due()
    observe = (await phases_by_kind(db, cast.consultation.id))["observe"]
    assert f"phase-close:{cast.consultation.id}:{observe.id}" in report.transitions
    again = await restarted.run_due()
    assert again.ran == []
    keys = [row.dedupe_key for row in await messages(db)]
    assert len(keys) == len(set(keys))


async def test_after_a_stop_only_the_latest_missed_reminder_is_sent(db, clock, make_service):
    """Given a scheduler stopped from the opening until 5 h before the deadline, when it starts
    again, the 6 h reminder goes out and the stale 48 h one does not."""
    await set_up(db)
    service = make_service()
    clock.set(paris("2026-03-02 11:00"))
    await service.run_due()
    clock.set(paris("2026-03-09 13:00"))
    await service.run_due()
    assert await messages(db, "reminder", hours=48) == []
    assert len(await messages(db, "reminder", hours=6)) == 4


async def test_after_a_long_stop_missed_transitions_happen_at_once_and_no_stale_reminder(
    db, clock, make_service
):
    """Given a scheduler down from before the first phase until after its planned close, when
    it starts, observe opens at once, for its minimum duration of one day (as the core rules:
    a late phase is not cut short), with no reminder for a deadline already past; a day
    later it closes, and review opens at once."""
    cast = await set_up(db)
    c = cast.consultation.id
    service = make_service()
    clock.set(paris("2026-03-10 10:00"))
    report = await service.run_due()
    found = await phases_by_kind(db, c)
    assert report.transitions == [f"phase-open:{c}:{found['observe'].id}"]
    assert found["observe"].closes_at == paris("2026-03-11 10:00")
    assert await messages(db, "reminder", hours=48) == []

    clock.set(paris("2026-03-11 10:00"))
    report = await service.run_due()
    found = await phases_by_kind(db, c)
    assert report.transitions[0] == f"phase-close:{c}:{found['observe'].id}"
    assert report.transitions[-1] == f"phase-open:{c}:{found['review'].id}"
    assert found["review"].status == "open"


async def test_an_extended_deadline_earns_its_own_reminders(db, clock, make_service):
    """Given the observe reminders sent, when a coordinator extends the phase by a week, the
    people who still owe an observation are reminded again before the new deadline."""
    cast = await set_up(db)
    service = make_service()
    clock.set(paris("2026-03-02 11:00"))
    await service.run_due()
    clock.set(paris("2026-03-09 12:00"))
    await service.run_due()
    assert len(await messages(db, "reminder", hours=6)) == 4
    observe = (await phases_by_kind(db, cast.consultation.id))["observe"]
    async with db.session() as session:
        await core_phases.extend_phase(
            session=session,
            phase_id=observe.id,
            until=paris("2026-03-16 18:00"),
            reason="Peu de contributions",
            by=cast.celine,
        )
    clock.set(paris("2026-03-14 18:00"))
    await service.run_due()
    assert len(await messages(db, "reminder", hours=48)) == 4
    reminded = await messages(db, "reminder", hours=48)
    assert {row.payload["closes_at"] for row in reminded} == {"2026-03-16T17:00:00+00:00"}
