"""A coordinator's message to everyone, or to one category of actors, through the outbox.

A coordinator operation like any other, so it lives with them rather than in one channel: each
person gets it on the channel that reaches them (a blocked bot falls back to email), once (the
dedupe key carries the broadcast's nonce), and it is in the audit trail.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, outbox
from consultation.common import actor_of, people_to_tell, require_coordinator
from models import Consultation, Participant

TEMPLATE = "broadcast"
MAX_LENGTH = 3000


async def audience(
    *,
    session: AsyncSession,
    consultation_id: int,
    category: str | None,
    sender: Participant | None,
) -> list[Participant]:
    """Everyone the broadcast reaches: reachable, not the sender (none from the command line),
    of `category` if given."""
    people = await people_to_tell(session=session, consultation_id=consultation_id)
    return [
        person
        for person in people
        if (sender is None or person.id != sender.id)
        and (category is None or person.category == category)
    ]


async def broadcast(
    *,
    session: AsyncSession,
    consultation: Consultation,
    by: Participant | None,
    text: str,
    key: str,
    category: str | None = None,
    actor_label: str | None = None,
) -> int:
    """Write the message for everyone in the audience; returns how many were written.

    `key` identifies this broadcast: sending it again (a double tap) writes nothing new.
    """
    require_coordinator(by, consultation.id)
    written = await outbox.notify_many(
        session=session,
        participants=await audience(
            session=session, consultation_id=consultation.id, category=category, sender=by
        ),
        template=TEMPLATE,
        payload={"text": text, "category": category, "title": consultation.title},
        dedupe_prefix=f"broadcast:{consultation.id}:{key}",
    )
    await audit.record(
        session=session,
        consultation_id=consultation.id,
        action="broadcast.sent",
        **actor_of(by, actor_label),
        subject=category or "all",
        detail={"messages": written, "length": len(text), "key": key},
    )
    return written
