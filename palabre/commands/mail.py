"""The email channel on the command line: invitations, digests, reading the reply mailbox.

`palabre invite` and `palabre digest send` write their emails to the outbox and then send what
is due at once (through SMTP or into `.eml` files), so that they work with or without a running
`palabre serve`; the outbox's claims keep the two from sending anything twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import timedelta
from pathlib import Path

import typer
from sqlmodel import select

from consultation import clock, digests, outbox, participants
from consultation.common import get_consultation, rules
from consultation.errors import UserError
from consultation.preferences import has_consented
from mailer.compose import compose
from mailer.receiver import ImapPoller
from mailer.sender import EmailSender
from models import Channel, EmailStatus, OutboxMessage, Participant
from models.db import Database
from palabre.commands.common import _, fail, run, settings

ConsultationOption = typer.Option(
    None, "--consultation", "-c", help="Consultation slug (needed only when there are several)."
)
digest_app = typer.Typer(help="The email digest.", no_args_is_help=True)
mail_app = typer.Typer(help="Sending email and reading replies.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("invite")(invite)
    app.add_typer(digest_app, name="digest")
    app.add_typer(mail_app, name="mail")


async def _send_due(database: Database) -> int:
    sender = EmailSender(settings().mail_config(), database)
    try:
        return await sender.drain_once()
    finally:
        await sender.close()


# --- invitations ---------------------------------------------------------------------------


def invite(
    email: str | None = typer.Option(
        None, "--email", help="Invite this person only (again, if they were invited before)."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Email the invitations: question, scope, personal Telegram link, the email-only way.

    Without --email, everyone who has not joined yet (neither on Telegram nor by email) and was
    never invited by email; running it again after an import invites only the newcomers.
    """
    config = settings()
    username = config.telegram_bot_username
    if username is None and config.bot_enabled:
        from telegram.error import TelegramError

        from bot.app import bot_username

        try:
            username = asyncio.run(bot_username(config.bot_config()))
        except TelegramError as exc:
            fail(_("Telegram did not give the bot's name: {reason}").format(reason=exc.message))

    async def work(database: Database) -> tuple[int, int]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            if email is not None:
                person = await participants.by_email(
                    session=session, consultation_id=target.id, email=email
                )
                people = [person]
            else:
                people = list(
                    (
                        await session.exec(
                            select(Participant)
                            .where(Participant.consultation_id == target.id)
                            .where(Participant.email.is_not(None))  # type: ignore[union-attr]
                            .where(Participant.telegram_chat_id.is_(None))  # type: ignore[union-attr]
                            .order_by(Participant.id)
                        )
                    ).all()
                )
            days = rules(target).invitation_days
            queued = 0
            for person in people:
                if not person.reachable and email is not None:
                    raise UserError("invitation.not_reachable")
                if email is None and (
                    has_consented(person)
                    or person.consent_declined_at is not None
                    or not person.reachable
                    or person.email_status != EmailStatus.OK
                ):
                    continue
                if not person.email:
                    raise UserError("email.no_address", name=person.name or "")
                key = f"invitation:{person.id}:" + (
                    clock.now().strftime("%Y%m%dT%H%M%S") if email is not None else "first"
                )
                if await _already_queued(session, key):
                    continue
                link = expires = None
                if username:
                    token = await participants.create_invitation(
                        session=session, participant=person, days=days
                    )
                    link = f"https://t.me/{username}?start={token}"
                    expires = (clock.now() + timedelta(days=days)).isoformat()
                queued += await outbox.enqueue(
                    session=session,
                    channel=Channel.EMAIL,
                    template="invitation",
                    payload={
                        "telegram_link": link,
                        "expires_at": expires,
                        "consented": has_consented(person),
                    },
                    dedupe_key=key,
                    participant_id=person.id,
                    consultation_id=target.id,
                    interactive=email is not None,
                )
        return queued, await _send_due(database)

    queued, sent = run(work, upgrade=True)
    if not username:
        typer.echo(
            _(
                "No Telegram bot is configured: the invitations explain how to take part by "
                "email only."
            ),
            err=True,
        )
    typer.echo(
        _("{queued} invitations queued, {sent} emails sent.").format(queued=queued, sent=sent)
    )


async def _already_queued(session, key: str) -> bool:
    found = await session.exec(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key))
    return found.first() is not None


# --- digests -------------------------------------------------------------------------------


@digest_app.command("preview")
def digest_preview(
    email: str = typer.Argument(..., help="The participant's email address."),
    html: Path | None = typer.Option(
        None, "--html", help="Also write the HTML version to this file (open it in a browser)."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Show exactly the digest this person would receive now (nothing is sent or recorded)."""
    config = settings()

    async def work(database: Database):
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            person = await participants.by_email(
                session=session, consultation_id=target.id, email=email
            )
            now = clock.now()
            payload = await digests.build_digest(session=session, participant=person, now=now)
            if payload is None:
                return person, None, digests.reads_by_email(person)
            message = OutboxMessage(
                id=0,
                channel=Channel.EMAIL,
                participant_id=person.id,
                consultation_id=target.id,
                template=digests.TEMPLATE,
                payload=payload,
                dedupe_key=f"preview:{person.id}",
                next_attempt_at=now,
                created_at=now,
            )
            composed = compose(
                config=config.mail_config(),
                message=message,
                participant=person,
                consultation=target,
            )
            return person, composed, digests.reads_by_email(person)

    person, composed, by_email = run(work)
    if not by_email:
        typer.echo(
            _(
                "Note: {email} is not reached by email now (Telegram, no consent, stopped or "
                "bounced): they receive no digest."
            ).format(email=person.email),
            err=True,
        )
    if composed is None:
        typer.echo(_("Nothing to tell {email} now: no digest would be sent.").format(email=email))
        return
    message = composed.message
    for header in ("From", "To", "Reply-To", "Subject", "List-Unsubscribe"):
        if message[header]:
            typer.echo(f"{header}: {message[header]}")
    typer.echo("")
    typer.echo(message.get_body(("plain",)).get_content().rstrip())
    if html is not None:
        html.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")
        typer.echo("")
        typer.echo(_("HTML version written to {file}.").format(file=html), err=True)


@digest_app.command("send")
def digest_send(
    email: str | None = typer.Option(
        None, "--email", help="Send this person's digest now, whatever their usual day."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Send the digests due now (the scheduler does this every morning), or one person's."""

    async def work(database: Database) -> tuple[int, int]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            if email is None:
                written = await digests.enqueue_due_digests(
                    session=session, consultation_id=target.id, now=clock.now()
                )
            else:
                person = await participants.by_email(
                    session=session, consultation_id=target.id, email=email
                )
                written = int(
                    await digests.enqueue_digest(session=session, participant=person, force=True)
                )
        return written, await _send_due(database)

    written, sent = run(work, upgrade=True)
    typer.echo(
        _("{written} digests written, {sent} emails sent.").format(written=written, sent=sent)
    )


# --- the mailbox ---------------------------------------------------------------------------


@mail_app.command("poll")
def mail_poll(
    once: bool = typer.Option(False, "--once", help="Read the mailbox once, then stop."),
) -> None:
    """Read the replies in the IMAP mailbox, record them, and send the receipts."""
    config = settings()
    if not config.imap_enabled:
        fail(_("Set PALABRE_IMAP_HOST and PALABRE_IMAP_USERNAME to read replies."))

    async def work(database: Database) -> tuple[int, int]:
        poller = ImapPoller(config.mail_config(), database)
        if once:
            try:
                read = await poller.poll_once()
            finally:
                await poller.disconnect()
            return read, await _send_due(database)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for name in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(name, stop.set)
        await asyncio.gather(
            poller.run(stop), EmailSender(config.mail_config(), database).run(stop)
        )
        return 0, 0

    read, sent = run(work, upgrade=True)
    if once:
        typer.echo(_("{read} new emails read, {sent} emails sent.").format(read=read, sent=sent))


@mail_app.command("send")
def mail_send() -> None:
    """Send every email due now (what `palabre serve` does continuously)."""

    async def work(database: Database) -> int:
        return await _send_due(database)

    sent = run(work, upgrade=True)
    typer.echo(_("{sent} emails sent.").format(sent=sent))
