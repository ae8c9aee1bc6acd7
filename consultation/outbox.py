"""The outbox: every message Palabre sends is first a row, written with the change that causes it.

Enqueueing is idempotent through a unique `dedupe_key` (an `INSERT ... ON CONFLICT DO NOTHING`),
so repeating an operation, or running it on two workers, writes each message once. Senders claim
due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so workers never claim the same row), send them,
and mark them sent, to retry later, or dead. A claim is a lease: if a sender dies mid-send, the
row becomes due again when the lease expires.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock
from consultation.common import get_consultation, rules
from models import (
    Cadence,
    Channel,
    Consultation,
    EmailStatus,
    OutboxMessage,
    OutboxStatus,
    Participant,
)
from models.db import insert_for

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)


async def enqueue(
    *,
    session: AsyncSession,
    channel: str,
    template: str,
    payload: dict[str, Any],
    dedupe_key: str,
    participant_id: int | None = None,
    address: str | None = None,
    consultation_id: int | None = None,
    interactive: bool = False,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> bool:
    """Write one message to send; returns False when that dedupe key was already enqueued.

    `not_after` is when the message goes stale (a reminder once its phase has closed): a sender
    that reaches it later drops it instead of sending it late.
    """
    if participant_id is None and address is None:
        raise ValueError("an outbox message needs a participant or an address")
    current = clock.now()
    due = await _due_at(
        session,
        channel=channel,
        consultation_id=consultation_id,
        interactive=interactive,
        at=max(not_before, current) if not_before else current,
    )
    values = {
        "consultation_id": consultation_id,
        "channel": str(channel),
        "participant_id": participant_id,
        "address": address,
        "template": template,
        "payload": payload,
        "dedupe_key": dedupe_key,
        "interactive": interactive,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": due,
        "not_after": not_after,
        "created_at": current,
    }
    statement = (
        insert_for(session)(OutboxMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
    )
    result = await session.execute(statement)
    return bool(result.rowcount)


async def _due_at(
    session: AsyncSession,
    *,
    channel: str,
    consultation_id: int | None,
    interactive: bool,
    at: datetime,
) -> datetime:
    """When a message may go: no Telegram push at night, it waits for the end of the quiet
    hours; a message a person triggered themselves (`interactive`) goes at once."""
    if str(channel) != Channel.TELEGRAM or interactive or consultation_id is None:
        return at
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    return quiet_until(consultation, at) or at


def quiet_hours(consultation: Consultation) -> tuple[time, time] | None:
    """The consultation's quiet hours (local start, local end), or None when it has none."""
    start, end = rules(consultation).quiet_hours
    return None if start == end else (start, end)


def quiet_until(consultation: Consultation, when: datetime) -> datetime | None:
    """When the quiet hours around `when` end (UTC), or None if `when` is not in them.

    Quiet hours are local to the consultation's time zone and usually span midnight
    (21:00-08:00). The Telegram sender may call this again at send time, so that a message
    enqueued in the evening but not yet sent when the quiet hours begin waits too.
    """
    window = quiet_hours(consultation)
    if window is None:
        return None
    start, end = window
    zone = ZoneInfo(consultation.timezone or "Europe/Paris")
    local = clock.as_utc(when).astimezone(zone)
    moment = local.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= moment < end, local.date()
    else:
        inside = moment >= start or moment < end
        end_day = local.date() + timedelta(days=1) if moment >= start else local.date()
    if not inside:
        return None
    # Built from the local wall-clock time, so a daylight-saving change in the night is handled.
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


async def enqueue_many(*, session: AsyncSession, messages: list[dict[str, Any]]) -> int:
    """Write many messages in a few multi-row INSERTs; returns how many were new.

    Each item takes the keyword arguments of `enqueue`. Publishing to tens of thousands of
    participants costs a handful of statements instead of one per person.
    """
    current = clock.now()
    rows = []
    for message in messages:
        if message.get("participant_id") is None and message.get("address") is None:
            raise ValueError("an outbox message needs a participant or an address")
        not_before = message.get("not_before")
        due = await _due_at(
            session,
            channel=message["channel"],
            consultation_id=message.get("consultation_id"),
            interactive=bool(message.get("interactive", False)),
            at=max(not_before, current) if not_before else current,
        )
        rows.append(
            {
                "consultation_id": message.get("consultation_id"),
                "channel": str(message["channel"]),
                "participant_id": message.get("participant_id"),
                "address": message.get("address"),
                "template": message["template"],
                "payload": message["payload"],
                "dedupe_key": message["dedupe_key"],
                "interactive": bool(message.get("interactive", False)),
                "status": OutboxStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": due,
                "not_after": message.get("not_after"),
                "created_at": current,
            }
        )
    inserted = 0
    # Stay under SQLite's 32,766 bound parameters per statement (13 columns a row).
    for start in range(0, len(rows), 1000):
        statement = (
            insert_for(session)(OutboxMessage)
            .values(rows[start : start + 1000])
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
        result = await session.execute(statement)
        inserted += max(result.rowcount, 0)
    return inserted


def channel_for(participant: Participant) -> str | None:
    """Where to reach this person now: their preferred channel if it works, else the other."""
    if not participant.reachable:
        return None
    telegram_ok = participant.telegram_chat_id is not None and participant.telegram_active
    email_ok = participant.email is not None and participant.email_status == EmailStatus.OK
    if participant.preferred_channel == Channel.EMAIL and email_ok:
        return Channel.EMAIL
    if telegram_ok:
        return Channel.TELEGRAM
    if email_ok:
        return Channel.EMAIL
    return None


async def notify(
    *,
    session: AsyncSession,
    participant: Participant,
    template: str,
    payload: dict[str, Any],
    dedupe_key: str,
    interactive: bool = False,
    digest_covers: bool = False,
    not_after: datetime | None = None,
) -> bool:
    """Tell one participant something, on the channel that reaches them.

    `digest_covers` marks news that the email digest lists anyway (a finding published, a phase
    opened): a person who reads Palabre by email gets it in their next digest rather than as one
    more email, unless their digest is off.
    """
    channel = channel_for(participant)
    if channel is None:
        return False
    if channel == Channel.EMAIL and digest_covers and participant.digest_cadence != Cadence.OFF:
        return False
    return await enqueue(
        session=session,
        channel=channel,
        template=template,
        payload=payload,
        dedupe_key=dedupe_key,
        participant_id=participant.id,
        consultation_id=participant.consultation_id,
        interactive=interactive,
        not_after=not_after,
    )


async def notify_many(
    *,
    session: AsyncSession,
    participants: list[Participant],
    template: str,
    payload: dict[str, Any] | Callable[[Participant], dict[str, Any]],
    dedupe_prefix: str,
    interactive: bool = False,
    digest_covers: bool = False,
) -> int:
    """`notify` for many people at once (an announcement, a publication).

    `payload` is one dict for everyone, or a function giving each person theirs (their own
    order of the items, say). Each person's dedupe key is `<dedupe_prefix>:<participant id>`;
    returns how many messages were new.
    """
    messages = []
    for participant in participants:
        channel = channel_for(participant)
        if channel is None:
            continue
        if channel == Channel.EMAIL and digest_covers and participant.digest_cadence != Cadence.OFF:
            continue
        messages.append(
            {
                "channel": channel,
                "template": template,
                "payload": payload(participant) if callable(payload) else payload,
                "dedupe_key": f"{dedupe_prefix}:{participant.id}",
                "participant_id": participant.id,
                "consultation_id": participant.consultation_id,
                "interactive": interactive,
            }
        )
    return await enqueue_many(session=session, messages=messages)


async def claim(
    *, session: AsyncSession, channel: str, limit: int = 50, lease: timedelta = LEASE
) -> list[OutboxMessage]:
    """Claim up to `limit` due messages of `channel` for this worker, oldest first.

    The caller commits at once so that other workers see the claim; then sends and settles each
    message in its own short transaction.
    """
    current = clock.now()
    postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
    # A message past its `not_after` is stale (its phase has closed): dropped, never sent late.
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.channel == str(channel))
        .where(OutboxMessage.not_after <= current)  # type: ignore[operator]
        .where(
            or_(
                OutboxMessage.status == OutboxStatus.PENDING,
                # A claim that ran out; one still held is in flight and settles itself.
                (OutboxMessage.status == OutboxStatus.SENDING)
                & (OutboxMessage.claimed_until < current),  # type: ignore[operator]
            )
        )
        .values(status=OutboxStatus.CANCELLED, claimed_until=None, last_error="expired")
        .execution_options(synchronize_session=False)
    )
    # Two index-friendly queries rather than one OR: with an OR the database walks every row of
    # the channel, sent ones included, and each claim grows slower as the outbox fills.
    expired = (
        select(OutboxMessage.id)
        .where(OutboxMessage.channel == str(channel))
        .where(OutboxMessage.status == OutboxStatus.SENDING)
        .where(OutboxMessage.claimed_until < current)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.channel == str(channel))
        .where(OutboxMessage.status == OutboxStatus.PENDING)
        .where(OutboxMessage.next_attempt_at <= current)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if postgres:
        expired = expired.with_for_update(skip_locked=True)
        due = due.with_for_update(skip_locked=True)
    ids = list((await session.execute(expired)).scalars().all())
    if len(ids) < limit:
        ids += list((await session.execute(due.limit(limit - len(ids)))).scalars().all())
    if not ids:
        return []
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))  # type: ignore[union-attr]
        .values(
            status=OutboxStatus.SENDING,
            claimed_until=current + lease,
            attempts=OutboxMessage.attempts + 1,
        )
    )
    claimed = (
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))  # type: ignore[union-attr]
        .order_by(OutboxMessage.id)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(claimed)).scalars().all())


async def _get(session: AsyncSession, message_id: int) -> OutboxMessage:
    message = await session.get(OutboxMessage, message_id)
    if message is None:
        raise LookupError(f"outbox message {message_id} does not exist")
    return message


async def mark_sent(
    *, session: AsyncSession, message_id: int, external_id: str | None = None
) -> OutboxMessage:
    message = await _get(session, message_id)
    message.status = OutboxStatus.SENT
    message.sent_at = clock.now()
    message.claimed_until = None
    message.last_error = None
    if external_id is not None:
        message.external_id = external_id
    session.add(message)
    return message


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with full jitter: about 30 s, 1 min, 2 min... capped at one hour."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** max(attempts - 1, 0)))
    return timedelta(seconds=random.uniform(ceiling.total_seconds() / 2, ceiling.total_seconds()))


async def mark_retry(
    *,
    session: AsyncSession,
    message_id: int,
    error: str,
    delay: timedelta | None = None,
    count_attempt: bool = True,
) -> OutboxMessage:
    """Try again later (after `delay`, or with backoff); dead after MAX_ATTEMPTS failures.

    A rate-limit wait (`count_attempt=False`) is not the message's fault and is not counted.
    """
    message = await _get(session, message_id)
    if not count_attempt:
        message.attempts = max(message.attempts - 1, 0)
    if count_attempt and message.attempts >= MAX_ATTEMPTS:
        return await mark_dead(session=session, message_id=message_id, error=error)
    message.status = OutboxStatus.PENDING
    message.claimed_until = None
    message.last_error = error[:2000]
    message.next_attempt_at = clock.now() + (
        delay if delay is not None else backoff(message.attempts)
    )
    session.add(message)
    return message


async def mark_dead(*, session: AsyncSession, message_id: int, error: str) -> OutboxMessage:
    """Give up on a message; the error is kept for the coordinators."""
    message = await _get(session, message_id)
    message.status = OutboxStatus.DEAD
    message.claimed_until = None
    message.last_error = error[:2000]
    session.add(message)
    logger.warning("outbox message %s is dead: %s", message_id, error[:200])
    return message


async def cancel(*, session: AsyncSession, message_id: int, reason: str) -> OutboxMessage:
    """Drop a message that no longer has anyone to go to (an erased or opted-out person)."""
    message = await _get(session, message_id)
    message.status = OutboxStatus.CANCELLED
    message.claimed_until = None
    message.last_error = reason[:2000]
    session.add(message)
    return message
