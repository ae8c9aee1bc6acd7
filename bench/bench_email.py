"""The email channel at region scale (issue 11): digests out, replies in, against real servers.

`email_cases(folder, scale)` returns two cases for `python -m bench`:

- digests: `enqueue_due_digests` then `EmailSender` draining the outbox into a local aiosmtpd,
  for 10,000 email members of a consultation in review, against a bare aiosmtplib loop sending
  the very same bytes over as many connections (`smtp_concurrency`);
- replies: `ImapPoller.poll_once` reading 2,000 replies from a real Dovecot (each a stance,
  recorded, with its receipt written), against a bare aioimaplib drain of the same messages
  (search, fetch, flag `\\Seen`).

Both need Dovecot (`apt-get install dovecot-imapd`) and the test servers in `tests/servers`.
"""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aioimaplib
import aiosmtplib
from sqlmodel import SQLModel

from bench.harness import Case
from consultation import clock, digests, findings
from mailer import tokens
from mailer.config import MailConfig
from mailer.receiver import ImapPoller
from mailer.sender import EmailSender
from models import Participant
from models.db import Database
from palabre.settings import Settings
from tests.factories import make_consultation, make_coordinator, make_participant
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer

SECRET = "bench-secret-for-the-mailer-0123456789"


def _config(folder: Path, smtp: SmtpServer, dovecot: Dovecot) -> MailConfig:
    return Settings(
        _env_file=None,
        secret_key=SECRET,
        mail_backend="smtp",
        mail_dir=folder / "mail",
        mail_from="Plan ESS <palabre@mairie.example>",
        reply_address="reply@mairie.example",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        imap_host=dovecot.host,
        imap_port=dovecot.port,
        imap_username=dovecot.user,
        imap_password=dovecot.password,
        imap_security="none",
    ).mail_config()


async def _consultation(url: str, members: int) -> list[Participant]:
    """A consultation in review with three published findings and `members` email readers."""
    database = Database(url)
    async with database.engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    async with database.session() as session:
        consultation = await make_consultation(session, current="review")
        coordinator = await make_coordinator(session, consultation, email="celine@mairie.example")
        for text in ("Constat un.", "Constat deux.", "Constat trois."):
            await findings.draft_finding(
                session=session, consultation_id=consultation.id, by=coordinator, text=text
            )
        await findings.publish_findings(
            session=session, consultation_id=consultation.id, by=coordinator
        )
        people = [
            await make_participant(
                session, consultation, email=f"membre{n}@asso.example", cadence="daily"
            )
            for n in range(members)
        ]
    await database.dispose()
    return people


def _reply(config: MailConfig, person: Participant) -> bytes:
    message = EmailMessage()
    message["From"] = person.email
    message["To"] = tokens.reply_address(config, person.reply_key)
    message["Subject"] = "Re: Plan ESS : 3 points attendent votre réponse"
    message["Message-ID"] = make_msgid(domain="asso.example")
    message.set_content("F1 oui\nF2 non : le fonctionnement est financé\n\nMarie\n")
    return bytes(message)


async def _bare_smtp(config: MailConfig, raws: list[tuple[str, str, bytes]]) -> None:
    """The baseline: the same messages, as many connections, nothing else."""

    async def worker(share: list[tuple[str, str, bytes]]) -> None:
        client = aiosmtplib.SMTP(hostname=config.smtp_host, port=config.smtp_port)
        await client.connect()
        for sender, recipient, raw in share:
            await client.sendmail(sender, [recipient], raw)
        await client.quit()

    lanes = config.smtp_concurrency
    await asyncio.gather(*(worker(raws[lane::lanes]) for lane in range(lanes)))


async def _bare_imap(config: MailConfig) -> None:
    """The baseline: every unseen message fetched (100 a command) and flagged, nothing else."""
    client = aioimaplib.IMAP4(host=config.imap_host, port=config.imap_port)
    await client.wait_hello_from_server()
    password = config.imap_password.get_secret_value() if config.imap_password else ""
    await client.login(config.imap_username, password)
    await client.select(config.imap_mailbox)
    search = await client.uid_search("UNSEEN")
    uids = [u for line in search.lines[:1] for u in bytes(line).decode().split()]
    for start in range(0, len(uids), 100):
        batch = ",".join(uids[start : start + 100])
        await client.uid("fetch", batch, "(BODY.PEEK[])")
        await client.uid("store", batch, "+FLAGS", "(\\Seen)")
    await client.logout()


def _timed(run) -> float:
    start = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - start


def email_cases(folder: Path, scale: int = 1) -> list[Case]:
    """The two email scenarios; `scale` divides their sizes (10 for `--quick`)."""
    members, replies = 10_000 // scale, 2_000 // scale
    url = f"sqlite:///{folder / 'email.db'}"
    people = asyncio.run(_consultation(url, members))
    with SmtpServer() as smtp, Dovecot(folder) as dovecot:
        config = _config(folder, smtp, dovecot)

        async def send_digests() -> None:
            database = Database(url)
            async with database.session() as session:
                written = await digests.enqueue_due_digests(
                    session=session, consultation_id=people[0].consultation_id, now=clock.now()
                )
            assert written == members, written
            sender = EmailSender(config, database)
            while await sender.drain_once():
                pass
            await sender.close()
            await database.dispose()

        digests_s = _timed(send_digests)
        sent = [(m.mail_from, m.rcpt_tos[0], m.raw) for m in smtp.messages]
        assert len(sent) == members, len(sent)
        bare_smtp_s = _timed(lambda: _bare_smtp(config, sent))

        async def poll() -> None:
            database = Database(url)
            assert await ImapPoller(config, database).poll_once() == replies
            await database.dispose()

        for person in people[:replies]:
            dovecot.append(_reply(config, person))
        poll_s = _timed(poll)
        for person in people[:replies]:
            dovecot.append(_reply(config, person))
        bare_imap_s = _timed(lambda: _bare_imap(config))
    return [
        Case(
            name=f"digests to {members:,} members (SQLite, aiosmtpd)",
            subject="enqueue_due_digests + EmailSender drain",
            baseline="bare aiosmtplib, same bytes, same connections",
            subject_s=digests_s,
            baseline_s=bare_smtp_s,
            units=members,
            unit="digests",
        ),
        Case(
            name=f"{replies:,} replies from Dovecot (SQLite)",
            subject="ImapPoller.poll_once: read, apply, receipt",
            baseline="bare aioimaplib: search, fetch, flag",
            subject_s=poll_s,
            baseline_s=bare_imap_s,
            units=replies,
            unit="replies",
        ),
    ]


def main() -> None:
    """`python -m bench.bench_email [scale]`: the two cases alone, with their rates."""
    import sys
    import tempfile

    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with tempfile.TemporaryDirectory() as folder:
        for case in email_cases(Path(folder), scale):
            print(
                f"{case.name}: {case.units / case.subject_s:,.0f} {case.unit}/s, "
                f"baseline {case.units / case.baseline_s:,.0f}/s, "
                f"speed vs baseline {case.baseline_s / case.subject_s:.2f}"
            )


if __name__ == "__main__":
    main()
