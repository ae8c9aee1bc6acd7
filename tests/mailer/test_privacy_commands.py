"""What Palabre holds of me, by email: SUIVI / MINE, MES DONNÉES / MYDATA, OUBLIER / FORGET.

Someone who never opens Telegram has the same three rights as /mine, /mydata and /forget there.
Every story goes through `mailer.replies.handle` with a signed reply address (the path of a
message read from the mailbox), then through the email sender, and reads the emails it wrote.
"""

from __future__ import annotations

import email
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import select

from consultation import digests, trace
from mailer import replies, tokens
from mailer.config import MailConfig
from mailer.sender import EmailSender
from models import (
    InboundRecord,
    Observation,
    OutboxMessage,
    OutboxStatus,
    Participant,
    Stance,
)
from tests.consultation.evaluation_story import a_whole_process
from tests.mailer.conftest import mail_config, reply_message, review_story


async def reply(
    db, config: MailConfig, person: Participant, body: str, subject: str = "Re: Plan ESS"
) -> replies.Outcome:
    """`person` writes to their own reply address, from their own address."""
    raw = reply_message(
        to=tokens.reply_address(config, person.reply_key),
        sender=person.email,
        body=body,
        subject=subject,
    )
    return await replies.handle(config=config, database=db, raw=raw)


async def drain(db, config: MailConfig) -> list[EmailMessage]:
    """Send what is due (file backend) and return the emails that left, oldest first."""
    await EmailSender(config, db).drain_once()
    folder = Path(config.mail_dir)
    sent = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        sent.append(email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
        path.unlink()
    return sent


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content().replace("\r\n", "\n")


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


async def rows(db, template: str) -> list[OutboxMessage]:
    async with db.session() as session:
        return list(
            (
                await session.exec(
                    select(OutboxMessage)
                    .where(OutboxMessage.template == template)
                    .order_by(OutboxMessage.id)
                )
            ).all()
        )


async def fresh(db, person: Participant) -> Participant:
    async with db.session() as session:
        found = await session.get(Participant, person.id)
        assert found is not None
        return found


# --- MINE ----------------------------------------------------------------------------------


async def test_mine_by_email_lists_each_observation_its_findings_and_their_ranked_actions(
    db, clock, tmp_path
) -> None:
    """Given a finished ranking, when Bruno (email only) writes SUIVI, then one email, in his
    language, follows his observation to F1 and to A3 and A2 with their ranks."""
    config = mail_config(tmp_path)
    async with db.session() as session:
        _, _, aicha, bruno, _ = await a_whole_process(session, clock)
        aicha.locale = "en"
        session.add(aicha)
    await drain(db, config)  # what the process itself sent

    outcome = await reply(db, config, bruno, "Bonjour,\n\nSUIVI\n\nMerci !")

    assert outcome.status == "processed"
    # The email about his contributions is the answer: no receipt announcing it beside it.
    assert outcome.receipt is None and await rows(db, "email_receipt") == []
    [row] = await rows(db, "contributions")
    assert (row.channel, row.participant_id, row.interactive) == ("email", bruno.id, True)
    [mail] = await drain(db, config)
    assert mail["To"].addresses[0].addr_spec == bruno.email
    assert mail["Subject"] == "Ce que sont devenues vos contributions"
    assert mail["In-Reply-To"] and mail["Auto-Submitted"] == "auto-replied"
    text = text_of(mail)
    assert "Aucun accompagnement pour les petites coopératives." in text
    assert "Regroupée avec une observation semblable" in text
    assert "Constat F1\u00a0: Les petites coopératives manquent d'accompagnement." in text
    assert "A3 (rang 1 sur 3)\u00a0: Un guichet unique d'accompagnement de l'ESS." in text
    assert "A2 (rang 2 sur 3)\u00a0: Des prêts d'honneur pour les coopératives." in text
    assert text.index("A3 (rang 1") < text.index("A2 (rang 2")
    html = html_of(mail)
    assert "Constat F1" in html and "rang 1 sur 3" in html
    # O1, into which his observation was merged, is Aïcha's: nothing of hers shows.
    for other in ("Aïcha", "Benali", "n'ont aucun accompagnement", "Chloé"):
        assert other not in text and other not in html

    # Aïcha reads English; her out-of-scope observation, the one no finding took up and her
    # merged proposal each say what became of them.
    await reply(db, config, aicha, "my contributions")
    [mail] = await drain(db, config)
    assert mail["Subject"] == "What became of your contributions"
    text = text_of(mail)
    assert (
        "Marked out of the consultation's scope: "
        "Les demandes de subvention individuelles sont hors du champ." in text
    )
    assert "No published finding draws on it yet." in text
    assert "Your proposal A1 of" in text
    assert "Merged into A3 (rank 1 of 3): Un guichet unique d'accompagnement de l'ESS." in text
    assert "Un brouillon jamais publié" not in text


async def test_mine_with_another_command_comes_with_the_receipt_and_before_ranking_has_no_rank(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        _, _, _, bruno, _ = await a_whole_process(session, clock, finish=False)
    await drain(db, config)

    outcome = await reply(db, config, bruno, "MINE\nCLASSEMENT A2 A3")

    assert [item["kind"] for item in outcome.receipt["processed"]] == ["mine", "ballot"]
    mails = {mail["Subject"]: mail for mail in await drain(db, config)}
    assert set(mails) == {"Re: Plan ESS", "Ce que sont devenues vos contributions"}
    assert "voyez le message envoyé à part" in text_of(mails["Re: Plan ESS"])
    text = text_of(mails["Ce que sont devenues vos contributions"])
    # The vote is still open: a provisional rank would sway it.
    assert "A3 (retenue pour le vote)" in text and "rang" not in text.replace("leur rang", "")
    assert "Les actions recevront leur rang une fois le classement terminé." in text


async def test_mine_with_nothing_sent_says_so(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    await drain(db, config)
    await reply(db, config, story.bruno, "", subject="MINE")
    [mail] = await drain(db, config)
    assert "You have not sent an observation or a proposal yet." in text_of(mail)


# --- MYDATA --------------------------------------------------------------------------------


async def test_mydata_sends_a_json_file_built_when_the_email_leaves(db, clock, tmp_path) -> None:
    """Given Bruno's observation, when he writes MES DONNÉES, then the outbox row holds none of
    his data, and the email that leaves carries it all as a JSON file."""
    config = mail_config(tmp_path)
    async with db.session() as session:
        consultation, _, _, bruno, _ = await a_whole_process(session, clock)
    await drain(db, config)

    outcome = await reply(db, config, bruno, "Mes données")

    assert outcome.status == "processed" and outcome.receipt is None
    [row] = await rows(db, "data_export")
    assert (row.channel, row.participant_id, row.interactive) == ("email", bruno.id, True)
    assert set(row.payload) == {"in_reply_to"}
    [mail] = await drain(db, config)
    assert mail["To"].addresses[0].addr_spec == bruno.email
    assert mail["Subject"] == "Vos données dans Palabre"
    assert "le fichier joint contient tout ce que Palabre conserve sur vous" in text_of(mail)
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "application/json"
    assert attachment.get_filename() == f"palabre-{consultation.slug}-my-data.json"
    document = json.loads(attachment.get_content())
    assert document["profile"]["email"] == bruno.email
    assert document["profile"]["name"] == "Bruno Martin"
    assert [item["text"] for item in document["observations"]] == [
        "Aucun accompagnement pour les petites coopératives."
    ]
    assert document["ballot"]["ranking"] == ["A3"]
    # The message that carries the file is listed in it: it says what is true when it leaves.
    assert "data_export" in [message["template"] for message in document["messages"]]
    async with db.session() as session:
        row = await session.get(OutboxMessage, row.id)
        assert row.status == OutboxStatus.SENT and set(row.payload) == {"in_reply_to"}


async def test_asking_for_my_data_after_stop_does_not_resubscribe(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    await reply(db, config, story.aicha, "STOP")
    await drain(db, config)

    await reply(db, config, story.aicha, "MYDATA")

    assert (await fresh(db, story.aicha)).opted_out_at is not None
    [mail] = await drain(db, config)
    [attachment] = list(mail.iter_attachments())
    assert json.loads(attachment.get_content())["consent"]["opted_out_at"] is not None


# --- FORGET --------------------------------------------------------------------------------


async def test_forget_without_a_code_sends_a_code_and_changes_nothing(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    await drain(db, config)

    outcome = await reply(db, config, story.aicha, "oublier")

    assert outcome.status == "processed" and outcome.receipt is None
    aicha = await fresh(db, story.aicha)
    assert (aicha.erased_at, aicha.email, aicha.name) == (
        None,
        "aicha@asso.example",
        "Aïcha Benali",
    )
    assert aicha.reply_key == story.aicha.reply_key
    code = tokens.forget_code(config, aicha.reply_key)
    [mail] = await drain(db, config)
    assert mail["To"].addresses[0].addr_spec == "aicha@asso.example"
    assert mail["Subject"] == "Confirmez l’effacement de vos données"
    assert f"    OUBLIER {code}\n" in text_of(mail)
    assert "Ce code est valable 24 heures." in text_of(mail)
    # The button opens a reply with the confirmation already written.
    assert f"body=OUBLIER%20{code}" in html_of(mail)
    # Replying to it quotes it: the code in the quoted text confirms nothing.
    quoted = "\n".join(f"> {line}" for line in text_of(mail).splitlines())
    await reply(db, config, aicha, f"Le 2 mars, Palabre a écrit :\n{quoted}")
    assert (await fresh(db, aicha)).erased_at is None


async def test_forget_with_a_wrong_or_expired_code_changes_nothing(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    await reply(db, config, story.aicha, "FORGET")
    code = tokens.forget_code(config, story.aicha.reply_key)
    wrong = "ABCDEF" if code != "ABCDEF" else "GHJKMN"

    outcome = await reply(db, config, story.aicha, f"FORGET {wrong}")

    [refused] = outcome.receipt["refused"]
    assert refused["line"] == f"FORGET {wrong}"
    assert refused["reason"].startswith("Ce code de confirmation est erroné ou a expiré")
    assert (await fresh(db, story.aicha)).erased_at is None

    # Confirming in the subject only is not confirming.
    outcome = await reply(db, config, story.aicha, "", subject=f"OUBLIER {code}")
    assert (await fresh(db, story.aicha)).erased_at is None

    # A day and more later, the right code has expired.
    clock.advance(hours=25, minutes=1)
    outcome = await reply(db, config, story.aicha, f"OUBLIER {code}")
    assert len(outcome.receipt["refused"]) == 1
    aicha = await fresh(db, story.aicha)
    assert (aicha.erased_at, aicha.email) == (None, "aicha@asso.example")
    assert await rows(db, "forgotten") == []


async def test_forget_with_the_right_code_erases_says_goodbye_and_the_old_token_is_dead(
    db, clock, tmp_path
) -> None:
    """Given Aïcha asked to be forgotten, when she replies with her code nearly a day later,
    then she is erased, the goodbye reaches her old address (which then leaves the outbox too),
    and a later reply to her old address applies nothing."""
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    old_key = story.aicha.reply_key
    await reply(db, config, story.aicha, "OUBLIER")
    code = tokens.forget_code(config, old_key)
    await drain(db, config)
    clock.advance(hours=23, minutes=50)

    # Typed by hand, in lower case with a dash; the stance on the line before is kept.
    outcome = await reply(db, config, story.aicha, f"F1 oui\noublier {code[:3].lower()}-{code[3:]}")

    assert outcome.status == "processed"
    assert outcome.receipt is None and len(await rows(db, "email_receipt")) == 0
    aicha = await fresh(db, story.aicha)
    assert aicha.erased_at is not None
    assert (aicha.email, aicha.name, aicha.organisation) == (None, None, None)
    assert aicha.reply_key != old_key
    async with db.session() as session:
        assert len((await session.exec(select(Stance))).all()) == 1  # F1 oui, kept, anonymous
        records = (await session.exec(select(InboundRecord))).all()
        assert all(record.participant_id is None for record in records)
    [goodbye] = await rows(db, "forgotten")
    assert (goodbye.participant_id, goodbye.address) == (None, "aicha@asso.example")
    assert goodbye.status == OutboxStatus.PENDING

    [mail] = await drain(db, config)
    assert mail["To"].addresses[0].addr_spec == "aicha@asso.example"
    assert mail["Subject"] == "Vos données ont été effacées"
    assert "Au revoir, et merci pour votre participation." in text_of(mail)
    # Nothing to reply to, nothing to unsubscribe from: she is no one to Palabre any more.
    assert mail["Reply-To"] is None and mail["List-Unsubscribe"] is None
    assert "Répondez au-dessus de cette ligne" not in text_of(mail)
    async with db.session() as session:
        goodbye = await session.get(OutboxMessage, goodbye.id)
        assert goodbye.status == OutboxStatus.SENT
        assert (goodbye.address, goodbye.payload) == (None, {})
        addressed = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.address == "aicha@asso.example")
            )
        ).all()
        assert addressed == []

    # Her old reply address, used again (a replay, or an old digest answered), applies nothing.
    clock.advance(minutes=5)
    raw = reply_message(
        to=tokens.reply_address(config, old_key),
        sender="aicha@asso.example",
        body="F2 non : trop vague\nOBS: encore moi",
    )
    late = await replies.handle(config=config, database=db, raw=raw)
    assert late.status == "rejected"
    async with db.session() as session:
        assert len((await session.exec(select(Stance))).all()) == 1
        assert (await session.exec(select(Observation))).all() == []
    assert await drain(db, config) == []


async def test_a_goodbye_that_cannot_be_delivered_forgets_the_address_too(
    db, clock, tmp_path, smtp_server
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    await reply(db, config, story.aicha, "FORGET")
    await reply(
        db,
        config,
        story.aicha,
        f"FORGET {tokens.forget_code(config, story.aicha.reply_key)}",
    )
    smtp_server.fail_next(550, at="RCPT", recipient="aicha@asso.example")
    sender = EmailSender(mail_config(tmp_path, mail_backend="smtp", smtp_port=smtp_server.port), db)
    await sender.drain_once()
    await sender.close()
    [goodbye] = await rows(db, "forgotten")
    assert goodbye.status == OutboxStatus.DEAD
    assert (goodbye.address, goodbye.payload) == (None, {})
    assert "aicha" not in (goodbye.last_error or "")


# --- HELP ----------------------------------------------------------------------------------


async def test_help_lists_the_three_new_commands_and_the_digest_mentions_them(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    await drain(db, config)
    await reply(db, config, story.aicha, "AIDE")
    await reply(db, config, story.bruno, "HELP")
    receipts = {
        mail["To"].addresses[0].addr_spec: text_of(mail) for mail in await drain(db, config)
    }
    french = receipts["aicha@asso.example"]
    assert "SUIVI (ce que sont devenues vos observations et propositions)" in french
    assert "MES DONNÉES (tout ce que Palabre conserve sur vous, dans un fichier)" in french
    assert "OUBLIER (effacer vos données, après confirmation)" in french
    english = receipts["bruno@coop.example"]
    assert "MINE (what became of your observations and proposals)" in english
    assert "MYDATA" in english and "FORGET (erase your data" in english

    async with db.session() as session:
        aicha = await session.get(Participant, story.aicha.id)
        assert await digests.enqueue_digest(session=session, participant=aicha)
    [digest] = await drain(db, config)
    assert "SUIVI vous dit ce que sont devenues vos contributions" in text_of(digest)
    assert "OUBLIER l’efface" in html_of(digest)


async def test_every_new_email_composes_in_both_languages(db, clock, tmp_path) -> None:
    """The four templates render from the payloads the commands write, fr and en."""
    config = mail_config(tmp_path)
    async with db.session() as session:
        _, _, aicha, _, _ = await a_whole_process(session, clock)
        contributions = await trace.contributions_of(session=session, participant=aicha)
    assert contributions
    for locale in ("fr", "en"):
        async with db.session() as session:
            person = await session.get(Participant, aicha.id)
            person.locale = locale
            session.add(person)
        await drain(db, config)
        await reply(db, config, aicha, "MINE\nMYDATA\nFORGET")
        mails = await drain(db, config)
        assert len(mails) == 3, [m["Subject"] for m in mails]
        for mail in mails:
            assert mail["Content-Language"] == locale
            assert "{{" not in text_of(mail) and "{%" not in html_of(mail)
        clock.advance(hours=2)


async def test_the_hourly_limit_on_answers_counts_these_emails_too(db, clock, tmp_path) -> None:
    """A mailbox that keeps writing SUIVI (a loop, or someone's script) gets twenty answers an
    hour, as for receipts, not one export or trace per message."""
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    for _ in range(12):
        await reply(db, config, story.aicha, "SUIVI")
        await reply(db, config, story.aicha, "MYDATA")
    assert len(await rows(db, "contributions")) + len(await rows(db, "data_export")) == 20
