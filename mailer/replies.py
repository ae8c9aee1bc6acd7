"""Acting on an inbound email: who wrote it (by its signed token, never by `From:` alone), and
what its commands do.

`handle(config=, database=, raw=)` reads the message (`mailer.reading`, pure), then acts on it in
one transaction: the message is recorded by its Message-ID first (a second delivery of the same
message then does nothing), then a bounce is counted, an automatic answer dropped, a reply from
the wrong address reported to the person at their registered address, or the reply's commands
are run and a receipt is written to the outbox, with the emails some commands answer with
(`commands.Letter`).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock, inbound, outbox, preferences, questionnaires
from consultation.errors import UserError
from consultation.participants import by_reply_key
from consultation.phases import current_phase
from consultation.status import awaiting
from mailer import bounces, commands, sentences
from mailer.config import MailConfig
from mailer.reading import Incoming, read
from models import Channel, InboundRecord, OutboxMessage, Participant, PhaseKind
from models.db import Database

logger = logging.getLogger(__name__)

RECEIPTS_PER_HOUR = 20
# What counts towards RECEIPTS_PER_HOUR: every email that answers a reply.
ANSWER_TEMPLATES = ("email_receipt", *commands.LETTER_TEMPLATES)
# The emails that ask for an answer: one sent after the email a reply answers makes that reply
# an old one, which must not overwrite what was answered since (`Expecting.newer_email_at`).
# A line that answers a question ("Q2 4", "[Q3] juste bien").
_QUESTION_LINE = re.compile(r"^\s*[\[(]?\s*Q\s?\d{1,3}\b", re.I)
ASKING_TEMPLATES = ("digest", "findings_published", "finding_revised", "questionnaire_opened")


@dataclass
class Outcome:
    """What `handle` did with one message."""

    status: str  # processed, duplicate, bounce, dropped, rejected, foreign_sender, failed
    participant_id: int | None = None
    receipt: dict[str, Any] | None = None


async def handle(*, config: MailConfig, database: Database, raw: bytes) -> Outcome:
    """Record, then act on, one inbound message; safe to call again with the same message.

    A database that cannot be reached raises (the poller leaves the message unseen and tries
    again); any other failure is recorded against the Message-ID and not retried.
    """
    reading = read(config, raw)
    try:
        async with database.session() as session:
            return await _act(session, config, reading)
    except (OperationalError, InterfaceError, ConnectionError):
        raise
    except Exception as exc:
        logger.exception("fault while handling inbound email %s", _redact(reading.message_id))
        async with database.session() as session:
            return await _record_fault(session, config, reading, exc)


async def handle_batch(
    *, config: MailConfig, database: Database, raws: list[bytes]
) -> list[Outcome]:
    """Act on several messages in one transaction, each in its own savepoint.

    One commit for the batch instead of one per message; a fault in one message is recorded
    against it (its savepoint rolled back) and the others stand. A database that cannot be
    reached raises: the whole batch is rolled back and left unseen, to be read again.
    """
    readings = [read(config, raw) for raw in raws]
    outcomes: list[Outcome] = []
    async with database.session() as session:
        for reading in readings:
            try:
                async with session.begin_nested():
                    outcomes.append(await _act(session, config, reading))
            except (OperationalError, InterfaceError, ConnectionError):
                raise
            except Exception as exc:
                logger.exception(
                    "fault while handling inbound email %s", _redact(reading.message_id)
                )
                async with session.begin_nested():
                    outcomes.append(await _record_fault(session, config, reading, exc))
    return outcomes


def _redact(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]


async def _act(session: AsyncSession, config: MailConfig, reading: Incoming) -> Outcome:
    record = await inbound.record(
        session=session, channel=Channel.EMAIL, external_id=reading.message_id
    )
    if record is None:
        return Outcome("duplicate")
    if reading.kind == "bounce":
        return await _bounce(session, config, reading, record)
    if reading.kind == "auto":
        inbound.finish(record, "dropped", participant_id=None, reason=reading.reason)
        logger.info("dropped an automatic message (%s)", reading.reason)
        return Outcome("dropped")
    if reading.token is None:
        inbound.finish(record, "rejected", participant_id=None, reason=reading.reason)
        logger.info("rejected a message without a valid token (%s)", reading.reason)
        return Outcome("rejected")
    participant = await _owner(session, reading)
    if participant is None or participant.erased_at is not None:
        inbound.finish(record, "rejected", participant_id=None, reason="unknown key")
        return Outcome("rejected")
    if not participant.email or reading.sender != participant.email.lower():
        await _tell_foreign_sender(session, participant, reading, record)
        inbound.finish(record, "foreign_sender", participant_id=participant.id)
        logger.info("reply for participant %s came from another address", participant.id)
        return Outcome("foreign_sender", participant.id)
    if reading.authentication == "fail":
        # Our own MX says the From domain did not send it: a forgery in their name.
        await _tell_foreign_sender(session, participant, reading, record, forged=True)
        inbound.finish(record, "rejected", participant_id=participant.id, reason="authentication")
        logger.info("reply for participant %s failed authentication", participant.id)
        return Outcome("rejected", participant.id)
    await bounces.clear_bounces(session=session, participant=participant)
    expecting = await _expecting(session, participant, reading)
    found = commands.find_commands(reading.lines, reading.subject, expecting)
    if participant.opted_out_at is not None and any(
        parsed.command.brings_back for parsed in found.commands
    ):
        # Someone who said STOP and now writes a command has come back, as on Telegram.
        await preferences.opt_in(session=session, participant=participant, channel=Channel.EMAIL)
    receipt = await commands.execute(
        session=session, participant=participant, found=found, config=config
    )
    payload = {
        **receipt.as_payload(),
        "in_reply_to": _angle(reading.message_id),
        "subject": reading.subject[:200],
        "reply_subject": commands.strip_reply_prefix(reading.subject)[:200],
        "awaiting": await commands.still_awaiting(session=session, participant=participant),
        "stopped": participant.opted_out_at is not None,
        "fault": False,
    }
    answered = await _should_answer(session, participant, reading, found)
    forgotten = participant.erased_at is not None
    letters = await _write_letters(
        session, participant, reading, record, receipt, answered=answered
    )
    # A person just forgotten gets the goodbye only; their receipt could not reach them anyway.
    answered = answered and receipt.needed and not forgotten
    if answered:
        await outbox.enqueue(
            session=session,
            channel=Channel.EMAIL,
            template="email_receipt",
            payload=payload,
            dedupe_key=f"email_receipt:{record.id}",
            participant_id=participant.id,
            consultation_id=participant.consultation_id,
            interactive=True,
        )
    inbound.finish(
        record,
        inbound.PROCESSED,
        # As `privacy.forget` does for their earlier messages: nothing links this one to them.
        participant_id=None if forgotten else participant.id,
        processed=len(receipt.processed),
        refused=len(receipt.refused),
        not_understood=len(receipt.not_understood),
        ignored=len(receipt.ignored),
        letters=letters or None,
        unanswered=None if answered or letters else True,
    )
    return Outcome("processed", participant.id, payload if answered else None)


async def _owner(session: AsyncSession, reading: Incoming) -> Participant | None:
    """Whose reply it is: of the reply addresses it reached, the one whose owner sent it.

    A message sent to two people's addresses at once is theirs who wrote it; the other owner is
    not told of a stranger's message (it is not one). When no owner sent it, the first is told.
    """
    keys = [token.key for token in reading.reply_tokens]
    found = (
        await session.exec(select(Participant).where(Participant.reply_key.in_(keys)))  # type: ignore[attr-defined]
    ).all()
    owners = sorted(found, key=lambda person: keys.index(person.reply_key))
    for person in owners:
        if person.email and person.email.lower() == reading.sender and person.erased_at is None:
            return person
    return owners[0] if owners else None


async def _answered(
    session: AsyncSession, participant: Participant, reading: Incoming
) -> OutboxMessage | None:
    """The email of ours this reply answers (by In-Reply-To, then References), if it was theirs."""
    if not reading.answers:
        return None
    sent = (
        await session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.external_id.in_(reading.answers))  # type: ignore[union-attr]
            .where(OutboxMessage.participant_id == participant.id)
        )
    ).all()
    by_id = {row.external_id: row for row in sent}
    return next((by_id[i] for i in reading.answers if i in by_id), None)


async def _expecting(
    session: AsyncSession, participant: Participant, reading: Incoming
) -> commands.Expecting:
    """What the consultation awaits from the person, and from the email they answer.

    Only what the lines can use is asked: the findings awaiting an answer when a line agrees
    with all of them, the questions when a line answers one (a reply is one query cheaper for
    each thing it does not say).
    """
    phase = await current_phase(session=session, consultation_id=participant.consultation_id)
    kind = phase.kind if phase is not None and clock.now() < phase.closes_at else None
    findings: list[str] = []
    if kind == PhaseKind.REVIEW and any(sentences.agrees_with_all(line) for line in reading.lines):
        findings = (await awaiting(session=session, participant=participant)).findings
    answered = await _answered(session, participant, reading)
    payload = answered.payload if answered is not None else {}
    key = None
    if answered is not None and answered.template == "questionnaire_opened":
        key = payload.get("key")
    elif answered is not None and isinstance(payload.get("questionnaire"), dict):
        key = payload["questionnaire"].get("key")
    questionnaire = None
    answers_a_question = any(_QUESTION_LINE.match(line) for line in reading.lines)
    if key and answers_a_question:
        try:
            questionnaire = await questionnaires.get_questionnaire(
                session=session, consultation_id=participant.consultation_id, key=key
            )
        except UserError:  # deleted since: the open one is meant
            questionnaire = None
    if questionnaire is None and answers_a_question:
        questionnaire = await questionnaires.current_questionnaire(
            session=session, participant=participant
        )
    questions = {}
    if questionnaire is not None:
        for question in await questionnaires.questions_of(
            session=session, questionnaire_id=questionnaire.id
        ):
            labels = tuple(tuple(dict(choice).values()) for choice in question.choices)
            questions[question.position] = commands.Question(kind=question.kind, labels=labels)
    offered: tuple[tuple[str, str], ...] = ()
    if answered is not None and answered.template == "email_receipt":
        offered = tuple(
            (item["value"], item["excerpt"])
            for item in payload.get("processed", [])
            if item.get("kind") == "suggestion"
        )
    newer = None
    if answered is not None and answered.sent_at is not None:
        newer = (
            await session.exec(
                select(func.min(OutboxMessage.sent_at))
                .where(OutboxMessage.participant_id == participant.id)
                .where(OutboxMessage.template.in_(ASKING_TEMPLATES))  # type: ignore[attr-defined]
                .where(OutboxMessage.sent_at > answered.sent_at)  # type: ignore[operator]
            )
        ).one()
    return commands.Expecting(
        consent=participant.consent_at is None,
        findings=tuple(findings),
        ballot=kind == PhaseKind.RANK,
        welcome={PhaseKind.OBSERVE: "observation", PhaseKind.PROPOSE: "proposal"}.get(kind),
        questions=questions,
        questionnaire=questionnaire.key if questionnaire is not None else None,
        offered=offered,
        newer_email_at=newer,
    )


async def _write_letters(
    session: AsyncSession,
    participant: Participant,
    reading: Incoming,
    record: InboundRecord,
    receipt: commands.Receipt,
    *,
    answered: bool,
) -> int:
    """Write the emails the commands answered with, beside the receipt (same guards).

    The goodbye of an erasure (a letter with its own `address`) always goes, whatever the hourly
    limit: it is the last email this address will ever get from us. It names no participant, so
    nothing links the row to the anonymous marker the person became; the sender removes the
    address from the row once it has gone (see `mailer.sender`). Returns how many were written.
    """
    written = 0
    for number, letter in enumerate(receipt.letters):
        if letter.address is None and (not answered or participant.erased_at is not None):
            continue
        written += await outbox.enqueue(
            session=session,
            channel=Channel.EMAIL,
            template=letter.template,
            payload={**letter.payload, "in_reply_to": _angle(reading.message_id)},
            dedupe_key=f"{letter.template}:{record.id}:{number}",
            participant_id=None if letter.address else participant.id,
            address=letter.address,
            consultation_id=participant.consultation_id,
            interactive=True,
        )
    return written


async def _should_answer(
    session: AsyncSession, participant: Participant, reading: Incoming, found: commands.Found
) -> bool:
    """Whether this reply gets an answer (a receipt, a letter); the guards against a mail loop.

    A message with no line of its own (only our quoted text, as a mailbox that forwards our
    receipts back to us would send) gets none, and neither does anyone who already got
    `RECEIPTS_PER_HOUR` answers (`ANSWER_TEMPLATES`) in the last hour.
    """
    if not found.commands and not any(line.strip() for line in reading.lines):
        logger.info("reply with nothing of its own from participant %s: no receipt", participant.id)
        return False
    recent = (
        await session.exec(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.participant_id == participant.id)
            .where(OutboxMessage.template.in_(ANSWER_TEMPLATES))  # type: ignore[attr-defined]
            .where(OutboxMessage.created_at >= clock.now() - timedelta(hours=1))
        )
    ).one()
    if recent >= RECEIPTS_PER_HOUR:
        logger.warning("participant %s got %s receipts this hour: no more", participant.id, recent)
        return False
    return True


def _angle(message_id: str) -> str | None:
    return message_id if message_id.startswith("<") and message_id.endswith(">") else None


async def _tell_foreign_sender(
    session: AsyncSession,
    participant: Participant,
    reading: Incoming,
    record: InboundRecord,
    *,
    forged: bool = False,
) -> None:
    """Apply nothing; tell the person, at their registered address, what arrived in their name.

    `forged`: it came from their address, but our MX found it was not sent by their domain.
    """
    if not participant.email or not participant.reachable:
        return
    await outbox.enqueue(
        session=session,
        channel=Channel.EMAIL,
        template="email_sender_mismatch",
        payload={
            "other_address": reading.sender[:320],
            "subject": reading.subject[:200],
            "received_at": clock.now().isoformat(),
            "forged": forged,
        },
        dedupe_key=f"email_sender_mismatch:{record.id}",
        participant_id=participant.id,
        consultation_id=participant.consultation_id,
        interactive=True,
    )


async def _bounce(
    session: AsyncSession, config: MailConfig, reading: Incoming, record: InboundRecord
) -> Outcome:
    participant = await _bounced_participant(session, reading)
    permanent = any(permanent for _, permanent in reading.failures)
    if participant is None:
        inbound.finish(
            record, "bounce", participant_id=None, reason="unknown recipient", permanent=permanent
        )
        return Outcome("bounce")
    if permanent:
        await bounces.record_bounce(
            session=session,
            participant=participant,
            reason=f"delivery status notification ({reading.subject[:120]})",
            limit=config.bounce_limit,
        )
    inbound.finish(record, "bounce", participant_id=participant.id, permanent=permanent)
    return Outcome("bounce", participant.id)


async def _bounced_participant(session: AsyncSession, reading: Incoming) -> Participant | None:
    """Whom a bounce is about: the signed VERP address, else a Message-ID we sent to them."""
    if reading.verp is not None:
        found = await by_reply_key(session=session, reply_key=reading.verp.key)
        if found is not None:
            return found
    recipients = {address for address, _ in reading.failures if address}
    for message_id in reading.original_ids[:5]:
        sent = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.external_id == message_id.strip())
            )
        ).first()
        if sent is None or sent.participant_id is None:
            continue
        participant = await session.get(Participant, sent.participant_id)
        # The DSN must name the same address we sent to, or it proves nothing.
        if (
            participant is not None
            and participant.email
            and (participant.email.lower() in recipients)
        ):
            return participant
    return None


async def _record_fault(
    session: AsyncSession, config: MailConfig, reading: Incoming, exc: Exception
) -> Outcome:
    record = await inbound.record(
        session=session,
        channel=Channel.EMAIL,
        external_id=reading.message_id,
        status=inbound.FAILED,
    )
    if record is None:
        return Outcome("duplicate")
    participant = None
    if reading.kind == "reply" and reading.token is not None:
        participant = await by_reply_key(session=session, reply_key=reading.token.key)
    if participant is not None and (
        not participant.email or reading.sender != participant.email.lower()
    ):
        participant = None
    inbound.finish(
        record,
        inbound.FAILED,
        participant_id=participant.id if participant else None,
        error=type(exc).__name__,
    )
    if participant is not None and participant.reachable:
        await outbox.enqueue(
            session=session,
            channel=Channel.EMAIL,
            template="email_receipt",
            payload={
                "processed": [],
                "refused": [],
                "not_understood": [],
                "ignored": [],
                "help": False,
                "in_reply_to": _angle(reading.message_id),
                "subject": reading.subject[:200],
                "reply_subject": commands.strip_reply_prefix(reading.subject)[:200],
                "awaiting": {},
                "stopped": False,
                "fault": True,
            },
            dedupe_key=f"email_receipt:{record.id}",
            participant_id=participant.id,
            consultation_id=participant.consultation_id,
            interactive=True,
        )
    return Outcome("failed", participant.id if participant else None)


__all__ = ["Outcome", "handle", "handle_batch"]
