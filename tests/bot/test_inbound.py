"""Inbound safety: redelivered updates, floods, and faults answered with an apology."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlmodel import SQLModel, select

from bot import dialogue
from consultation import participants
from models import InboundRecord, Observation
from tests.bot.harness import TOKEN
from tests.factories import make_consultation, make_participant

AICHA = 5001


async def aicha_on_telegram(db, *, current="observe"):
    async with db.session() as session:
        consultation = await make_consultation(session, current=current)
        person = await make_participant(session, consultation, telegram_chat_id=AICHA)
    return consultation, person


async def test_a_redelivered_update_does_nothing(harness, db, botapi):
    """Given an observation recorded from a tap, when Telegram delivers that tap again, then
    nothing is recorded twice and the bot does not answer twice."""
    await aicha_on_telegram(db)
    phone = harness.phone(AICHA)
    await phone.send("Le foncier manque pour les ateliers partagés.")
    record = next(d for _, d in phone.buttons(phone.last_message_id()) if d.startswith("ob:y:"))
    update_id = await phone.tap(record)
    raw = next(u for u in botapi.pushed_updates if u["update_id"] == update_id)
    calls_before = len(botapi.calls)

    botapi.push_update(raw)
    await harness.application.wait_processed(update_id)
    await phone.send("/status")  # proves the redelivery was fetched and passed over

    async with db.session() as session:
        assert len((await session.exec(select(Observation))).all()) == 1
        records = (
            await session.exec(
                select(InboundRecord).where(InboundRecord.external_id == str(update_id))
            )
        ).all()
    assert len(records) == 1
    new_calls = [c.method for c in botapi.calls[calls_before:]]
    assert new_calls.count("answerCallbackQuery") == 0
    assert new_calls.count("editMessageText") == 0


async def test_more_than_20_messages_a_minute_are_held_back(harness, db, clock):
    await aicha_on_telegram(db)
    phone = harness.phone(AICHA)

    for number in range(25):
        await phone.send(f"/status {number}")

    texts = phone.new()
    assert len(texts) == 21  # 20 answers, then one request to slow down, then silence
    assert "ralentir" in texts[20]
    async with db.session() as session:
        statuses = [r.status for r in (await session.exec(select(InboundRecord))).all()]
    assert statuses.count("processed") == 20 and statuses.count("flood") == 5

    clock.advance(minutes=1)
    await phone.send("/status")
    assert "Phase en cours" in phone.last()


async def test_a_fault_gets_an_apology_and_a_log_line_without_secrets(harness, db, caplog):
    await aicha_on_telegram(db)
    phone = harness.phone(AICHA)
    async with db.session() as session:  # a real fault: the table the dialogue needs is gone
        await session.execute(text("DROP TABLE dialoguestate"))
    try:
        with caplog.at_level(logging.ERROR, logger="bot.inbound"):
            update_id = await phone.send("Une observation qui ne pourra pas être traitée.")
    finally:
        async with db.engine.begin() as connection:  # the next tests share this schema
            await connection.run_sync(SQLModel.metadata.create_all)

    apology = phone.last()
    assert apology.startswith("Désolé, un problème est survenu de notre côté.")
    assert "Traceback" not in apology and "dialoguestate" not in apology
    (line,) = [r for r in caplog.records if r.name == "bot.inbound"]
    assert f"update {update_id} failed" in line.getMessage()
    assert TOKEN not in line.getMessage()
    async with db.session() as session:
        record = (
            await session.exec(
                select(InboundRecord).where(InboundRecord.external_id == str(update_id))
            )
        ).one()
    assert record.status == "failed"


async def test_a_stale_button_gets_a_polite_answer(harness, db, clock):
    await aicha_on_telegram(db)
    phone = harness.phone(AICHA)
    await phone.send("Première version de mon observation.")
    first = next(d for _, d in phone.buttons(phone.last_message_id()) if d.startswith("ob:y:"))
    first_message = phone.last_message_id()
    await phone.send("Seconde version, meilleure.")

    await phone.tap(first, message_id=first_message)  # an older "Record this?" than the newest

    assert "Ce bouton n’est plus valable" in phone.last()
    assert phone.buttons(first_message) == []
    async with db.session() as session:
        assert (await session.exec(select(Observation))).all() == []
    for data in ("st:F9:c:1", "qa:99:1:3", "md:1:in", "zz:what", "rk:abc:ok"):
        await phone.tap(data, message_id=first_message)
        assert "Désolé" not in phone.last()


async def test_a_dialogue_left_for_a_day_expires(harness, db, clock):
    await aicha_on_telegram(db, current="review")
    phone = harness.phone(AICHA)
    async with db.session() as session:
        person = await participants.by_chat(session=session, chat_id=AICHA)
        await dialogue.begin(session, person, dialogue.CONTEST, code="F1", version=1)
    clock.advance(hours=25)

    await phone.send("Parce que.")

    assert "a expiré" in phone.last()


async def test_a_button_pressed_long_ago_still_works(harness, db, botapi):
    """Telegram refuses to answer a callback query older than a few minutes (after a restart,
    say); the tap is handled all the same."""
    await aicha_on_telegram(db)
    phone = harness.phone(AICHA)
    await phone.send("/help")
    botapi.fail_next(
        "answerCallbackQuery",
        400,
        description="Bad Request: query is too old and response timeout expired",
    )

    await phone.tap("go:status", message_id=phone.last_message_id())

    assert "Phase en cours" in phone.last()
