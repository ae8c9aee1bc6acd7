"""Who gets a digest, when, and what it says (consultation/digests.py), and how it reads."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlmodel import select

from consultation import digests, findings, observations
from mailer.compose import compose
from models import Channel, OutboxMessage, Participant
from tests.factories import make_consultation, make_participant
from tests.mailer.conftest import mail_config, review_story


async def digest_rows(session, participant_id=None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.template == "digest")
    if participant_id is not None:
        query = query.where(OutboxMessage.participant_id == participant_id)
    return list((await session.exec(query.order_by(OutboxMessage.id))).all())


async def test_the_first_digest_lists_every_finding_as_new_and_names_nobody_else(db, clock) -> None:
    async with db.session() as session:
        story = await review_story(session)
        telegram = await make_participant(
            session, story.consultation, name="Théo Telegram", telegram_chat_id=42
        )
        declined = await make_participant(
            session, story.consultation, name="Nadia", consented=False
        )
        written = await digests.enqueue_due_digests(
            session=session, consultation_id=story.consultation.id, now=clock.now()
        )
        assert written == 2  # Aïcha (daily) and Bruno (weekly); not the coordinator
        rows = await digest_rows(session)
        assert {r.participant_id for r in rows} == {story.aicha.id, story.bruno.id}
        assert telegram.id not in {r.participant_id for r in rows}
        assert declined.id not in {r.participant_id for r in rows}
        payload = next(r.payload for r in rows if r.participant_id == story.aicha.id)
        assert payload["first"] is True
        assert sorted(f["code"] for f in payload["findings"]) == ["F1", "F2", "F3"]
        assert all(f["new"] for f in payload["findings"])
        assert payload["phase"]["kind"] == "review"
        assert payload["awaiting_count"] == 3
        flat = json.dumps(payload, ensure_ascii=False)
        for name in ("Bruno", "Théo", "Nadia", "Céline", "bruno@", "celine@"):
            assert name not in flat
        person = await session.get(Participant, story.aicha.id)
        assert person.last_digest_at == clock.now()
        # Run again the same morning: nothing new is written.
        assert (
            await digests.enqueue_due_digests(
                session=session, consultation_id=story.consultation.id, now=clock.now()
            )
            == 0
        )


async def test_the_next_day_only_what_still_awaits_and_nothing_when_all_is_answered(
    db, clock
) -> None:
    async with db.session() as session:
        story = await review_story(session)
        await digests.enqueue_due_digests(
            session=session, consultation_id=story.consultation.id, now=clock.now()
        )
        await findings.record_stance(
            session=session,
            participant=story.aicha,
            code="F1",
            choice="confirm",
            channel=Channel.EMAIL,
        )
    clock.advance(days=1)
    async with db.session() as session:
        aicha = await session.get(Participant, story.aicha.id)
        await digests.enqueue_due_digests(
            session=session, consultation_id=story.consultation.id, now=clock.now()
        )
        _first, second = await digest_rows(session, aicha.id)
        assert sorted(f["code"] for f in second.payload["findings"]) == ["F2", "F3"]
        assert not any(f["new"] for f in second.payload["findings"])
        assert second.payload["first"] is False
        # Bruno is weekly: nothing for him before next Monday.
        assert len(await digest_rows(session, story.bruno.id)) == 1
        for code in ("F2", "F3"):
            await findings.record_stance(
                session=session, participant=aicha, code=code, choice="abstain", channel="email"
            )
    clock.advance(days=1)
    async with db.session() as session:
        await digests.enqueue_due_digests(
            session=session, consultation_id=story.consultation.id, now=clock.now()
        )
        assert len(await digest_rows(session, story.aicha.id)) == 2  # nothing to say: no email
    clock.set(clock.now() + timedelta(days=5))  # Monday 9 March
    async with db.session() as session:
        await digests.enqueue_due_digests(
            session=session, consultation_id=story.consultation.id, now=clock.now()
        )
        assert len(await digest_rows(session, story.bruno.id)) == 2


async def test_a_standing_invitation_to_observe_is_news_when_the_phase_opens_and_closes(
    db, clock
) -> None:
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe", phase_days=10)
        lea = await make_participant(session, consultation, email="lea@asso.example")
        await digests.enqueue_digest(session=session, participant=lea)
        lea.digest_cadence = "daily"
        session.add(lea)
        (first,) = await digest_rows(session)
        assert first.payload["observations_welcome"] is True
    for day in range(1, 8):
        clock.advance(days=1)
        async with db.session() as session:
            await digests.enqueue_due_digests(
                session=session, consultation_id=consultation.id, now=clock.now()
            )
            assert len(await digest_rows(session)) == 1, f"day {day}"
    clock.advance(days=1, hours=12)  # a day and a half before the phase closes
    async with db.session() as session:
        await digests.enqueue_due_digests(
            session=session, consultation_id=consultation.id, now=clock.now()
        )
        assert len(await digest_rows(session)) == 2
        person = await session.get(Participant, lea.id)
        await observations.submit_observation(
            session=session, participant=person, text="Une observation.", channel="email"
        )


async def test_opted_out_off_and_forgotten_people_get_no_digest(db, clock) -> None:
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe")
        off = await make_participant(session, consultation, cadence="off")
        gone = await make_participant(session, consultation)
        gone.opted_out_at = clock.now()
        session.add(gone)
        assert (
            await digests.enqueue_due_digests(
                session=session, consultation_id=consultation.id, now=clock.now()
            )
            == 0
        )
        assert not await digests.enqueue_digest(session=session, participant=off, force=True)


async def test_the_digest_renders_in_both_languages_with_a_prefilled_reply_per_item(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
        await digests.enqueue_due_digests(
            session=session, consultation_id=story.consultation.id, now=clock.now()
        )
        rows = await digest_rows(session)
        for row in rows:
            person = await session.get(Participant, row.participant_id)
            email = compose(
                config=config,
                message=row,
                participant=person,
                consultation=story.consultation,
            )
            text = email.message.get_body(("plain",)).get_content()
            html = email.message.get_body(("html",)).get_content()
            confirm = "oui" if person.locale == "fr" else "confirm"
            for code in ("F1", "F2", "F3"):
                assert f"{code} {confirm}" in text
                assert f"body={code}%20{confirm}" in html
            marker = (
                "Répondez au-dessus de cette ligne"
                if person.locale == "fr"
                else "Reply above this line"
            )
            assert text.startswith(f"##- {marker} -##")
            assert "mailto:reply+" in html and "&amp;body=" in html
            assert email.message["Content-Language"] == person.locale
