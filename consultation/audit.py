"""The audit trail: every coordinator decision and every forced override, with its reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock
from models import AuditEvent, Participant


async def record(
    *,
    session: AsyncSession,
    consultation_id: int | None,
    action: str,
    actor: Participant | None = None,
    actor_label: str | None = None,
    subject: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Log who did what. `actor_label` names a non-participant actor ("cli", "scheduler")."""
    event = AuditEvent(
        consultation_id=consultation_id,
        actor_id=actor.id if actor is not None else None,
        actor_label=actor_label,
        action=action,
        subject=subject,
        reason=reason,
        detail=detail or {},
        at=clock.now(),
    )
    session.add(event)
    return event


async def events(
    *, session: AsyncSession, consultation_id: int, since: datetime | None = None
) -> list[tuple[AuditEvent, Participant | None]]:
    """The audit trail of a consultation, oldest first, each event with the person who acted
    (None for the command line, the scheduler or the system)."""
    query = (
        select(AuditEvent, Participant)
        .join(Participant, Participant.id == AuditEvent.actor_id, isouter=True)  # type: ignore[arg-type]
        .where(AuditEvent.consultation_id == consultation_id)
        .order_by(AuditEvent.at, AuditEvent.id)  # type: ignore[arg-type]
    )
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    return [(event, actor) for event, actor in (await session.exec(query)).all()]
