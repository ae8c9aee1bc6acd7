"""Invitation links cannot take an account over: only the newest link works, and a link opened
from a second chat moves the account only when that chat confirms, with the first chat told."""

from __future__ import annotations

from consultation import participants
from models import Participant
from tests.factories import make_consultation, make_participant

CHAT_A, CHAT_B = 5001, 6002


async def issue(db, person_id: int) -> str:
    async with db.session() as session:
        person = await session.get(Participant, person_id)
        return await participants.create_invitation(session=session, participant=person)


async def bound_chat(db, person_id: int) -> int | None:
    async with db.session() as session:
        return (await session.get(Participant, person_id)).telegram_chat_id


async def test_an_older_unused_link_no_longer_opens_anything(harness, db):
    """Given Aïcha's second link bound chat A, when her first link is opened from chat B, chat B
    is told that a newer link exists and chat A keeps her account."""
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation, consented=False)
    first = await issue(db, person.id)
    second = await issue(db, person.id)
    phone_a, phone_b = harness.phone(CHAT_A), harness.phone(CHAT_B, name="Mallory")
    await phone_a.send(f"/start {second}")
    await phone_a.tap("cs:y")

    await phone_b.send(f"/start {first}")

    assert "Un lien d’invitation plus récent" in phone_b.last()
    assert await bound_chat(db, person.id) == CHAT_A
    assert not any("autre conversation" in shown for shown in phone_a.shown())


async def test_a_link_opened_from_a_second_chat_asks_there_and_tells_the_first(harness, db):
    """Given Aïcha uses chat A and consented, when a new link of hers is opened from chat B,
    chat B must confirm, chat A is told; once confirmed, chat B is asked for consent again."""
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation, telegram_chat_id=CHAT_A)
    token = await issue(db, person.id)
    phone_a, phone_b = harness.phone(CHAT_A), harness.phone(CHAT_B)

    await phone_b.send(f"/start {token}")

    assert "déjà utilisé depuis une autre conversation" in phone_b.last()
    assert [data for _, data in phone_b.buttons(phone_b.last_message_id())] == [
        f"iv:y:{token}",
        "iv:n",
    ]
    assert "a ouvert votre lien d’invitation depuis une autre conversation" in phone_a.last()
    assert await bound_chat(db, person.id) == CHAT_A

    await phone_b.tap(f"iv:y:{token}")

    assert await bound_chat(db, person.id) == CHAT_B
    assert "Êtes-vous d’accord" in phone_b.last()  # consent, never skipped
    assert "est désormais utilisé depuis une autre conversation" in phone_a.last()


async def test_keeping_the_other_chat_changes_nothing(harness, db):
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation, telegram_chat_id=CHAT_A)
    token = await issue(db, person.id)
    phone_b = harness.phone(CHAT_B)
    await phone_b.send(f"/start {token}")

    await phone_b.tap("iv:n")

    assert "reste associé à l’autre conversation" in phone_b.last()
    assert await bound_chat(db, person.id) == CHAT_A


async def test_the_move_cannot_skip_its_confirmation(db):
    """The rule lives in the core: redeeming for a second chat without `move` is refused."""
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation, telegram_chat_id=CHAT_A)
        token = await participants.create_invitation(session=session, participant=person)
    async with db.session() as session:
        try:
            await participants.redeem_invitation(session=session, token=token, chat_id=CHAT_B)
        except participants.UserError as exc:
            assert exc.code == "invitation.other_chat"
        else:
            raise AssertionError("the account moved without confirmation")
