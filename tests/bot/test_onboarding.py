"""Onboarding on Telegram: invitation, consent, language, welcome; strangers are turned away."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from consultation import participants
from models import AuditEvent, InboundRecord, Participant
from tests.factories import make_consultation, make_participant

AICHA = 5001


async def invite(db, *, locale="fr", consented=False, current="observe"):
    async with db.session() as session:
        consultation = await make_consultation(session, current=current)
        person = await make_participant(
            session, consultation, name="Aïcha Benali", locale=locale, consented=consented
        )
        token = await participants.create_invitation(session=session, participant=person)
    return consultation, person, token


async def test_invitation_consent_language_welcome(harness, db):
    """Given an invitation, when Aïcha opens it, accepts and picks English, she is welcomed."""
    _consultation, person, token = await invite(db)
    phone = harness.phone(AICHA)

    await phone.send(f"/start {token}")

    consent = phone.last()
    assert "Palabre" in consent and "/forget" in consent and "/mydata" in consent
    assert [data for _, data in phone.buttons(phone.last_message_id())] == ["cs:y", "cs:n"]

    await phone.tap("cs:y")
    assert [data for _, data in phone.buttons(phone.last_message_id())] == ["lg:fr", "lg:en"]
    await phone.tap("lg:en")

    welcome = phone.last()
    assert "Welcome, Aïcha Benali!" in welcome
    assert "Comment mieux soutenir l'économie sociale et solidaire ?" in welcome
    assert "Les demandes de subvention individuelles" in welcome  # out of scope, shown
    assert "Current phase: observations, until" in welcome
    async with db.session() as session:
        bound = await session.get(Participant, person.id)
        assert bound.telegram_chat_id == AICHA and bound.telegram_active
        assert bound.consent_at is not None and bound.locale == "en"


async def test_a_used_or_unknown_token_binds_nothing(harness, db):
    _, person, token = await invite(db)
    phone = harness.phone(AICHA)
    await phone.send(f"/start {token}")
    await phone.send(f"/start {token}")  # her own link, opened again: no complaint
    assert "Êtes-vous d’accord" in phone.last()
    intruder = harness.phone(6002, name="Mallory")

    await intruder.send(f"/start {token}")
    assert "déjà servi" in intruder.last()
    await intruder.send("/start not-a-token")
    assert "valide" in intruder.last()

    async with db.session() as session:
        assert (await session.get(Participant, person.id)).telegram_chat_id == AICHA
        assert (await participants.by_chat(session=session, chat_id=6002)) is None


async def test_an_expired_token_is_explained(harness, db, clock):
    _, _, token = await invite(db)
    clock.advance(days=31)
    phone = harness.phone(AICHA)

    await phone.send(f"/start {token}")

    assert "expiré" in phone.last()


async def test_a_stranger_only_learns_how_to_get_an_invitation(harness, db):
    phone = harness.phone(7003, language="en")

    for text in ("/start", "hello there", "/findings", "/publish"):
        await phone.send(text)

    texts = phone.new()
    assert len(texts) == 4
    assert all("invitation link" in text for text in texts)


async def test_declining_consent_records_nothing_and_the_person_can_come_back(harness, db):
    _, _person, token = await invite(db)
    phone = harness.phone(AICHA)
    await phone.send(f"/start {token}")

    await phone.tap("cs:n")
    assert "ne vous écrira pas" in phone.last()
    await phone.send("Les petites coopératives manquent d'accompagnement.")
    assert "Êtes-vous d’accord" in phone.last()  # the consent screen again, nothing recorded

    await phone.tap("cs:y", message_id=phone.last_message_id())
    await phone.tap("lg:fr")
    assert "Bienvenue" in phone.last()


async def test_status_after_onboarding(harness, db):
    _, _, token = await invite(db, consented=True)
    phone = harness.phone(AICHA)
    await phone.send(f"/start {token}")
    assert "Bienvenue" in phone.last()  # consent given before: straight to the welcome

    await phone.send("/status")

    status = phone.last()
    assert "Phase en cours" in status
    assert "vos observations" in status


async def test_every_update_is_recorded_with_its_outcome(harness, db):
    _, person, token = await invite(db, consented=True)
    phone = harness.phone(AICHA)
    first = await phone.send(f"/start {token}")
    second = await phone.send("/status")

    async with db.session() as session:
        records = (await session.exec(select(InboundRecord).order_by(InboundRecord.id))).all()
        events = (await session.exec(select(AuditEvent.action))).all()
    assert [(r.external_id, r.status) for r in records] == [
        (str(first), "processed"),
        (str(second), "processed"),
    ]
    assert records[1].participant_id == person.id
    assert "invitation.redeemed" in events
    assert timedelta(0) <= records[0].processed_at - records[0].received_at
