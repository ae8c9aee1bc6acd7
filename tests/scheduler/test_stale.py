"""Time after downtime: nothing stale is sent, and phases already over pass silently.

A reminder carries its deadline (`not_after`): a sender that reaches it after its phase closed
drops it. A timetable whose phases went by while Palabre was down (or was written in the past
on purpose) does not open and close each phase in turn, announcing every step.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from consultation import definition, outbox
from models import AuditEvent, Channel, OutboxStatus, Phase
from tests.scheduler.story import messages, paris, phases_by_kind, set_up, spec


async def test_a_reminder_reached_after_its_phase_closed_is_dropped(db, clock, make_service):
    """Given the 48 h reminders of the observe phase written, when the senders were down until
    after the deadline, no reminder is claimed: each is cancelled as expired."""
    await set_up(db)
    service = make_service()
    clock.set(paris("2026-03-02 11:00"))
    await service.run_due()
    clock.set(paris("2026-03-07 18:00"))
    await service.run_due()
    reminders = await messages(db, "reminder", hours=48)
    assert reminders and all(row.not_after == paris("2026-03-09 18:00") for row in reminders)

    clock.set(paris("2026-03-09 18:00") + timedelta(minutes=1))
    claimed = []
    for channel in (Channel.TELEGRAM, Channel.EMAIL):
        async with db.session() as session:
            claimed += await outbox.claim(session=session, channel=channel, limit=500)

    assert not any(row.template == "reminder" for row in claimed)
    for row in await messages(db, "reminder", hours=48):
        assert row.status == OutboxStatus.CANCELLED and row.last_error == "expired"


async def test_a_digest_is_not_sent_a_day_late(db, clock):
    async with db.session() as session:
        await outbox.enqueue(
            session=session,
            channel=Channel.EMAIL,
            template="digest",
            payload={},
            dedupe_key="digest:late",
            address="bruno@example.org",
            not_after=clock.now() + timedelta(days=1),
        )
    clock.advance(days=1, seconds=1)
    async with db.session() as session:
        assert await outbox.claim(session=session, channel=Channel.EMAIL) == []


async def test_phases_already_over_close_without_a_word(db, clock, make_service):
    """Given a timetable with no minimum durations accepted on purpose in the past, when the
    scheduler starts, every phase is closed without opening, and nobody is told phase by
    phase."""
    past = spec("ess-past").model_copy(deep=True)
    for phase in past.phases:
        phase.min_days = 0
    clock.set(paris("2026-05-01 10:00"))
    async with db.session() as session:
        consultation, _ = await definition.apply(session=session, spec=past, allow_past=True)
    service = make_service()

    await service.run_due()

    found = await phases_by_kind(db, consultation.id)
    assert {phase.status for phase in found.values()} == {"closed"}
    assert all(phase.opened_at is None for phase in found.values())
    assert await messages(db, "phase_opened") == []
    assert await messages(db, "phase_closed") == []
    async with db.session() as session:
        skipped = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "phase.skipped"))
        ).all()
    assert len(skipped) == 5


async def test_a_late_phase_with_a_minimum_still_opens_for_it(db, clock, make_service):
    """The minimum duration still holds: a phase that can still run its minimum opens."""
    cast = await set_up(db)
    clock.set(paris("2026-03-10 10:00"))
    await make_service().run_due()
    found = await phases_by_kind(db, cast.consultation.id)
    assert found["observe"].status == "open"
    async with db.session() as session:
        assert (await session.get(Phase, found["observe"].id)).opened_at is not None
