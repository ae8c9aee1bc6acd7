"""/mydata, /forget, /stop and /settings: what Palabre holds of me, and how it treats me."""

from __future__ import annotations

import json

from sqlmodel import select

from models import OutboxMessage, OutboxStatus, Participant
from tests.factories import make_consultation, make_participant

AICHA = 5001


async def aicha(db, **kwargs):
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe")
        person = await make_participant(
            session, consultation, name="Aïcha Benali", telegram_chat_id=AICHA, **kwargs
        )
    return person


async def test_mydata_sends_everything_as_a_json_document(harness, db, botapi):
    person = await aicha(db)
    phone = harness.phone(AICHA)

    await phone.send("/mydata")

    (document,) = botapi.sent_documents(AICHA)
    assert document.filename.endswith("-my-data.json")
    data = json.loads(document.content)
    assert "Aïcha Benali" in json.dumps(data, ensure_ascii=False)
    assert person.email in json.dumps(data)


async def test_forget_asks_first_then_erases(harness, db):
    person = await aicha(db)
    phone = harness.phone(AICHA)

    await phone.send("/forget")
    keep = next(d for _, d in phone.buttons(phone.last_message_id()) if d.startswith("fg:n"))
    await phone.tap(keep)
    assert "Rien n’a été effacé" in phone.last()
    async with db.session() as session:
        assert (await session.get(Participant, person.id)).erased_at is None

    await phone.send("/forget")
    erase = next(d for _, d in phone.buttons(phone.last_message_id()) if d.startswith("fg:y"))
    await phone.tap(erase)
    assert "Vos données ont été effacées" in phone.last()
    async with db.session() as session:
        erased = await session.get(Participant, person.id)
    assert erased.erased_at is not None and erased.name is None and erased.telegram_chat_id is None

    await phone.send("/status")  # the chat is now a stranger's
    assert "lien d’invitation" in phone.last()


async def test_stop_then_start_again(harness, db):
    person = await aicha(db)
    phone = harness.phone(AICHA)

    await phone.send("/stop")
    assert "ne vous enverra plus de messages" in phone.last()
    async with db.session() as session:
        assert (await session.get(Participant, person.id)).opted_out_at is not None

    await phone.send("/start")
    assert "Bienvenue" in phone.last()
    async with db.session() as session:
        assert (await session.get(Participant, person.id)).opted_out_at is None


async def test_settings_change_language_digest_and_channel(harness, db):
    person = await aicha(db)
    phone = harness.phone(AICHA)

    await phone.send("/settings")
    panel = phone.last_message_id()
    assert "Récapitulatif par e-mail\u00a0: hebdomadaire" in phone.text_of(panel)
    await phone.tap("se:cd:daily", message_id=panel)
    await phone.tap("se:ch:email", message_id=panel)
    await phone.tap("se:lg:en", message_id=panel)

    assert "Email digest: daily" in phone.text_of(panel)
    assert f"by email ({person.email})" in phone.text_of(panel)
    async with db.session() as session:
        saved = await session.get(Participant, person.id)
    assert (saved.locale, saved.digest_cadence, saved.preferred_channel) == ("en", "daily", "email")
    labels = [label for label, _ in phone.buttons(panel)]
    assert "Français" in labels and "Reach me on Telegram" in labels


async def test_a_person_who_stops_gets_no_more_telegram_messages(harness, db, botapi):
    person = await aicha(db)
    async with db.session() as session:
        from consultation import outbox

        await outbox.notify(
            session=session,
            participant=await session.get(Participant, person.id),
            template="broadcast",
            payload={"text": "Réunion jeudi", "category": None, "title": "ESS"},
            dedupe_key="news",
        )
    await harness.phone(AICHA).send("/stop")

    await harness.drain()

    assert botapi.sent_messages(AICHA)[-1].startswith("Palabre ne vous enverra plus")
    async with db.session() as session:
        (row,) = (await session.exec(select(OutboxMessage))).all()
    assert row.status == OutboxStatus.CANCELLED
