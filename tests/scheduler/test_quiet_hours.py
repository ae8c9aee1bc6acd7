"""Quiet hours: no Telegram push at night, unless the person asked for it a moment ago."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from consultation import outbox
from models import OutboxMessage
from tests.factories import make_consultation, make_participant

PARIS_EVENING = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 22:30 in Paris
NEXT_MORNING = datetime(2026, 3, 3, 7, 0, tzinfo=UTC)  # 08:00 in Paris


async def _due_at(session, key: str) -> datetime:
    row = (await session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))).one()
    return row.next_attempt_at


async def test_a_telegram_push_enqueued_at_night_waits_for_the_morning(db, clock):
    """Given a consultation in Paris with the default quiet hours (21:00-08:00), when a
    notification for Aïcha on Telegram is written at 22:30, it waits until 08:00; a message
    she asked for, and an email, go at once."""
    async with db.session() as session:
        consultation = await make_consultation(session)
        aicha = await make_participant(session, consultation, telegram_chat_id=101)
        bruno = await make_participant(session, consultation)  # email only
    clock.set(PARIS_EVENING)
    async with db.session() as session:
        await outbox.notify(
            session=session, participant=aicha, template="reminder", payload={}, dedupe_key="a"
        )
        await outbox.notify(
            session=session,
            participant=aicha,
            template="reminder",
            payload={},
            dedupe_key="b",
            interactive=True,
        )
        await outbox.notify(
            session=session, participant=bruno, template="reminder", payload={}, dedupe_key="c"
        )
    async with db.session() as session:
        assert await _due_at(session, "a") == NEXT_MORNING
        assert await _due_at(session, "b") == PARIS_EVENING
        assert await _due_at(session, "c") == PARIS_EVENING
        # Nothing is claimable for Telegram before 08:00 but the interactive answer.
        claimed = await outbox.claim(session=session, channel="telegram")
        assert [message.dedupe_key for message in claimed] == ["b"]
        await outbox.mark_sent(session=session, message_id=claimed[0].id)
    clock.set(NEXT_MORNING)
    async with db.session() as session:
        claimed = await outbox.claim(session=session, channel="telegram")
        assert [message.dedupe_key for message in claimed] == ["a"]


async def test_quiet_hours_follow_the_consultation_rules_and_time_zone(db, clock):
    """Given quiet hours of 22:00-07:00 in Montreal, a push at 23:00 there waits until 07:00
    there, and one at 21:30 there goes at once."""
    async with db.session() as session:
        consultation = await make_consultation(session, rules={"quiet_hours": "22:00-07:00"})
        consultation.timezone = "America/Montreal"
        session.add(consultation)
    montreal_23h = datetime(2026, 3, 3, 4, 0, tzinfo=UTC)  # 23:00 EST
    montreal_21h30 = datetime(2026, 3, 3, 2, 30, tzinfo=UTC)
    assert outbox.quiet_until(consultation, montreal_23h) == datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    assert outbox.quiet_until(consultation, montreal_21h30) is None


def test_quiet_hours_end_at_the_local_morning_across_a_clock_change():
    """The night of 28 to 29 March 2026 loses an hour in Paris: quiet hours still end at
    08:00 local time, which is 06:00 UTC after the change."""
    from models import Consultation

    consultation = Consultation(slug="x", title="x", question="x", timezone="Europe/Paris")
    saturday_night = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # 23:00 CET
    assert outbox.quiet_until(consultation, saturday_night) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )
    just_after_midnight = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 CET
    assert outbox.quiet_until(consultation, just_after_midnight) == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )
    at_eight = datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    assert outbox.quiet_until(consultation, at_eight) is None


def test_no_quiet_hours_when_a_consultation_sets_none():
    from models import Consultation

    consultation = Consultation(
        slug="x", title="x", question="x", rules={"quiet_hours": ["00:00", "00:00"]}
    )
    assert outbox.quiet_until(consultation, datetime(2026, 3, 2, 23, 0, tzinfo=UTC)) is None


async def test_an_announcement_to_many_at_night_waits_for_the_morning_too(db, clock):
    """Given an announcement written for everyone at once (`notify_many`) at 22:30, its
    Telegram messages wait for 08:00 and its emails go at once."""
    async with db.session() as session:
        consultation = await make_consultation(session)
        people = [
            await make_participant(session, consultation, telegram_chat_id=201),
            await make_participant(session, consultation, telegram_chat_id=202),
            await make_participant(session, consultation, cadence="off"),  # email, no digest
        ]
    clock.set(PARIS_EVENING)
    async with db.session() as session:
        written = await outbox.notify_many(
            session=session,
            participants=people,
            template="phase_opened",
            payload={},
            dedupe_prefix="announce",
        )
    assert written == 3
    async with db.session() as session:
        rows = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert [(row.channel, row.next_attempt_at) for row in rows] == [
        ("telegram", NEXT_MORNING),
        ("telegram", NEXT_MORNING),
        ("email", PARIS_EVENING),
    ]
