"""Hard bounces: count them per person, stop writing to an address that keeps failing.

A permanent failure comes either from our relay at send time (a 5xx) or, later, as a delivery
status notification to the person's VERP address. After `PALABRE_BOUNCE_LIMIT` of them the
address is marked bounced (the outbox then reaches the person on Telegram, or not at all) and
every coordinator is told, with the person's name and address and nobody else's.
"""

from __future__ import annotations

import logging

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, clock, outbox
from models import EmailStatus, Participant, Role

logger = logging.getLogger(__name__)


async def record_bounce(
    *, session: AsyncSession, participant: Participant, reason: str, limit: int
) -> bool:
    """Count one hard bounce; returns True when this one marked the address bounced."""
    if participant.email_status == EmailStatus.BOUNCED:
        return False
    participant.bounce_count = (participant.bounce_count or 0) + 1
    participant.updated_at = clock.now()
    session.add(participant)
    logger.info("hard bounce %s for participant %s", participant.bounce_count, participant.id)
    if participant.bounce_count < limit:
        return False
    participant.email_status = EmailStatus.BOUNCED
    await audit.record(
        session=session,
        consultation_id=participant.consultation_id,
        action="email.bounced",
        actor_label="mailer",
        subject=f"participant:{participant.id}",
        reason=reason[:500],
        detail={"bounces": participant.bounce_count},
    )
    await tell_coordinators(session=session, participant=participant, reason=reason)
    return True


async def tell_coordinators(*, session: AsyncSession, participant: Participant, reason: str) -> int:
    """One message to each reachable coordinator of the consultation; returns how many."""
    coordinators = (
        await session.exec(
            select(Participant)
            .where(Participant.consultation_id == participant.consultation_id)
            .where(Participant.role == Role.COORDINATOR)
            .where(Participant.id != participant.id)
            .order_by(Participant.id)
        )
    ).all()
    stamp = clock.now().strftime("%Y%m%dT%H%M%S")
    told = 0
    for coordinator in coordinators:
        told += await outbox.notify(
            session=session,
            participant=coordinator,
            template="email_bounced",
            payload={
                "person": {
                    "name": participant.name or "",
                    "email": participant.email or "",
                    "organisation": participant.organisation or "",
                },
                "bounces": participant.bounce_count,
                "reason": " ".join(reason.split())[:300],
            },
            dedupe_key=f"email_bounced:{participant.id}:{coordinator.id}:{stamp}",
        )
    return told


async def clear_bounces(*, session: AsyncSession, participant: Participant) -> None:
    """The person just wrote to us from their address: it works."""
    if participant.bounce_count or participant.email_status != EmailStatus.OK:
        participant.bounce_count = 0
        participant.email_status = EmailStatus.OK
        participant.updated_at = clock.now()
        session.add(participant)
