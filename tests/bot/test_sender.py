"""The Telegram sender against the fake Bot API: rate limits, failures, long texts, restarts."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.sender import TelegramSender
from bot.text import visible_length
from consultation import findings, outbox
from models import Channel, OutboxMessage, OutboxStatus, Participant
from tests.bot.harness import make_settings
from tests.factories import make_consultation, make_coordinator, make_participant

FIRST_CHAT = 10_001


def max_in_window(timestamps: list[float], window: float = 1.0) -> int:
    """The most timestamps found in any window of `window` seconds."""
    ordered = sorted(timestamps)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def people(db, count: int, *, current="review", email=True, **kwargs):
    async with db.session() as session:
        consultation = await make_consultation(session, current=current)
        persons = [
            await make_participant(
                session,
                consultation,
                telegram_chat_id=FIRST_CHAT + number,
                email=None if not email else "",
                **kwargs,
            )
            for number in range(count)
        ]
    return consultation, persons


async def notify_all(db, persons, *, template="broadcast", text="Réunion jeudi", tag="t"):
    async with db.session() as session:
        for person in persons:
            await outbox.notify(
                session=session,
                participant=person,
                template=template,
                payload={"text": text, "category": None, "title": "Plan ESS"},
                dedupe_key=f"{tag}:{person.id}",
            )


async def rows(db) -> list[OutboxMessage]:
    async with db.session() as session:
        return list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())


def sender_for(db, botapi, harness=None, **options) -> TelegramSender:
    bot = harness.application.bot if harness else None
    settings = make_settings(botapi)
    if bot is None:
        from telegram import Bot

        bot = Bot(
            settings.telegram_token.get_secret_value(),
            base_url=botapi.base_url,
            base_file_url=botapi.base_file_url,
        )
    return TelegramSender(bot, db, settings.bot_config(), **options)


async def test_a_coordinator_publishes_to_200_people_within_the_rate(harness, db, botapi):
    """Given 200 participants on Telegram, when Céline publishes two findings from the bot,
    then the server sees exactly 200 messages, never more than the rate in any second."""
    consultation, persons = await people(db, 200)
    async with db.session() as session:
        await make_coordinator(session, consultation, telegram_chat_id=9_000)
        for text in ("Les petites coopératives manquent d'accompagnement.", "Le foncier est rare."):
            await findings.draft_finding(
                session=session, consultation_id=consultation.id, by=None, text=text
            )
    coordinator = harness.phone(9_000, name="Céline")
    await coordinator.send("/publish")
    await coordinator.tap("pb:y")
    assert "F1, F2" in coordinator.last()
    chats = {person.telegram_chat_id for person in persons}
    before = len(botapi.calls_to("sendMessage"))

    rate = 100
    sender = sender_for(db, botapi, harness, rate=rate)
    stop = asyncio.Event()
    started = time.monotonic()
    running = asyncio.create_task(sender.run(stop))
    await botapi.awaiting_calls("sendMessage", before + 200, timeout=30)
    drained = time.monotonic() - started
    stop.set()
    await running

    sent = [c for c in botapi.calls_to("sendMessage") if c.params["chat_id"] in chats]
    assert len(sent) == 200 and all(call.ok for call in sent)
    assert {call.params["chat_id"] for call in sent} == chats
    peak = max_in_window([call.timestamp for call in sent])
    assert peak <= rate
    assert all(row.status == OutboxStatus.SENT for row in await rows(db))
    # Each message offers the one tap that answers it.
    assert sent[0].params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "go:findings"
    print(f"\n200 messages: peak {peak}/s (limit {rate}/s), drained in {drained:.2f}s")
    assert drained >= 1.0  # 200 messages at 100/s cannot go out in under a second


async def test_the_default_rate_of_25_per_second_holds(db, clock, botapi):
    _, persons = await people(db, 60, current="observe")
    await notify_all(db, persons)
    sender = sender_for(db, botapi)
    assert sender.rate == 25

    started = time.monotonic()
    assert await sender.drain_once() == 50  # one batch: twice the rate
    assert await sender.drain_once() == 10
    elapsed = time.monotonic() - started

    timestamps = [call.timestamp for call in botapi.calls_to("sendMessage", ok=True)]
    assert len(timestamps) == 60
    assert max_in_window(timestamps) <= 25
    assert elapsed >= 2.0
    print(f"\n60 messages at 25/s: peak {max_in_window(timestamps)}/s in {elapsed:.2f}s")


async def test_one_chat_gets_at_most_one_message_a_second(db, clock, botapi):
    _, (aicha,) = await people(db, 1, current="observe")
    async with db.session() as session:
        for number in range(3):
            await outbox.notify(
                session=session,
                participant=aicha,
                template="broadcast",
                payload={"text": f"Message {number}", "category": None, "title": "Plan ESS"},
                dedupe_key=f"m{number}",
            )
    sender = sender_for(db, botapi, rate=30)

    assert await sender.drain_once() == 3

    calls = botapi.calls_to("sendMessage", ok=True)
    assert [call.result["text"].splitlines()[-1] for call in calls] == [
        "Message 0",
        "Message 1",
        "Message 2",
    ]  # in order
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(calls)]
    assert min(gaps) >= 1.0


async def test_429_waits_retry_after_without_counting_an_attempt(db, clock, botapi):
    _, (aicha,) = await people(db, 1, current="observe")
    await notify_all(db, [aicha])
    botapi.fail_next("sendMessage", 429, retry_after=1)
    sender = sender_for(db, botapi)

    await sender.drain_once()

    (row,) = await rows(db)
    assert row.status == OutboxStatus.PENDING and row.attempts == 0
    assert row.next_attempt_at == clock.now() + timedelta(seconds=1)
    assert "429" in row.last_error
    assert await sender.drain_once() == 0  # not due yet
    clock.advance(seconds=1)
    started = time.monotonic()
    await sender.drain_once()
    assert time.monotonic() - started >= 0.5  # the sender itself waited out retry_after
    (row,) = await rows(db)
    assert row.status == OutboxStatus.SENT
    assert [call.status for call in botapi.calls_to("sendMessage")] == [429, 200]


async def test_403_marks_telegram_inactive_and_resends_by_email(db, clock, botapi):
    _, (aicha, bruno) = await people(db, 2, current="observe")
    async with db.session() as session:
        bruno_row = await session.get(Participant, bruno.id)
        bruno_row.email = None
        session.add(bruno_row)
    await notify_all(db, [aicha, bruno], tag="news")
    botapi.block_chat(aicha.telegram_chat_id)
    botapi.block_chat(bruno.telegram_chat_id)
    sender = sender_for(db, botapi)

    await sender.drain_once()

    by_key = {row.dedupe_key: row for row in await rows(db)}
    assert by_key[f"news:{aicha.id}"].status == OutboxStatus.CANCELLED
    email = by_key[f"news:{aicha.id}:email"]
    assert (email.channel, email.template, email.status) == ("email", "broadcast", "pending")
    assert email.payload == by_key[f"news:{aicha.id}"].payload
    # Nobody to fall back on: a dead letter that says why.
    assert by_key[f"news:{bruno.id}"].status == OutboxStatus.DEAD
    assert "no email address" in by_key[f"news:{bruno.id}"].last_error
    async with db.session() as session:
        assert not (await session.get(Participant, aicha.id)).telegram_active
        # What comes next for Aïcha goes by email from the start.
        assert outbox.channel_for(await session.get(Participant, aicha.id)) == Channel.EMAIL


async def test_400_is_a_dead_letter_with_the_error_kept(db, clock, botapi):
    _, (aicha,) = await people(db, 1, current="observe")
    await notify_all(db, [aicha])
    botapi.fail_next("sendMessage", 400, description="Bad Request: chat not found")

    await sender_for(db, botapi).drain_once()

    (row,) = await rows(db)
    assert row.status == OutboxStatus.DEAD
    assert "chat not found" in row.last_error.lower()


async def test_network_errors_retry_with_backoff(db, clock, botapi):
    _, (aicha,) = await people(db, 1, current="observe")
    await notify_all(db, [aicha])
    botapi.fail_next("sendMessage", 500, times=2)
    sender = sender_for(db, botapi)

    await sender.drain_once()
    (row,) = await rows(db)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1)
    assert timedelta(seconds=15) <= row.next_attempt_at - clock.now() <= timedelta(seconds=30)
    clock.advance(minutes=1)
    await sender.drain_once()
    (row,) = await rows(db)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 2)
    clock.advance(minutes=2)
    await sender.drain_once()

    (row,) = await rows(db)
    assert row.status == OutboxStatus.SENT and row.attempts == 3
    assert [call.status for call in botapi.calls_to("sendMessage")] == [500, 500, 200]


async def test_a_long_message_is_split_at_paragraphs(db, clock, botapi):
    _, (aicha,) = await people(db, 1, current="observe")
    paragraphs = [f"Paragraphe {n} : " + "<l'ESS> & co " * 150 for n in range(6)]
    await notify_all(db, [aicha], template="broadcast", text="\n\n".join(paragraphs))
    sender = sender_for(db, botapi, rate=30)

    await sender.drain_once()

    calls = botapi.calls_to("sendMessage", ok=True)
    assert len(calls) == 3
    for call in calls:
        assert visible_length(call.params["text"]) <= 4096
    shown = "\n\n".join(call.result["text"] for call in calls)
    for paragraph in paragraphs:
        assert paragraph.strip() in shown  # no paragraph was cut in two
    assert "reply_markup" not in calls[0].params
    (row,) = await rows(db)
    assert row.status == OutboxStatus.SENT
    assert row.external_id == ",".join(str(call.result["message_id"]) for call in calls)


async def test_quiet_hours_hold_notifications_until_morning(db, clock, botapi):
    _, (aicha,) = await people(db, 1, current="observe")
    await notify_all(db, [aicha])  # enqueued at 10:00 Paris
    clock.set(datetime(2026, 3, 2, 21, 30, tzinfo=UTC))  # 22:30 in Paris, before it went out

    assert await sender_for(db, botapi).drain_once() == 1

    (row,) = await rows(db)
    assert row.status == OutboxStatus.PENDING and row.attempts == 0
    assert row.next_attempt_at == datetime(2026, 3, 3, 7, 0, tzinfo=UTC)  # 08:00 in Paris
    assert botapi.calls_to("sendMessage") == []


async def test_people_who_cannot_be_reached_are_skipped(db, clock, botapi):
    _, (aicha, bruno) = await people(db, 2, current="observe")
    await notify_all(db, [aicha, bruno], tag="n")
    async with db.session() as session:
        gone = await session.get(Participant, aicha.id)
        gone.erased_at = clock.now()
        session.add(gone)
        moved = await session.get(Participant, bruno.id)
        moved.telegram_active = False
        session.add(moved)

    await sender_for(db, botapi).drain_once()

    by_key = {row.dedupe_key: row for row in await rows(db)}
    assert by_key[f"n:{aicha.id}"].status == OutboxStatus.CANCELLED
    assert by_key[f"n:{bruno.id}"].status == OutboxStatus.CANCELLED
    assert by_key[f"n:{bruno.id}:email"].channel == Channel.EMAIL
    assert botapi.calls_to("sendMessage") == []


async def test_stopped_mid_batch_then_restarted_sends_every_message_once(db, clock, botapi):
    """Given 30 messages, when the sender stops after a few and a new one starts, then every
    person gets their message exactly once."""
    _, persons = await people(db, 30, current="observe")
    await notify_all(db, persons)
    first = sender_for(db, botapi, rate=10)
    stop = asyncio.Event()
    running = asyncio.create_task(first.run(stop))
    await botapi.awaiting_calls("sendMessage", 5, timeout=10)
    stop.set()
    await running
    sent_before_restart = len(botapi.calls_to("sendMessage"))
    assert 5 <= sent_before_restart < 30
    statuses = {row.status for row in await rows(db)}
    assert OutboxStatus.SENDING not in statuses  # nothing left claimed by the stopped sender

    second = sender_for(db, botapi, rate=30)
    while await second.drain_once():
        pass

    chats = [call.params["chat_id"] for call in botapi.calls_to("sendMessage", ok=True)]
    assert sorted(chats) == sorted(person.telegram_chat_id for person in persons)
    assert all(row.status == OutboxStatus.SENT for row in await rows(db))
