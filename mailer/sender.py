"""The email sender: drains the outbox's email rows through SMTP (or into `.eml` files).

Each drain claims a batch (a lease: a sender that dies leaves its rows to be claimed again when
the lease expires), renders every message, and hands them to `PALABRE_SMTP_CONCURRENCY` workers,
each holding one SMTP connection that it reuses from message to message and from drain to drain.
Every message is settled in its own short transaction:

- accepted by the relay: sent, with our Message-ID stored in `external_id`;
- a 4xx, a timeout or a dropped connection: retried later with backoff (a connection dropped
  after the data was sent may mean the relay has it; the same Message-ID goes out again);
- a 5xx for the recipient (at RCPT or DATA): dead, and one hard bounce counted for the person;
- a 5xx for our sender address (at MAIL): dead, and logged as a configuration problem.

The goodbye to a person who asked by email to be forgotten (`compose.LAST_WORDS`) names no
participant and carries its own address; it loses that address and its payload once sent or
dead, as `privacy.forget` does for the person's other messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiosmtplib
from aiosmtplib import (
    SMTPException,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)
from sqlmodel import select

from consultation import clock, outbox
from mailer import bounces
from mailer.compose import (
    LAST_WORDS,
    WITH_DOCUMENTS,
    Attachment,
    Composed,
    NoAddress,
    compose,
    documents_for,
)
from mailer.config import MailConfig
from models import Channel, Consultation, EmailStatus, OutboxMessage, OutboxStatus, Participant
from models.db import Database

logger = logging.getLogger(__name__)

IDLE_SECONDS = 2.0
PER_CONNECTION_BATCH = 25


class SendFailure(Exception):
    """The relay did not take the message."""

    def __init__(self, reason: str, *, permanent: bool = False, bounce: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.bounce = bounce


@dataclass
class _Job:
    message_id: int
    participant_id: int | None
    composed: Composed
    created: str
    lease_until: datetime | None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SMTPResponseException):
        return f"{exc.code} {exc.message}".strip()
    return f"{type(exc).__name__}: {exc}".strip()


class SmtpConnection:
    """One SMTP connection, opened on first use and kept for the next messages."""

    def __init__(self, config: MailConfig) -> None:
        self.config = config
        self.client: aiosmtplib.SMTP | None = None
        self.opened = 0
        self.sent_on_connection = 0

    def _new_client(self) -> aiosmtplib.SMTP:
        config = self.config
        password = config.smtp_password.get_secret_value() if config.smtp_password else None
        return aiosmtplib.SMTP(
            hostname=config.smtp_host,
            port=config.smtp_port,
            username=config.smtp_username or None,
            password=password,
            timeout=config.smtp_timeout,
            use_tls=config.smtp_security == "tls",
            start_tls=config.smtp_security == "starttls",
        )

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def connect(self) -> None:
        self.close()
        client = self._new_client()
        try:
            await client.connect()
        except SMTPResponseException as exc:
            client.close()
            permanent = 500 <= exc.code < 600 and not isinstance(
                exc, aiosmtplib.SMTPAuthenticationError
            )
            raise SendFailure(f"connect: {_describe(exc)}", permanent=permanent) from exc
        except (SMTPException, OSError, TimeoutError) as exc:
            client.close()
            raise SendFailure(f"connect: {_describe(exc)}") from exc
        self.client = client
        self.opened += 1
        self.sent_on_connection = 0

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    async def quit(self) -> None:
        if self.client is not None and self.client.is_connected:
            with contextlib.suppress(SMTPException, OSError, TimeoutError):
                await self.client.quit()
        self.close()

    async def _reset(self) -> None:
        """After a refused transaction, RSET so the connection can carry the next message."""
        if self.client is None or not self.client.is_connected:
            self.close()
            return
        try:
            await self.client.rset()
        except (SMTPException, OSError, TimeoutError):
            self.close()

    async def send(self, composed: Composed) -> None:
        """Deliver one message to the relay, or raise `SendFailure`."""
        for attempt in (1, 2):
            reused = self.connected and self.sent_on_connection > 0
            if not self.connected:
                await self.connect()
            assert self.client is not None
            client = self.client
            options, encoding = self._address_options(composed)
            try:
                await client.mail(composed.envelope_from, options=options, encoding=encoding)
            except SMTPSenderRefused as exc:
                if exc.code == 421 or not client.is_connected:
                    self.close()
                    if reused and attempt == 1:
                        continue  # the relay had closed an idle connection: open a new one
                    raise SendFailure(f"MAIL: {_describe(exc)}") from exc
                await self._reset()
                raise SendFailure(
                    f"MAIL: {_describe(exc)}", permanent=500 <= exc.code < 600
                ) from exc
            except (SMTPServerDisconnected, OSError, TimeoutError) as exc:
                self.close()
                if reused and attempt == 1:
                    continue
                raise SendFailure(f"MAIL: {_describe(exc)}") from exc
            except SMTPException as exc:
                self.close()
                raise SendFailure(f"MAIL: {_describe(exc)}") from exc
            await self._recipient_and_data(client, composed, encoding)
            self.sent_on_connection += 1
            return

    def _address_options(self, composed: Composed) -> tuple[list[str], str]:
        addresses = composed.envelope_from + composed.recipient
        if addresses.isascii():
            return [], "ascii"
        if self.client is not None and self.client.supports_extension("smtputf8"):
            return ["SMTPUTF8"], "utf-8"
        raise SendFailure(
            "the address is not ASCII and the relay does not offer SMTPUTF8",
            permanent=True,
            bounce=False,
        )

    async def _recipient_and_data(
        self, client: aiosmtplib.SMTP, composed: Composed, encoding: str
    ) -> None:
        try:
            await client.rcpt(composed.recipient, encoding=encoding)
        except SMTPRecipientRefused as exc:
            permanent = 500 <= exc.code < 600
            if client.is_connected:
                await self._reset()
            else:
                self.close()
            raise SendFailure(
                f"RCPT: {_describe(exc)}", permanent=permanent, bounce=permanent
            ) from exc
        except (SMTPServerDisconnected, OSError, TimeoutError, SMTPException) as exc:
            self.close()
            raise SendFailure(f"RCPT: {_describe(exc)}") from exc
        try:
            await client.data(composed.as_bytes())
        except SMTPResponseException as exc:
            permanent = 500 <= exc.code < 600
            if client.is_connected:
                await self._reset()
            else:
                self.close()
            raise SendFailure(
                f"DATA: {_describe(exc)}", permanent=permanent, bounce=permanent
            ) from exc
        except (SMTPServerDisconnected, OSError, TimeoutError, SMTPException) as exc:
            # The data may have reached the relay: retrying can deliver twice (same Message-ID).
            self.close()
            raise SendFailure(f"DATA: connection dropped ({_describe(exc)})") from exc


class FileTransport:
    """`PALABRE_MAIL_BACKEND=file`: each email is `<mail_dir>/<timestamp>-<id>.eml`.

    The name depends only on the outbox row, so a message written again after a crash replaces
    its first copy instead of adding a second one.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, job: _Job) -> Path:
        return self.directory / f"{job.created}-{job.message_id}.eml"

    def write(self, job: _Job) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(job)
        temporary = target.with_suffix(".eml.tmp")
        temporary.write_bytes(job.composed.as_bytes())
        os.replace(temporary, target)
        return target


class EmailSender:
    """Drains the email outbox: `await drain_once()` sends what is due; `run(stop)` loops."""

    def __init__(
        self, config: MailConfig, database: Database, *, batch_size: int | None = None
    ) -> None:
        self.config = config
        self.database = database
        self.concurrency = config.smtp_concurrency if config.mail_backend == "smtp" else 1
        self.batch_size = batch_size or self.concurrency * PER_CONNECTION_BATCH
        self.connections = [SmtpConnection(config) for _ in range(self.concurrency)]
        self.files = FileTransport(Path(config.mail_dir))

    @property
    def connections_opened(self) -> int:
        return sum(connection.opened for connection in self.connections)

    async def drain_once(self) -> int:
        """Send every email due now (one claimed batch at a time); returns how many went out."""
        total = 0
        while True:
            jobs, claimed = await self._claim()
            if not claimed:
                return total
            total += await self._deliver(jobs)
            if claimed < self.batch_size:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; connections are closed on the way out."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    await self.drain_once()
                    failures = 0
                    delay = IDLE_SECONDS
                except Exception:
                    failures += 1
                    delay = min(60.0, IDLE_SECONDS * 2**failures)
                    logger.exception("the email sender failed; trying again in %.0f s", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        finally:
            await self.close()

    async def close(self) -> None:
        for connection in self.connections:
            await connection.quit()

    # -- claiming and rendering --------------------------------------------------------------

    async def _claim(self) -> tuple[list[_Job], int]:
        """Claim a batch (one short transaction), then render it outside any transaction.

        Rendering takes milliseconds per email; holding the claim's transaction open meanwhile
        would hold SQLite's write lock. Messages that cannot be rendered are settled after.
        """
        async with self.database.session() as session:
            claimed = await outbox.claim(
                session=session, channel=Channel.EMAIL, limit=self.batch_size
            )
            if not claimed:
                return [], 0
            people = await _by_id(session, Participant, {m.participant_id for m in claimed})
            consultations = await _by_id(
                session,
                Consultation,
                {m.consultation_id for m in claimed} | {p.consultation_id for p in people.values()},
            )
        documents = await self._documents(claimed)
        jobs: list[_Job] = []
        unsendable: list[tuple[int, str, str]] = []
        for message in claimed:
            outcome = self._prepare(message, people, consultations, documents.get(message.id, []))
            if isinstance(outcome, _Job):
                jobs.append(outcome)
            else:
                unsendable.append(outcome)
        if unsendable:
            async with self.database.session() as session:
                for message_id, action, reason in unsendable:
                    if action == "cancel":
                        row = await outbox.cancel(
                            session=session, message_id=message_id, reason=reason
                        )
                    else:
                        row = await outbox.mark_dead(
                            session=session, message_id=message_id, error=reason
                        )
                    _forget_address(row)
        return jobs, len(claimed)

    async def _documents(self, claimed: list[OutboxMessage]) -> dict[int, list[Attachment]]:
        """The files some emails carry (MYDATA's export), built now from the database.

        In a transaction of their own, after the claim's: SQLite's write lock is not held
        while they are read.
        """
        wanted = [message for message in claimed if message.template in WITH_DOCUMENTS]
        if not wanted:
            return {}
        async with self.database.session() as session:
            return {
                message.id: await documents_for(session=session, message=message)
                for message in wanted
                if message.id is not None
            }

    def _prepare(
        self,
        message: OutboxMessage,
        people: dict[int, Participant],
        consultations: dict[int, Consultation],
        attachments: list[Attachment],
    ) -> _Job | tuple[int, str, str]:
        """The email for one claimed row, or (id, "cancel" | "dead", why) when there is none."""
        assert message.id is not None
        participant = people.get(message.participant_id) if message.participant_id else None
        consultation_id = message.consultation_id or (
            participant.consultation_id if participant else None
        )
        consultation = consultations.get(consultation_id) if consultation_id else None
        if (
            participant is not None
            and message.address is None
            and participant.email_status == EmailStatus.BOUNCED
            and message.template not in {"email_receipt", "email_sender_mismatch"}
        ):
            return (message.id, "cancel", "address bounced")
        try:
            composed = compose(
                config=self.config,
                message=message,
                participant=participant,
                consultation=consultation,
                attachments=attachments,
            )
        except NoAddress as exc:
            return (message.id, "cancel", str(exc))
        except Exception as exc:  # a template bug: retrying will not fix it
            logger.exception("cannot render outbox message %s (%s)", message.id, message.template)
            return (message.id, "dead", f"render: {type(exc).__name__}: {exc}")
        created = (message.created_at or clock.now()).strftime("%Y%m%dT%H%M%S%fZ")
        return _Job(message.id, message.participant_id, composed, created, message.claimed_until)

    # -- delivering ------------------------------------------------------------------------

    async def _deliver(self, jobs: list[_Job]) -> int:
        if not jobs:
            return 0
        queue: asyncio.Queue[_Job] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        results: asyncio.Queue[tuple[_Job, SendFailure | None] | None] = asyncio.Queue()
        settler = asyncio.create_task(self._settle(results))
        try:
            if self.config.mail_backend == "file":
                await self._worker(queue, None, results)
            else:
                connections = self.connections[: min(len(self.connections), len(jobs))]
                await asyncio.gather(
                    *(self._worker(queue, connection, results) for connection in connections)
                )
            results.put_nowait(None)
            return await settler
        finally:
            if not settler.done():
                settler.cancel()

    async def _worker(
        self,
        queue: asyncio.Queue[_Job],
        connection: SmtpConnection | None,
        results: asyncio.Queue[tuple[_Job, SendFailure | None] | None],
    ) -> None:
        while not queue.empty():
            job = queue.get_nowait()
            if job.lease_until is not None and job.lease_until <= clock.now():
                # Our claim ran out (a very slow batch): another sender may have it now.
                logger.warning("lease of email %s expired before sending; left", job.message_id)
                continue
            try:
                if connection is None:
                    await asyncio.to_thread(self.files.write, job)
                else:
                    await connection.send(job.composed)
            except SendFailure as failure:
                results.put_nowait((job, failure))
                continue
            except OSError as exc:  # the mail directory is not writable
                results.put_nowait((job, SendFailure(f"file: {exc}")))
                continue
            results.put_nowait((job, None))

    async def _settle(self, results: asyncio.Queue[tuple[_Job, SendFailure | None] | None]) -> int:
        """Record outcomes as they come, all those waiting in one short transaction.

        One commit per message would make the database the bottleneck; waiting for the whole
        batch would widen what a crash can resend. Settling whatever has arrived since the last
        commit keeps both small.
        """
        sent = 0
        finished = False
        while not finished:
            group = [await results.get()]
            while not results.empty():
                group.append(results.get_nowait())
            finished = None in group
            outcomes = [item for item in group if item is not None]
            if not outcomes:
                continue
            async with self.database.session() as session:
                for job, failure in outcomes:
                    if failure is None:
                        row = await outbox.mark_sent(
                            session=session,
                            message_id=job.message_id,
                            external_id=job.composed.message_id,
                        )
                        _forget_address(row)
                        sent += 1
                    else:
                        await self._failed(session, job, failure)
        return sent

    async def _failed(self, session, job: _Job, failure: SendFailure) -> None:
        logger.info("email %s not sent: %s", job.message_id, failure.reason)
        if not failure.permanent:
            row = await outbox.mark_retry(
                session=session, message_id=job.message_id, error=failure.reason
            )
            _forget_address(row)
            return
        row = await outbox.mark_dead(
            session=session, message_id=job.message_id, error=failure.reason
        )
        _forget_address(row)
        if failure.bounce and job.participant_id is not None:
            participant = await session.get(Participant, job.participant_id)
            if participant is not None:
                await bounces.record_bounce(
                    session=session,
                    participant=participant,
                    reason=failure.reason,
                    limit=self.config.bounce_limit,
                )


def _forget_address(message: OutboxMessage) -> None:
    """A settled goodbye keeps only its template and dates: the address is nobody's any more.

    Left alone while it waits for another attempt; the relay's error may quote the address.
    """
    if message.template not in LAST_WORDS or message.participant_id is not None:
        return
    if message.status in {OutboxStatus.PENDING, OutboxStatus.SENDING}:
        return
    message.address = None
    message.payload = {}
    if message.last_error is not None:
        message.last_error = "not delivered (the address is forgotten)"


async def _by_id(session, model, ids: set[int | None]) -> dict:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = (await session.exec(select(model).where(model.id.in_(wanted)))).all()
    return {row.id: row for row in rows}


__all__ = ["EmailSender", "FileTransport", "SendFailure", "SmtpConnection"]
