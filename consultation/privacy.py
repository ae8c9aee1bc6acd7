"""The GDPR rights: a person's data as one JSON document, and forgetting a person.

Forgetting keeps the participant row as an anonymous marker: its name, organisation, email
address, Telegram chat and everything that could reach or identify the person are removed, its
reply key is replaced by a fresh random one that nobody knows, and only the actor category stays
(so that every count by category stays right). Their invitations and dialogue state are deleted,
their pending messages cancelled, and the messages already sent keep only their template and
dates. What they contributed stays (it is the consultation's material) but points only at the
marker, so nothing links it to the person any more. An audit event records the erasure, without
any of the erased data.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import actions, audit, clock, observations
from consultation.common import get_consultation, require_coordinator
from consultation.errors import NotFound
from consultation.participants import address_digest, new_reply_key
from consultation.preferences import cancel_pending
from models import (
    Action,
    Answer,
    AuditEvent,
    Ballot,
    Cadence,
    Channel,
    DialogueState,
    EmailStatus,
    Finding,
    FindingVersion,
    FollowUpAnswer,
    FollowUpRound,
    ForgottenAddress,
    InboundRecord,
    Invitation,
    OutboxMessage,
    Participant,
    Question,
    QuestionKind,
    Questionnaire,
    Stance,
)
from models.db import insert_for

logger = logging.getLogger(__name__)

EXPORT_FORMAT = 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def export_data(*, session: AsyncSession, participant: Participant) -> dict[str, Any]:
    """Everything Palabre holds about `participant`, as plain JSON values.

    Sections: profile, consent, observations, stances, proposals, ballot, answers,
    followup_answers (the follow-up questionnaires after the vote), invitations
    (dates only: the token itself is never stored), messages (template, channel, status and
    dates of each message addressed to them), events (what the audit trail records them doing).
    """
    if participant.erased_at is not None:
        raise NotFound("privacy.forgotten")
    consultation = await get_consultation(
        session=session, consultation_id=participant.consultation_id
    )
    labels = {item["key"]: item.get("label", {}) for item in consultation.categories}
    return {
        "format": EXPORT_FORMAT,
        "exported_at": clock.now().isoformat(),
        "consultation": {"slug": consultation.slug, "title": consultation.title},
        "profile": {
            "name": participant.name,
            "organisation": participant.organisation,
            "email": participant.email,
            "email_status": participant.email_status,
            "category": participant.category,
            "category_label": labels.get(participant.category, {}),
            "role": participant.role,
            "locale": participant.locale,
            "preferred_channel": participant.preferred_channel,
            "digest_cadence": participant.digest_cadence,
            "telegram_chat_id": participant.telegram_chat_id,
            "telegram_active": participant.telegram_active,
            "last_digest_at": _iso(participant.last_digest_at),
            "created_at": _iso(participant.created_at),
            "updated_at": _iso(participant.updated_at),
        },
        "consent": {
            "given_at": _iso(participant.consent_at),
            "declined_at": _iso(participant.consent_declined_at),
            "opted_out_at": _iso(participant.opted_out_at),
        },
        "observations": await _observations(session, participant),
        "stances": await _stances(session, participant),
        "proposals": await _proposals(session, participant),
        "ballot": await _ballot(session, participant),
        "answers": await _answers(session, participant),
        "followup_answers": await _followup_answers(session, participant),
        "invitations": await _invitations(session, participant),
        "messages": await _messages(session, participant),
        "events": await _events(session, participant),
    }


async def _observations(session: AsyncSession, participant: Participant) -> list[dict]:
    rows = await observations.observations_of(session=session, participant=participant)
    return [
        {
            "text": row.text,
            "theme": row.theme,
            "channel": row.channel,
            "created_at": _iso(row.created_at),
            "scope_status": row.scope_status,
            "scope_reason": row.scope_reason,
            "merged": row.duplicate_of_id is not None,
        }
        for row in rows
    ]


async def _stances(session: AsyncSession, participant: Participant) -> list[dict]:
    rows = (
        await session.exec(
            select(Stance, FindingVersion.version, Finding.code)
            .join(FindingVersion, FindingVersion.id == Stance.finding_version_id)
            .join(Finding, Finding.id == FindingVersion.finding_id)
            .where(Stance.participant_id == participant.id)
            .order_by(Stance.created_at, Stance.id)
        )
    ).all()
    return [
        {
            "finding": code,
            "version": version,
            "choice": stance.choice,
            "reason": stance.reason,
            "channel": stance.channel,
            "created_at": _iso(stance.created_at),
            "updated_at": _iso(stance.updated_at),
        }
        for stance, version, code in rows
    ]


async def _proposals(session: AsyncSession, participant: Participant) -> list[dict]:
    rows = await actions.proposals_of(session=session, participant=participant)
    return [
        {
            "code": row.code,
            "text": row.text,
            "status": row.status,
            "channel": row.channel,
            "created_at": _iso(row.created_at),
        }
        for row in rows
    ]


async def _ballot(session: AsyncSession, participant: Participant) -> dict | None:
    ballot = (
        await session.exec(
            select(Ballot)
            .where(Ballot.participant_id == participant.id)
            .where(Ballot.consultation_id == participant.consultation_id)
        )
    ).first()
    if ballot is None:
        return None
    codes = dict(
        (
            await session.exec(
                select(Action.id, Action.code).where(
                    Action.consultation_id == participant.consultation_id
                )
            )
        ).all()
    )
    return {
        "ranking": [codes.get(item, str(item)) for item in ballot.ranking],
        "channel": ballot.channel,
        "created_at": _iso(ballot.created_at),
        "updated_at": _iso(ballot.updated_at),
    }


async def _answers(session: AsyncSession, participant: Participant) -> list[dict]:
    rows = (
        await session.exec(
            select(Answer, Question, Questionnaire.key)
            .join(Question, Question.id == Answer.question_id)
            .join(Questionnaire, Questionnaire.id == Question.questionnaire_id)
            .where(Answer.participant_id == participant.id)
            .order_by(Questionnaire.id, Question.position)
        )
    ).all()
    answers = []
    for answer, question, key in rows:
        value: Any = answer.value_text if question.kind == QuestionKind.TEXT else answer.value_int
        entry = {
            "questionnaire": key,
            "position": question.position,
            "kind": question.kind,
            "prompt": dict(question.prompt),
            "value": value,
            "skipped": answer.value_int is None and answer.value_text is None,
            "channel": answer.channel,
            "created_at": _iso(answer.created_at),
            "updated_at": _iso(answer.updated_at),
        }
        if question.kind == QuestionKind.CHOICE and answer.value_int is not None:
            index = answer.value_int - 1
            if 0 <= index < len(question.choices):
                entry["choice"] = dict(question.choices[index])
        answers.append(entry)
    return answers


async def _followup_answers(session: AsyncSession, participant: Participant) -> list[dict]:
    rows = (
        await session.exec(
            select(FollowUpAnswer, FollowUpRound.number, Action.code)
            .join(FollowUpRound, FollowUpRound.id == FollowUpAnswer.round_id)
            .join(Action, Action.id == FollowUpAnswer.action_id)
            .where(FollowUpAnswer.participant_id == participant.id)
            .order_by(FollowUpRound.number, FollowUpAnswer.id)
        )
    ).all()
    return [
        {
            "questionnaire": number,
            "action": code,
            "answer": answer.value,
            "remark": answer.remark,
            "channel": answer.channel,
            "created_at": _iso(answer.created_at),
            "updated_at": _iso(answer.updated_at),
        }
        for answer, number, code in rows
    ]


async def _invitations(session: AsyncSession, participant: Participant) -> list[dict]:
    rows = (
        await session.exec(
            select(Invitation)
            .where(Invitation.participant_id == participant.id)
            .order_by(Invitation.created_at, Invitation.id)
        )
    ).all()
    return [
        {
            "created_at": _iso(row.created_at),
            "expires_at": _iso(row.expires_at),
            "used_at": _iso(row.used_at),
        }
        for row in rows
    ]


async def _messages(session: AsyncSession, participant: Participant) -> list[dict]:
    rows = (
        await session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.participant_id == participant.id)
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        )
    ).all()
    return [
        {
            "template": row.template,
            "channel": row.channel,
            "status": row.status,
            "created_at": _iso(row.created_at),
            "sent_at": _iso(row.sent_at),
        }
        for row in rows
    ]


async def _events(session: AsyncSession, participant: Participant) -> list[dict]:
    rows = (
        await session.exec(
            select(AuditEvent)
            .where(AuditEvent.actor_id == participant.id)
            .order_by(AuditEvent.at, AuditEvent.id)
        )
    ).all()
    return [{"action": row.action, "subject": row.subject, "at": _iso(row.at)} for row in rows]


async def forget(
    *,
    session: AsyncSession,
    participant: Participant,
    erasure_key: str,
    by: Participant | None = None,
    actor_label: str | None = None,
) -> list[int]:
    """Erase `participant`'s personal data for good (see the module docstring).

    Returns the ids of the emails that were written to them: a copy kept outside the database
    (the file backend's `.eml` files) is for the caller that knows where it lives to remove.

    `erasure_key` (the secret key) hashes their address into a `ForgottenAddress`, so that the
    next import of the same list does not bring them back.

    `by` is who asks: the person themself, a coordinator of the consultation, or None for a
    trusted process (the command line, with `actor_label`). Forgetting someone already
    forgotten changes nothing.
    """
    by_self = by is not None and by.id == participant.id
    if not by_self:
        require_coordinator(by, participant.consultation_id)
    if participant.erased_at is not None:
        return []
    current = clock.now()
    emailed = list(
        (
            await session.exec(
                select(OutboxMessage.id)
                .where(OutboxMessage.participant_id == participant.id)
                .where(OutboxMessage.channel == Channel.EMAIL)
            )
        ).all()
    )
    if participant.email:
        await session.execute(
            insert_for(session)(ForgottenAddress)
            .values(
                consultation_id=participant.consultation_id,
                digest=address_digest(erasure_key, participant.email),
                created_at=current,
            )
            .on_conflict_do_nothing(index_elements=["consultation_id", "digest"])
        )
        # An audit line that named them by address (an invitation sent, a bounce) names the
        # anonymous marker instead.
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.consultation_id == participant.consultation_id)
            .where(AuditEvent.subject.contains(participant.email, autoescape=True))  # type: ignore[union-attr]
            .values(subject=f"participant:{participant.id}")
            .execution_options(synchronize_session=False)
        )
    cancelled = await cancel_pending(session=session, participant=participant, reason="forgotten")
    invitations = await session.execute(
        delete(Invitation).where(Invitation.participant_id == participant.id)
    )
    await session.execute(
        delete(DialogueState).where(DialogueState.participant_id == participant.id)
    )
    # Messages already sent keep their template and dates (the coordinators' record of what
    # went out); what they said, and where they went, goes.
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.participant_id == participant.id)
        .values(payload={}, address=None, last_error=None, external_id=None)
        .execution_options(synchronize_session=False)
    )
    # What they wrote to Palabre is kept by its external id only, so a redelivery stays a no-op.
    await session.execute(
        update(InboundRecord)
        .where(InboundRecord.participant_id == participant.id)
        .values(participant_id=None, detail={})
        .execution_options(synchronize_session=False)
    )
    for field in ("name", "organisation", "email", "telegram_chat_id", "last_digest_at"):
        setattr(participant, field, None)
    for field in ("consent_at", "consent_declined_at", "opted_out_at"):
        setattr(participant, field, None)
    participant.telegram_active = False
    participant.email_status = EmailStatus.OK
    participant.bounce_count = 0
    participant.reply_key = new_reply_key()
    participant.preferred_channel = Channel.EMAIL
    participant.digest_cadence = Cadence.OFF
    participant.erased_at = current
    participant.updated_at = current
    session.add(participant)
    await audit.record(
        session=session,
        consultation_id=participant.consultation_id,
        action="participant.forgotten",
        actor=None if by_self else by,
        actor_label=actor_label or ("self" if by_self else None if by else "system"),
        subject=f"participant:{participant.id}",
        detail={
            "cancelled_messages": cancelled,
            "invitations_deleted": int(invitations.rowcount or 0),
        },
    )
    logger.info("participant %s forgotten", participant.id)
    return [message_id for message_id in emailed if message_id is not None]
