"""The audit trail: every coordinator decision and every forced override, with its reason."""

from __future__ import annotations

from typing import Any

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
