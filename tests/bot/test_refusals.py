"""Every refusal reaches the person as its own sentence, in their language, never as the
apology for a fault; a refusal that ends a dialogue leaves the person free to go on."""

from __future__ import annotations

from sqlmodel import select

from consultation import observations, phases
from models import Channel, DialogueState
from tests.factories import make_consultation, make_coordinator, make_participant

AICHA, CELINE, BRUNO = 5001, 9000, 9100
APOLOGY = ("Désolé, un problème", "Sorry, something went wrong")


def no_apology(*phones) -> None:
    for phone in phones:
        for shown in phone.shown():
            assert not any(words in shown for words in APOLOGY), shown


async def test_the_eleventh_observation_of_the_day_is_refused_kindly(harness, db):
    """Given Aïcha sent ten observations today, her eleventh is refused with the cap, and
    her next text is offered again rather than refused forever."""
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe")
        person = await make_participant(session, consultation, telegram_chat_id=AICHA)
        for number in range(10):
            await observations.submit_observation(
                session=session,
                participant=person,
                text=f"Observation numéro {number}",
                channel=Channel.TELEGRAM,
            )
    phone = harness.phone(AICHA)

    await phone.send("Les guichets ferment trop tôt.")
    await phone.tap(phone.buttons(phone.last_message_id())[0][1])

    assert "10 observations aujourd’hui" in phone.last() or "10 observations" in phone.last()
    await phone.send("Encore une idée.")
    assert "Encore une idée." in phone.last()
    no_apology(phone)


async def test_a_button_pressed_after_its_phase_closed(harness, db):
    async with db.session() as session:
        consultation = await make_consultation(session, current="propose")
        await make_participant(session, consultation, telegram_chat_id=AICHA, locale="en")
    phone = harness.phone(AICHA, language="en")
    await phone.send("/status")

    await phone.tap("st:F1:c:1", message_id=phone.last_message_id())

    assert phone.shown()[-1]
    no_apology(phone)


async def test_closing_a_phase_before_its_minimum_then_going_on(harness, db):
    """Given Céline presses "Close now" too early (a button from an older /phase message: a new
    one no longer offers it) and types her reason, she is told it is too early, and her next text
    is hers again (the reason is no longer awaited)."""
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe", min_days=3)
        await make_coordinator(session, consultation, telegram_chat_id=CELINE)
        phase = await phases.current_phase(session=session, consultation_id=consultation.id)
    phone = harness.phone(CELINE, name="Céline")
    await phone.send("/phase")
    assert not any("close" in data for _, data in phone.buttons(phone.last_message_id()))
    await phone.tap(f"ph:{phase.id}:close", message_id=phone.last_message_id())

    await phone.send("Assez d’observations")
    refusal = phone.last()
    await phone.send("Une observation de la coordinatrice.")

    assert "trop tôt pour clore" in refusal
    assert "Une observation de la coordinatrice." in phone.last()
    no_apology(phone)


async def test_a_coordinator_of_another_consultation(harness, db):
    async with db.session() as session:
        ours = await make_consultation(session, current="observe")
        theirs = await make_consultation(session, current="observe")
        await make_coordinator(session, theirs, telegram_chat_id=BRUNO)
        author = await make_participant(session, ours)
        observation = await observations.submit_observation(
            session=session, participant=author, text="Chez nous.", channel=Channel.EMAIL
        )
    phone = harness.phone(BRUNO, name="Bruno")

    await phone.tap(f"md:{observation.id}:out", message_id=1)

    assert phone.shown()
    no_apology(phone)


async def test_forged_callback_data(harness, db):
    async with db.session() as session:
        consultation = await make_consultation(session, current="evaluate", questionnaires=True)
        await make_participant(session, consultation, telegram_chat_id=AICHA)
    phone = harness.phone(AICHA)
    await phone.send("/status")

    await phone.tap("qa:1:1:9", message_id=phone.last_message_id())
    await phone.tap("lg:de", message_id=phone.last_message_id())

    assert len(phone.shown()) >= 3
    no_apology(phone)


async def test_a_nul_byte_in_a_telegram_text_is_refused_in_one_line(harness, db):
    """Given Aïcha pastes a text holding a NUL byte, she is told in one sentence, and nothing of
    it is stored (PostgreSQL could not store it, SQLite would keep it silently)."""
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe")
        await make_participant(session, consultation, telegram_chat_id=AICHA, locale="en")
    phone = harness.phone(AICHA, language="en")

    await phone.send("Les guichets\x00 ferment tôt.")
    await phone.send("/propose Un guichet\x01 unique")

    assert (
        phone.shown()
        == [
            "Your text contains invisible control characters, often left by a copy and paste. "
            "Type it again, or paste it as plain text."
        ]
        * 2
    )
    async with db.session() as session:
        assert (await session.exec(select(DialogueState))).all() == []
