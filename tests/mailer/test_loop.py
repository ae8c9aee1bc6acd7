"""The whole loop against real servers: a digest goes out through aiosmtpd, the person's reply
lands in Dovecot, the poller reads it, the stance is recorded and the receipt goes out.

Also: a poll that dies between recording and flagging `\\Seen` re-reads the message and applies
nothing twice; a Dovecot restart mid-run is survived.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from sqlmodel import select

from consultation import digests
from mailer import replies, tokens
from mailer.reading import parse_bytes
from mailer.receiver import ImapPoller
from mailer.sender import EmailSender
from models import InboundRecord, OutboxMessage, OutboxStatus, Stance
from tests.mailer.conftest import mail_config, reply_message, review_story


def drop_imap_sessions(dovecot) -> None:
    """End the imap processes of this test's Dovecot (by pid): the server hangs up on us."""
    master = dovecot._process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in children:
        if Path(f"/proc/{pid}/comm").read_text().strip() == "imap":
            os.kill(int(pid), signal.SIGTERM)


def loop_config(tmp_path, smtp_server, dovecot, **overrides):
    return mail_config(
        tmp_path,
        mail_backend="smtp",
        smtp_port=smtp_server.port,
        imap_host=dovecot.host,
        imap_port=dovecot.port,
        imap_username=dovecot.user,
        imap_password=dovecot.password,
        imap_security="none",
        **overrides,
    )


def reply_to(received) -> bytes:
    """What Aïcha's client sends when she taps "Confirm" on F2 in the digest she received."""
    message = received.message
    return reply_message(
        to=message["Reply-To"],
        subject=f"Re: {message['Subject']}",
        body="F2 oui\nF3 non : il faudrait parler des délais de paiement\n\n"
        "Le lun. 2 mars 2026 à 10:00, Plan ESS a écrit :\n> F1 oui\n",
        extra={"In-Reply-To": message["Message-ID"], "Delivered-To": message["Reply-To"]},
    )


async def stances(db) -> list[tuple[int, str]]:
    async with db.session() as session:
        return sorted(
            (row.participant_id, row.choice) for row in (await session.exec(select(Stance))).all()
        )


async def test_digest_out_reply_in_stance_recorded_receipt_out(
    db, clock, tmp_path, smtp_server, dovecot
) -> None:
    config = loop_config(tmp_path, smtp_server, dovecot)
    async with db.session() as session:
        story = await review_story(session)
        assert await digests.enqueue_digest(session=session, participant=story.aicha)
    sender = EmailSender(config, db)
    await sender.drain_once()
    async with db.session() as session:
        row = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.template == "digest"))
        ).one()
    (digest,) = [m for m in smtp_server.messages if m["Message-ID"] == row.external_id]

    reply = reply_to(digest)
    dovecot.append(reply)
    poller = ImapPoller(config, db)
    assert await poller.poll_once() == 1
    assert [(m.flags) for m in dovecot.fetch_all()] == [("\\Seen",)]
    assert await stances(db) == [(story.aicha.id, "confirm"), (story.aicha.id, "contest")]

    smtp_server.clear()
    assert await sender.drain_once() == 1
    (receipt,) = smtp_server.messages
    assert receipt.rcpt_tos == ("aicha@asso.example",)
    assert receipt["In-Reply-To"] == parse_bytes(reply)["Message-ID"]
    assert receipt["Auto-Submitted"] == "auto-replied"
    assert receipt["Subject"] == f"Re: {digest['Subject']}"
    text = receipt.message.get_body(("plain",)).get_content()
    assert "F2" in text and "F3" in text and "délais de paiement" in text
    assert "F1" in text  # F1 still awaits her answer, and the receipt says so

    # Nothing new: the next poll reads nothing.
    assert await poller.poll_once() == 0
    await poller.disconnect()
    await sender.close()


async def test_a_poll_that_died_before_flagging_seen_rereads_and_applies_nothing_twice(
    db, clock, tmp_path, smtp_server, dovecot
) -> None:
    config = loop_config(tmp_path, smtp_server, dovecot)
    async with db.session() as session:
        story = await review_story(session)
    raw = reply_message(
        to=tokens.reply_address(config, story.aicha.reply_key), body="F1 oui\nF2 oui"
    )
    uid = dovecot.append(raw)
    # The dying poller got as far as recording and acting (one transaction), then died before
    # its UID STORE: the message is still unseen in the mailbox.
    fetched = dovecot.fetch_all()[0].raw
    assert (await replies.handle(config=config, database=db, raw=fetched)).status == "processed"
    assert dovecot.flags_of(uid) == ()

    poller = ImapPoller(config, db)
    assert await poller.poll_once() == 0  # read again, recognised, nothing new
    await poller.disconnect()
    assert dovecot.flags_of(uid) == ("\\Seen",)
    assert await stances(db) == [(story.aicha.id, "confirm"), (story.aicha.id, "confirm")]
    async with db.session() as session:
        receipts = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.template == "email_receipt")
            )
        ).all()
        assert len(receipts) == 1
        (record,) = (await session.exec(select(InboundRecord))).all()
        assert record.status == "processed"


async def test_the_poller_reconnects_when_the_server_drops_the_connection(
    db, clock, tmp_path, smtp_server, dovecot
) -> None:
    config = loop_config(tmp_path, smtp_server, dovecot)
    async with db.session() as session:
        story = await review_story(session)
    address = tokens.reply_address(config, story.aicha.reply_key)
    poller = ImapPoller(config, db)
    dovecot.append(reply_message(to=address, body="F1 oui"))
    assert await poller.poll_once() == 1
    assert poller.connections == 1
    # A message that arrives while the connection is open is seen at the next poll.
    dovecot.append(reply_message(to=address, body="F2 oui"))
    assert await poller.poll_once() == 1
    assert poller.connections == 1
    # The server drops the connection (its imap process ends, as on a restart or a timeout).
    drop_imap_sessions(dovecot)
    dovecot.append(reply_message(to=address, body="F3 oui"))
    assert await poller.poll_once() == 1
    assert poller.connections == 2
    await poller.disconnect()
    assert await stances(db) == [(story.aicha.id, "confirm")] * 3


async def test_run_polls_until_stopped_and_survives_an_unreachable_server(
    db, clock, tmp_path, smtp_server, dovecot
) -> None:
    config = loop_config(tmp_path, smtp_server, dovecot, imap_poll_seconds=0.05)
    async with db.session() as session:
        story = await review_story(session)
    dovecot.append(
        reply_message(to=tokens.reply_address(config, story.aicha.reply_key), body="F3 ?")
    )
    poller = ImapPoller(config, db)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    for _ in range(200):
        if await stances(db):
            break
        await asyncio.sleep(0.02)
    assert await stances(db) == [(story.aicha.id, "abstain")]
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert poller.client is None


async def test_the_receipt_is_not_sent_twice_when_the_sender_crashed_after_sending(
    db, clock, tmp_path, smtp_server, dovecot
) -> None:
    """The sender's own guarantee, seen from the loop: one receipt per reply on the wire."""
    config = loop_config(tmp_path, smtp_server, dovecot)
    async with db.session() as session:
        story = await review_story(session)
    dovecot.append(
        reply_message(to=tokens.reply_address(config, story.aicha.reply_key), body="F1 oui")
    )
    poller = ImapPoller(config, db)
    await poller.poll_once()
    await poller.disconnect()
    sender = EmailSender(config, db)
    await sender.drain_once()
    await sender.drain_once()
    await sender.close()
    receipts = [m for m in smtp_server.messages if m["Auto-Submitted"] == "auto-replied"]
    assert len(receipts) == 1
    async with db.session() as session:
        (row,) = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.template == "email_receipt")
            )
        ).all()
        assert row.status == OutboxStatus.SENT and row.external_id == receipts[0]["Message-ID"]
