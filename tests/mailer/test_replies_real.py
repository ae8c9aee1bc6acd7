"""Real-client replies acted on, with the database: whose they are, whether to trust them, which
email they answer, and the confirmation loop that turns prose into an observation.

The messages come from tests/data/replies/real (see README.md there); `test_real_corpus.py`
measures how well they are read, these stories what Palabre then does.
"""

from __future__ import annotations

from sqlmodel import select

from consultation import clock, questionnaires
from mailer import receiver, replies, tokens
from mailer.compose import compose
from models import (
    Answer,
    Consultation,
    InboundRecord,
    Observation,
    OutboxMessage,
    OutboxStatus,
    Participant,
    PhaseKind,
    Question,
    Questionnaire,
    Stance,
)
from tests.factories import make_consultation, make_participant
from tests.mailer.conftest import mail_config, reply_message, review_story
from tests.mailer.test_real_corpus import AUTHSERV_ID, key_of, load_corpus, raw_message


def trusting(tmp_path):
    return mail_config(tmp_path, trusted_authserv_id=AUTHSERV_ID)


async def corpus_story(session):
    """The review story, with Aïcha and Bruno holding the corpus personas' reply keys."""
    story = await review_story(session)
    story.aicha.reply_key, story.bruno.reply_key = key_of("aicha"), key_of("bruno")
    session.add_all([story.aicha, story.bruno])
    await session.flush()
    return story


async def stances_of(db, participant_id: int) -> list[str]:
    async with db.session() as session:
        rows = (
            await session.exec(select(Stance).where(Stance.participant_id == participant_id))
        ).all()
        return sorted(row.choice for row in rows)


async def outbox_rows(db, template: str) -> list[OutboxMessage]:
    async with db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.template == template)
        return list((await session.exec(query)).all())


async def test_a_reply_sent_to_two_reply_addresses_is_applied_for_its_sender_only(
    db, clock, tmp_path
) -> None:
    # Given Aïcha's reply that also reached Bruno's reply address (hers first, then his first)
    config = trusting(tmp_path)
    corpus = load_corpus()
    async with db.session() as session:
        story = await corpus_story(session)
    for name in (
        "gmail_fr_two_reply_addresses_own_first.eml",
        "outlook_fr_two_reply_addresses_other_first.eml",
    ):
        outcome = await replies.handle(
            config=config, database=db, raw=raw_message(config, corpus, name)
        )
        # then it is applied for her, whatever the order of the addresses
        assert (outcome.status, outcome.participant_id) == ("processed", story.aicha.id)
    assert await stances_of(db, story.aicha.id) == ["confirm", "confirm", "contest"]
    assert await stances_of(db, story.bruno.id) == []
    # and Bruno is not warned of a message "in his name": it was not one
    assert await outbox_rows(db, "email_sender_mismatch") == []


async def test_a_reply_our_mx_found_forged_is_not_applied_and_the_person_is_told(
    db, clock, tmp_path
) -> None:
    config = trusting(tmp_path)
    corpus = load_corpus()
    async with db.session() as session:
        story = await corpus_story(session)
    # Given a reply in Aïcha's name that our MX recorded as failing DMARC for asso.example
    raw = raw_message(config, corpus, "gmail_fr_spoofed_dmarc_fail.eml")
    outcome = await replies.handle(config=config, database=db, raw=raw)
    # then nothing is applied, and Aïcha is told at her registered address that it looks forged
    assert outcome.status == "rejected"
    assert await stances_of(db, story.aicha.id) == []
    (told,) = await outbox_rows(db, "email_sender_mismatch")
    assert told.participant_id == story.aicha.id and told.payload["forged"] is True
    # while a result written by a relay we do not trust changes nothing, nor does a "pass"
    # forged below our own "fail"
    for name, applied in (
        ("gmail_fr_fail_from_a_relay_we_do_not_trust.eml", True),
        ("gmail_fr_forged_pass_below_our_fail.eml", False),
        ("outlook_fr_authenticated_pass.eml", True),
    ):
        outcome = await replies.handle(
            config=config, database=db, raw=raw_message(config, corpus, name)
        )
        assert (outcome.status == "processed") is applied, name


async def test_without_a_trusted_authserv_id_no_authentication_header_is_believed(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)  # PALABRE_TRUSTED_AUTHSERV_ID unset
    corpus = load_corpus()
    async with db.session() as session:
        story = await corpus_story(session)
    raw = raw_message(config, corpus, "outlook_fr_authenticated_pass.eml")
    assert (await replies.handle(config=config, database=db, raw=raw)).status == "processed"
    assert "confirm" in await stances_of(db, story.aicha.id)


async def test_prose_is_offered_back_and_recorded_when_the_person_answers_ok(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        consultation = await make_consultation(session, current=PhaseKind.OBSERVE)
        aicha = await make_participant(
            session, consultation, name="Aïcha Benali", email="aicha@asso.example"
        )
        aicha.reply_key = key_of("aicha")
        session.add(aicha)
    # Given Aïcha writes what she sees, without any keyword, while observations are welcome
    text = "À Colomiers les jeunes ne savent pas que la régie de quartier recrute."
    address = tokens.reply_address(config, aicha.reply_key)
    first = reply_message(to=address, body=f"Bonjour,\n\n{text}\n\nAïcha")
    outcome = await replies.handle(config=config, database=db, raw=first)
    # then nothing is recorded yet; the receipt quotes what was read and offers a one-tap OK
    assert outcome.status == "processed"
    async with db.session() as session:
        assert (await session.exec(select(Observation))).all() == []
    (receipt,) = await outbox_rows(db, "email_receipt")
    (offered,) = receipt.payload["processed"]
    assert (offered["kind"], offered["value"], offered["excerpt"]) == (
        "suggestion",
        "observation",
        text,
    )
    rendered = await _receipt_text(db, config, receipt)
    assert "répondez simplement OK à ce courriel" in rendered and text in rendered
    # when she answers "OK" to that receipt, from her address, to her signed reply address
    receipt.external_id = "<receipt.1@mairie.example>"
    async with db.session() as session:
        session.add(receipt)
    ok = reply_message(
        to=address,
        body="OK\n\nLe 2 déc. 2026 à 10:00, Plan ESS a écrit :\n> …",
        extra={"In-Reply-To": receipt.external_id},
    )
    assert (await replies.handle(config=config, database=db, raw=ok)).status == "processed"
    # then the observation is recorded, as she wrote it
    async with db.session() as session:
        (observation,) = (await session.exec(select(Observation))).all()
    assert observation.text == text and observation.author_id == aicha.id


async def _receipt_text(db, config, row: OutboxMessage) -> str:
    """The receipt's plain text as it would leave (French, Aïcha's language)."""
    async with db.session() as session:
        participant = await session.get(Participant, row.participant_id)
        consultation = await session.get(Consultation, row.consultation_id)
    composed = compose(
        config=config, message=row, participant=participant, consultation=consultation
    )
    return composed.message.get_body(("plain",)).get_content()


async def sent_email(session, person, template: str, message_id: str, payload=None) -> None:
    """An email of ours that left for `person` now, known by its Message-ID."""
    now = clock.now()
    session.add(
        OutboxMessage(
            channel="email",
            participant_id=person.id,
            consultation_id=person.consultation_id,
            template=template,
            payload=payload or {},
            dedupe_key=f"test:{message_id}",
            status=OutboxStatus.SENT,
            external_id=message_id,
            next_attempt_at=now,
            created_at=now,
            sent_at=now,
        )
    )
    await session.flush()


async def test_an_answer_to_the_older_of_two_open_questionnaires_goes_to_that_one(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        consultation = await make_consultation(session, current="review", questionnaires=True)
        aicha = await make_participant(session, consultation, email="aicha@asso.example")
        older, newer = (await session.exec(select(Questionnaire).order_by(Questionnaire.id))).all()
        for questionnaire in (older, newer):
            await questionnaires.open_questionnaire(
                session=session, questionnaire_id=questionnaire.id, actor_label="test"
            )
            await sent_email(
                session,
                aicha,
                "questionnaire_opened",
                f"<q.{questionnaire.key}@mairie.example>",
                {"key": questionnaire.key},
            )
            clock.advance(hours=1)
        older_key = older.key
    # Given Aïcha answers the older questionnaire's email, while the newer one is open too
    reply = reply_message(
        to=tokens.reply_address(config, aicha.reply_key),
        body="Q1 3",
        extra={"In-Reply-To": f"<q.{older_key}@mairie.example>"},
    )
    assert (await replies.handle(config=config, database=db, raw=reply)).status == "processed"
    # then her answer is stored in the questionnaire that email asked, and the receipt names it
    async with db.session() as session:
        (answer,) = (await session.exec(select(Answer))).all()
        question = await session.get(Question, answer.question_id)
    (receipt,) = await outbox_rows(db, "email_receipt")
    assert question.questionnaire_id == older.id and answer.value_int == 3
    assert receipt.payload["processed"][0]["questionnaire"] == "Votre avis"


async def test_an_old_stance_sent_again_does_not_overwrite_a_newer_answer(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
        await sent_email(session, story.aicha, "digest", "<d1@mairie.example>")
    address = tokens.reply_address(config, story.aicha.reply_key)

    def answer(body: str, digest: str) -> bytes:
        return reply_message(to=address, body=body, extra={"In-Reply-To": digest})

    # Given Aïcha contests F1 in answer to Monday's digest
    clock.advance(hours=1)
    old = answer("F1 non : pas dans mon quartier", "<d1@mairie.example>")
    await replies.handle(config=config, database=db, raw=old)
    # and confirms it on Tuesday, in answer to Tuesday's digest
    clock.advance(days=1)
    async with db.session() as session:
        await sent_email(session, story.aicha, "digest", "<d2@mairie.example>")
    clock.advance(hours=1)
    await replies.handle(config=config, database=db, raw=answer("F1 oui", "<d2@mairie.example>"))
    # when her phone sends Monday's answer again, under a new Message-ID
    clock.advance(hours=1)
    again = answer("F1 non : pas dans mon quartier", "<d1@mairie.example>")
    assert (await replies.handle(config=config, database=db, raw=again)).status == "processed"
    # then Tuesday's answer stands, and the receipt says why the old one was not recorded
    assert await stances_of(db, story.aicha.id) == ["confirm"]
    receipt = (await outbox_rows(db, "email_receipt"))[-1]
    (refused,) = receipt.payload["refused"]
    assert "plus récent" in refused["reason"]


async def test_poll_once_drains_the_mailbox_in_batches_of_several_messages(
    db, clock, tmp_path, dovecot, monkeypatch
) -> None:
    # Given seven replies waiting, and batches of three messages a command
    monkeypatch.setattr(receiver, "BATCH", 3)
    config = mail_config(
        tmp_path,
        imap_host=dovecot.host,
        imap_port=dovecot.port,
        imap_username=dovecot.user,
        imap_password=dovecot.password,
    )
    async with db.session() as session:
        story = await review_story(session)
    address = tokens.reply_address(config, story.aicha.reply_key)
    for number in range(7):
        dovecot.append(reply_message(to=address, body=f"F{number % 3 + 1} oui"))
    poller = receiver.ImapPoller(config, db)
    fetches: list[str] = []
    real_batch = poller._batch

    async def counting(client, uids):
        fetches.append(",".join(map(str, uids)))
        return await real_batch(client, uids)

    monkeypatch.setattr(poller, "_batch", counting)
    # when the poller runs once
    try:
        assert await poller.poll_once() == 7
    finally:
        await poller.disconnect()
    # then every message is read, in three fetches, and all are flagged \Seen
    assert fetches == ["1,2,3", "4,5,6", "7"]
    assert [message.flags for message in dovecot.fetch_all()] == [("\\Seen",)] * 7
    async with db.session() as session:
        assert len((await session.exec(select(InboundRecord))).all()) == 7
