"""What each person decides: consent, language, digest, channel, and STOP."""

from __future__ import annotations

import pytest
from sqlmodel import select

from consultation import outbox, preferences, privacy
from consultation.errors import UserError
from models import AuditEvent, Channel, OutboxMessage, OutboxStatus
from templates.render import render_error
from tests.factories import make_consultation, make_participant

TG = Channel.TELEGRAM


async def events(session, action: str) -> list[AuditEvent]:
    return list(
        (
            await session.exec(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        ).all()
    )


async def news_for(session, person, key: str) -> bool:
    return await outbox.notify(
        session=session,
        participant=person,
        template="phase_opened",
        payload={"kind": "observe"},
        dedupe_key=f"{key}:{person.id}",
    )


async def test_consent_is_given_once_timestamped_and_audited(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        aicha = await make_participant(session, consultation, consented=False, telegram_chat_id=7)
        assert not preferences.has_consented(aicha)
        with pytest.raises(UserError) as refused:
            preferences.require_consent(aicha)
        assert refused.value.code == "preferences.consent_required"

        await preferences.give_consent(session=session, participant=aicha, channel=TG)
        given_at = aicha.consent_at
        assert given_at == clock.now()
        clock.advance(minutes=5)
        await preferences.give_consent(session=session, participant=aicha, channel=TG)

        assert aicha.consent_at == given_at
        [event] = await events(session, "consent.given")
        assert (event.actor_id, event.detail) == (aicha.id, {"channel": "telegram"})
        preferences.require_consent(aicha)


async def test_declining_consent_stops_the_messages_waiting_for_that_person(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        aicha = await make_participant(session, consultation, telegram_chat_id=7)
        bruno = await make_participant(session, consultation, telegram_chat_id=8)
        assert await news_for(session, aicha, "before")
        assert await news_for(session, bruno, "before")

        clock.advance(hours=1)
        await preferences.decline_consent(session=session, participant=aicha, channel=TG)

        assert aicha.consent_at is None and aicha.consent_declined_at == clock.now()
        rows = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        assert {row.participant_id: row.status for row in rows} == {
            aicha.id: OutboxStatus.CANCELLED,
            bruno.id: OutboxStatus.PENDING,
        }
        [event] = await events(session, "consent.withdrawn")
        assert event.detail == {"channel": "telegram", "cancelled_messages": 1}

        # Saying yes later is possible; the standing "no" is then lifted.
        await preferences.give_consent(session=session, participant=aicha, channel=TG)
        assert preferences.has_consented(aicha) and aicha.consent_declined_at is None


async def test_declining_at_onboarding_is_recorded_as_a_decline(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        newcomer = await make_participant(session, consultation, consented=False)
        await preferences.decline_consent(
            session=session, participant=newcomer, channel=Channel.EMAIL
        )
        await preferences.decline_consent(
            session=session, participant=newcomer, channel=Channel.EMAIL
        )
        assert len(await events(session, "consent.declined")) == 1


@pytest.mark.parametrize(("asked", "stored"), [("en", "en"), ("EN-gb", "en"), ("fr_FR", "fr")])
async def test_the_language_is_one_palabre_speaks(db, clock, asked, stored):
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation, locale="fr")
        await preferences.set_locale(session=session, participant=person, locale=asked)
        assert person.locale == stored


async def test_an_unknown_language_cadence_or_channel_is_refused(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation, email=None, telegram_chat_id=5)
        attempts = [
            (preferences.set_locale, {"locale": "de"}, "preferences.unknown_locale"),
            (preferences.set_cadence, {"cadence": "hourly"}, "preferences.unknown_cadence"),
            (preferences.set_channel, {"channel": "fax"}, "preferences.unknown_channel"),
            (preferences.set_channel, {"channel": "email"}, "preferences.no_email"),
        ]
        for function, argument, code in attempts:
            with pytest.raises(UserError) as refused:
                await function(session=session, participant=person, **argument)
            assert refused.value.code == code
            for locale in ("fr", "en"):
                assert render_error(code, refused.value.params, locale)
        assert (person.locale, person.preferred_channel) == ("fr", "telegram")

        by_email = await make_participant(session, consultation)
        with pytest.raises(UserError) as refused:
            await preferences.set_channel(session=session, participant=by_email, channel="telegram")
        assert refused.value.code == "preferences.no_telegram"


async def test_cadence_and_channel_change_how_the_person_is_reached(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation, telegram_chat_id=9)
        for cadence in ("daily", "OFF", "weekly"):
            await preferences.set_cadence(session=session, participant=person, cadence=cadence)
            assert person.digest_cadence == cadence.lower()

        await preferences.set_channel(session=session, participant=person, channel="email")
        assert outbox.channel_for(person) == "email"
        await preferences.set_channel(session=session, participant=person, channel="Telegram")
        assert outbox.channel_for(person) == "telegram"


async def test_stop_means_no_more_messages_on_any_channel(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation, telegram_chat_id=9)
        await outbox.enqueue(
            session=session,
            channel="email",
            template="digest",
            payload={},
            dedupe_key="digest:1",
            participant_id=person.id,
        )
        assert await news_for(session, person, "pending")
        sent = await outbox.enqueue(
            session=session,
            channel="telegram",
            template="welcome",
            payload={},
            dedupe_key="welcome:1",
            participant_id=person.id,
        )
        assert sent
        [welcome] = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.template == "welcome"))
        ).all()
        await outbox.mark_sent(session=session, message_id=welcome.id)

        await preferences.opt_out(session=session, participant=person, channel=TG)
        await preferences.opt_out(session=session, participant=person, channel=TG)

        rows = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        assert [(row.template, row.status) for row in rows] == [
            ("digest", OutboxStatus.CANCELLED),
            ("phase_opened", OutboxStatus.CANCELLED),
            ("welcome", OutboxStatus.SENT),
        ]
        assert not await news_for(session, person, "after")
        [event] = await events(session, "participant.opted_out")
        assert event.detail == {"channel": "telegram", "cancelled_messages": 2}

        # Coming back lifts the STOP.
        await preferences.opt_in(session=session, participant=person, channel=TG)
        assert person.opted_out_at is None
        assert await news_for(session, person, "back")
        assert len(await events(session, "participant.opted_in")) == 1


async def test_a_forgotten_person_has_no_settings_left(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation)
        await privacy.forget(session=session, participant=person, erasure_key="test-key")
        with pytest.raises(UserError) as refused:
            await preferences.set_cadence(session=session, participant=person, cadence="daily")
        assert refused.value.code == "preferences.forgotten"
        assert render_error("preferences.forgotten", {}, "fr")
