"""What each person decides about how Palabre treats them: consent, language, digest, channel, STOP.

Consent (GDPR) is given or declined explicitly and timestamped, and both are kept in the audit
trail. Declining is not forgetting: what the person already contributed stays, attached to them,
until they ask to be forgotten (`privacy.forget`). STOP (`opt_out`) means no more messages at all,
on any channel: the pending ones are cancelled in the same transaction, and `outbox.notify` writes
nothing new for them. `opt_in` undoes a STOP when the person comes back.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, clock
from consultation.errors import NotFound, UserError
from models import Cadence, Channel, OutboxMessage, OutboxStatus, Participant

logger = logging.getLogger(__name__)

# The languages Palabre speaks (the same list as `templates.i18n.LOCALES`; the core does not import
# templates/, which is built on the core).
LOCALES = ("fr", "en")
PERSONAL_CHANNELS = (Channel.TELEGRAM, Channel.EMAIL)


def _require_present(participant: Participant) -> None:
    if participant.erased_at is not None:
        raise NotFound("preferences.forgotten")


def _touch(session: AsyncSession, participant: Participant) -> Participant:
    participant.updated_at = clock.now()
    session.add(participant)
    return participant


def has_consented(participant: Participant) -> bool:
    """Whether the person's latest word on consent is yes."""
    if participant.consent_at is None:
        return False
    declined = participant.consent_declined_at
    return declined is None or declined < participant.consent_at


def require_consent(participant: Participant) -> None:
    """Refuse a contribution from someone who has not (or no longer) consented."""
    if not has_consented(participant):
        raise UserError("preferences.consent_required")


async def give_consent(
    *, session: AsyncSession, participant: Participant, channel: str
) -> Participant:
    """Record a yes to the processing described at onboarding; repeating it changes nothing."""
    _require_present(participant)
    if has_consented(participant):
        return participant
    participant.consent_at = clock.now()
    participant.consent_declined_at = None
    await audit.record(
        session=session,
        consultation_id=participant.consultation_id,
        action="consent.given",
        actor=participant,
        detail={"channel": str(channel)},
    )
    return _touch(session, participant)


async def decline_consent(
    *, session: AsyncSession, participant: Participant, channel: str
) -> Participant:
    """Record a no (or a withdrawal of an earlier yes): Palabre stops writing to the person.

    Their pending messages are cancelled; the channel's own answer to the decline is written by
    the channel after this call. What they already contributed stays (forgetting is separate).
    """
    _require_present(participant)
    if participant.consent_declined_at is not None and not has_consented(participant):
        return participant
    withdrawn = participant.consent_at is not None
    participant.consent_at = None
    participant.consent_declined_at = clock.now()
    cancelled = await cancel_pending(session=session, participant=participant, reason="declined")
    await audit.record(
        session=session,
        consultation_id=participant.consultation_id,
        action="consent.withdrawn" if withdrawn else "consent.declined",
        actor=participant,
        detail={"channel": str(channel), "cancelled_messages": cancelled},
    )
    return _touch(session, participant)


async def set_locale(
    *, session: AsyncSession, participant: Participant, locale: str
) -> Participant:
    """Speak to the person in `locale` (fr or en; "fr-FR" and "EN" are understood)."""
    _require_present(participant)
    wanted = (locale or "").strip().replace("_", "-").split("-", 1)[0].lower()
    if wanted not in LOCALES:
        raise UserError("preferences.unknown_locale", locale=locale, known=", ".join(LOCALES))
    if participant.locale != wanted:
        participant.locale = wanted
        _touch(session, participant)
    return participant


async def set_cadence(
    *, session: AsyncSession, participant: Participant, cadence: str
) -> Participant:
    """How often the email digest comes: daily, weekly, or off."""
    _require_present(participant)
    wanted = (cadence or "").strip().lower()
    if wanted not in {item.value for item in Cadence}:
        raise UserError(
            "preferences.unknown_cadence",
            cadence=cadence,
            known=", ".join(item.value for item in Cadence),
        )
    if participant.digest_cadence != wanted:
        participant.digest_cadence = wanted
        _touch(session, participant)
    return participant


async def set_channel(
    *, session: AsyncSession, participant: Participant, channel: str
) -> Participant:
    """Where the person prefers to be reached; it must be a channel that reaches them."""
    _require_present(participant)
    wanted = (channel or "").strip().lower()
    if wanted not in {item.value for item in PERSONAL_CHANNELS}:
        raise UserError(
            "preferences.unknown_channel",
            channel=channel,
            known=", ".join(item.value for item in PERSONAL_CHANNELS),
        )
    if wanted == Channel.TELEGRAM and participant.telegram_chat_id is None:
        raise UserError("preferences.no_telegram")
    if wanted == Channel.EMAIL and not participant.email:
        raise UserError("preferences.no_email")
    if participant.preferred_channel != wanted:
        participant.preferred_channel = wanted
        _touch(session, participant)
    return participant


async def cancel_pending(*, session: AsyncSession, participant: Participant, reason: str) -> int:
    """Cancel every message still waiting to go to `participant`; returns how many."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.participant_id == participant.id)
        .where(
            OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])  # type: ignore[attr-defined]
        )
        .values(status=OutboxStatus.CANCELLED, claimed_until=None, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def opt_out(*, session: AsyncSession, participant: Participant, channel: str) -> Participant:
    """STOP: no more messages from Palabre, on any channel, from now on.

    Claimed rows (`sending`) are cancelled too: one a sender is sending at this very moment may
    still go out, but one left behind by a crashed sender is never retried.
    """
    _require_present(participant)
    if participant.opted_out_at is not None:
        return participant
    participant.opted_out_at = clock.now()
    cancelled = await cancel_pending(session=session, participant=participant, reason="opted out")
    await audit.record(
        session=session,
        consultation_id=participant.consultation_id,
        action="participant.opted_out",
        actor=participant,
        detail={"channel": str(channel), "cancelled_messages": cancelled},
    )
    logger.info("participant %s opted out (%s)", participant.id, channel)
    return _touch(session, participant)


async def opt_in(*, session: AsyncSession, participant: Participant, channel: str) -> Participant:
    """Undo a STOP: the person came back (wrote to the bot again, clicked "resume")."""
    _require_present(participant)
    if participant.opted_out_at is None:
        return participant
    participant.opted_out_at = None
    await audit.record(
        session=session,
        consultation_id=participant.consultation_id,
        action="participant.opted_in",
        actor=participant,
        detail={"channel": str(channel)},
    )
    return _touch(session, participant)
