"""The outbox: written once per dedupe key, claimed by one worker, settled, retried, or dead."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import select

from consultation import outbox
from models import Channel, OutboxMessage, OutboxStatus
from tests.factories import make_consultation, make_participant


async def _message(db, key="k1", **kwargs):
    async with db.session() as session:
        await outbox.enqueue(
            session=session,
            channel=kwargs.pop("channel", Channel.TELEGRAM),
            template="phase_opened",
            payload={"kind": "observe"},
            dedupe_key=key,
            address="chat-1",
            **kwargs,
        )


async def _all(db) -> list[OutboxMessage]:
    async with db.session() as session:
        return list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def test_repeating_an_operation_writes_each_message_once(db, clock):
    async with db.session() as session:
        assert await outbox.enqueue(
            session=session,
            channel="email",
            template="t",
            payload={},
            dedupe_key="same",
            address="a@example.org",
        )
        assert not await outbox.enqueue(
            session=session,
            channel="email",
            template="t",
            payload={},
            dedupe_key="same",
            address="a@example.org",
        )
        written = await outbox.enqueue_many(
            session=session,
            messages=[
                {
                    "channel": "email",
                    "template": "t",
                    "payload": {},
                    "dedupe_key": key,
                    "address": "a@example.org",
                }
                for key in ("same", "new-1", "new-2")
            ],
        )
        assert written == 2
    assert [row.dedupe_key for row in await _all(db)] == ["same", "new-1", "new-2"]


async def test_notify_many_reaches_each_person_on_their_channel_and_skips_the_unreachable(
    db, clock
):
    async with db.session() as session:
        consultation = await make_consultation(session)
        on_telegram = await make_participant(session, consultation, telegram_chat_id=101)
        by_email = await make_participant(session, consultation, cadence="off")
        digest_reader = await make_participant(session, consultation, cadence="weekly")
        gone = await make_participant(session, consultation, telegram_chat_id=102)
        gone.opted_out_at = clock.now()
        people = [on_telegram, by_email, digest_reader, gone]
        count = await outbox.notify_many(
            session=session,
            participants=people,
            template="phase_opened",
            payload={"kind": "review"},
            dedupe_prefix="phase-open:1",
            digest_covers=True,
        )
        again = await outbox.notify_many(
            session=session,
            participants=people,
            template="phase_opened",
            payload={"kind": "review"},
            dedupe_prefix="phase-open:1",
            digest_covers=True,
        )
    assert (count, again) == (2, 0)
    rows = await _all(db)
    assert {(row.participant_id, row.channel) for row in rows} == {
        (on_telegram.id, "telegram"),
        (by_email.id, "email"),
    }


async def test_a_claimed_message_is_not_claimed_again_until_its_lease_expires(db, clock):
    await _message(db)
    async with db.session() as session:
        first = await outbox.claim(session=session, channel="telegram")
    async with db.session() as session:
        second = await outbox.claim(session=session, channel="telegram")
    assert [m.dedupe_key for m in first] == ["k1"] and second == []
    assert first[0].status == OutboxStatus.SENDING and first[0].attempts == 1

    clock.advance(outbox.LEASE + timedelta(seconds=1))  # the worker died mid-send
    async with db.session() as session:
        third = await outbox.claim(session=session, channel="telegram")
    assert [m.attempts for m in third] == [2]


async def test_a_failed_send_waits_with_backoff_and_dies_after_the_last_attempt(db, clock):
    await _message(db)
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        async with db.session() as session:
            (message,) = await outbox.claim(session=session, channel="telegram")
            assert message.attempts == attempt
            settled = await outbox.mark_retry(
                session=session, message_id=message.id, error="503 Service Unavailable"
            )
        if attempt < outbox.MAX_ATTEMPTS:
            assert settled.status == OutboxStatus.PENDING
            wait = settled.next_attempt_at - clock.now()
            assert timedelta(0) < wait <= outbox.BACKOFF_CAP
            async with db.session() as session:
                assert await outbox.claim(session=session, channel="telegram") == []
            clock.advance(wait)
    (dead,) = await _all(db)
    assert dead.status == OutboxStatus.DEAD
    assert dead.last_error == "503 Service Unavailable"


async def test_a_rate_limit_wait_is_not_counted_as_a_failure(db, clock):
    await _message(db)
    async with db.session() as session:
        (message,) = await outbox.claim(session=session, channel="telegram")
        await outbox.mark_retry(
            session=session,
            message_id=message.id,
            error="429",
            delay=timedelta(seconds=7),
            count_attempt=False,
        )
    (row,) = await _all(db)
    assert row.attempts == 0
    assert row.next_attempt_at == clock.now() + timedelta(seconds=7)


async def test_sent_messages_keep_their_external_id(db, clock):
    await _message(db, channel="email")
    async with db.session() as session:
        (message,) = await outbox.claim(session=session, channel="email")
        await outbox.mark_sent(session=session, message_id=message.id, external_id="<abc@palabre>")
    (row,) = await _all(db)
    assert (row.status, row.external_id, row.sent_at) == ("sent", "<abc@palabre>", clock.now())


async def test_concurrent_workers_never_claim_the_same_message(db, clock):
    async with db.session() as session:
        await outbox.enqueue_many(
            session=session,
            messages=[
                {
                    "channel": "telegram",
                    "template": "t",
                    "payload": {},
                    "dedupe_key": f"m{i}",
                    "address": f"chat-{i}",
                }
                for i in range(60)
            ],
        )

    async def worker() -> list[str]:
        taken: list[str] = []
        while True:
            async with db.session() as session:
                batch = await outbox.claim(session=session, channel="telegram", limit=7)
            if not batch:
                return taken
            taken += [message.dedupe_key for message in batch]
            await asyncio.sleep(0)

    results = await asyncio.gather(*(worker() for _ in range(4)))
    claimed = [key for result in results for key in result]
    assert sorted(claimed) == sorted(f"m{i}" for i in range(60))
    assert len(claimed) == len(set(claimed))
