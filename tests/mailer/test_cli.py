"""`palabre invite`, `palabre digest preview|send` and `palabre mail poll --once`, as typed."""

from __future__ import annotations

import asyncio
import email
import email.policy
from pathlib import Path

from sqlmodel import select

from mailer import tokens
from models import Invitation, OutboxMessage, Stance
from models.db import Database
from tests.factories import make_consultation, make_participant
from tests.mailer.conftest import SECRET, mail_config, reply_message, review_story


def in_db(url: str, work):
    async def main():
        database = Database(url)
        try:
            async with database.session() as session:
                return await work(session)
        finally:
            await database.dispose()

    return asyncio.run(main())


def emails_in(folder: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def env_for(url: str, **extra: str) -> dict[str, str]:
    return {
        "PALABRE_DATABASE_URL": url,
        "PALABRE_SECRET_KEY": SECRET,
        "PALABRE_REPLY_ADDRESS": "reply@mairie.example",
        "PALABRE_MAIL_BACKEND": "file",
        **extra,
    }


def test_invite_without_a_bot_explains_the_email_only_way_and_invites_each_person_once(
    cli, empty_database_url, clock, tmp_path
) -> None:
    env = env_for(empty_database_url)
    assert cli("db", "upgrade", env=env).exit_code == 0

    async def setup(session):
        consultation = await make_consultation(session, current="observe")
        await make_participant(session, consultation, email="lea@asso.example", consented=False)
        await make_participant(session, consultation, email="sam@asso.example", consented=False)
        await make_participant(session, consultation, email="ok@asso.example")  # joined already
        await make_participant(session, consultation, email="tg@asso.example", telegram_chat_id=9)

    in_db(empty_database_url, setup)
    result = cli("invite", env=env)
    assert result.exit_code == 0, result.output
    assert "2 invitations queued, 2 emails sent." in result.output
    assert "No Telegram bot is configured" in result.output
    sent = emails_in(tmp_path / "mail")
    assert sorted(m["To"].addresses[0].addr_spec for m in sent) == [
        "lea@asso.example",
        "sam@asso.example",
    ]
    text = sent[0].get_body(("plain",)).get_content()
    assert "t.me" not in text
    assert "J'ACCEPTE" in text
    assert "mailto:reply+" in sent[0].get_body(("html",)).get_content()

    again = cli("invite", env=env)
    assert "0 invitations queued, 0 emails sent." in again.output
    one = cli("invite", "--email", "lea@asso.example", env=env)
    assert "1 invitations queued, 1 emails sent." in one.output


def test_invite_with_a_bot_sends_each_person_their_own_telegram_link(
    cli, empty_database_url, clock, tmp_path
) -> None:
    env = env_for(empty_database_url, PALABRE_TELEGRAM_BOT_USERNAME="plan_ess_bot")
    cli("db", "upgrade", env=env)

    async def setup(session):
        consultation = await make_consultation(session, current="observe")
        await make_participant(session, consultation, email="lea@asso.example", consented=False)

    in_db(empty_database_url, setup)
    result = cli("invite", env=env)
    assert result.exit_code == 0, result.output
    (invitation,) = emails_in(tmp_path / "mail")
    text = invitation.get_body(("plain",)).get_content()
    assert "https://t.me/plan_ess_bot?start=" in text
    assert "Comment mieux soutenir" in text  # the question
    assert "Les demandes de subvention individuelles" in text  # what it is not about

    async def count(session):
        return len((await session.exec(select(Invitation))).all())

    assert in_db(empty_database_url, count) == 1


def test_digest_preview_shows_what_the_person_would_receive_and_records_nothing(
    cli, empty_database_url, clock, tmp_path
) -> None:
    env = env_for(empty_database_url)
    cli("db", "upgrade", env=env)
    in_db(empty_database_url, review_story)

    async def outbox_count(session):
        return len((await session.exec(select(OutboxMessage))).all())

    before = in_db(empty_database_url, outbox_count)
    page = tmp_path / "digest.html"
    result = cli("digest", "preview", "aicha@asso.example", "--html", str(page), env=env)
    assert result.exit_code == 0, result.output
    assert "Subject: Plan ESS de test" in result.output
    assert "Reply-To: reply+" in result.output
    for code in ("F1", "F2", "F3"):
        assert f"{code} oui" in result.output
    assert "body=F1%20oui" in page.read_text(encoding="utf-8")
    assert in_db(empty_database_url, outbox_count) == before

    coordinator = cli("digest", "preview", "celine@mairie.example", env=env)
    assert "no digest would be sent" in coordinator.output

    sent = cli("digest", "send", env=env)
    assert "2 digests written" in sent.output
    again = cli("digest", "send", env=env)
    assert "0 digests written" in again.output
    forced = cli("digest", "send", "--email", "aicha@asso.example", env=env)
    assert "1 digests written" in forced.output


def test_mail_poll_once_reads_the_reply_records_it_and_sends_the_receipt(
    cli, empty_database_url, clock, tmp_path, dovecot
) -> None:
    env = env_for(
        empty_database_url,
        PALABRE_IMAP_HOST=dovecot.host,
        PALABRE_IMAP_PORT=str(dovecot.port),
        PALABRE_IMAP_USERNAME=dovecot.user,
        PALABRE_IMAP_PASSWORD=dovecot.password,
        PALABRE_IMAP_SECURITY="none",
    )
    cli("db", "upgrade", env=env)
    story = in_db(empty_database_url, review_story)
    address = tokens.reply_address(mail_config(tmp_path), story.aicha.reply_key)
    dovecot.append(reply_message(to=address, body="F2 oui"))

    result = cli("mail", "poll", "--once", env=env)
    assert result.exit_code == 0, result.output
    assert "1 new emails read" in result.output

    async def stances(session):
        return [(s.participant_id, s.choice) for s in (await session.exec(select(Stance))).all()]

    assert in_db(empty_database_url, stances) == [(story.aicha.id, "confirm")]
    receipts = [m for m in emails_in(tmp_path / "mail") if m["Auto-Submitted"] == "auto-replied"]
    assert len(receipts) == 1
    assert receipts[0]["To"].addresses[0].addr_spec == "aicha@asso.example"

    assert "0 new emails read" in cli("mail", "poll", "--once", env=env).output


def test_mail_poll_without_an_imap_server_says_what_to_set(cli, empty_database_url) -> None:
    result = cli("mail", "poll", "--once", env=env_for(empty_database_url))
    assert result.exit_code == 1
    assert "PALABRE_IMAP_HOST" in result.output
