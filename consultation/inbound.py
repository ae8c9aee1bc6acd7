"""The record of every message Palabre received, kept so that a redelivery is a no-op.

Each channel records what arrives by its external id (Telegram's `update_id`, an email's
`Message-ID`) before acting on it: `record` writes the row unless it is already there (then the
message was seen before and must not act twice), and `finish` or `mark` write how it ended
("processed", "failed", or a channel's own outcome: "flood", "bounce", "rejected"...).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock
from models import InboundRecord
from models.db import insert_for

RECEIVED = "received"
PROCESSED = "processed"
FAILED = "failed"


async def record(
    *,
    session: AsyncSession,
    channel: str,
    external_id: str,
    status: str = RECEIVED,
    participant_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> InboundRecord | None:
    """Record a message that just arrived; None when it was recorded before (a redelivery).

    Two workers given the same message at once write one row: the other gets None.
    """
    statement = (
        insert_for(session)(InboundRecord)
        .values(
            channel=str(channel),
            external_id=external_id,
            participant_id=participant_id,
            status=status,
            detail=detail or {},
            received_at=clock.now(),
        )
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
    )
    if not (await session.execute(statement)).rowcount:
        return None
    return await find(session=session, channel=channel, external_id=external_id)


async def find(*, session: AsyncSession, channel: str, external_id: str) -> InboundRecord | None:
    return (
        await session.exec(
            select(InboundRecord)
            .where(InboundRecord.channel == str(channel))
            .where(InboundRecord.external_id == external_id)
        )
    ).first()


def finish(
    record: InboundRecord, status: str, *, participant_id: int | None, **detail: Any
) -> None:
    """Write how the message ended, whom it turned out to be from, and details (None ones left
    out); the caller's session saves it."""
    record.status = status
    record.participant_id = participant_id
    record.detail = {
        **(record.detail or {}),
        **{key: value for key, value in detail.items() if value is not None},
    }
    record.processed_at = clock.now()


async def mark(
    *, session: AsyncSession, channel: str, external_id: str, status: str, **detail: Any
) -> None:
    """Write the outcome of a message recorded in an earlier transaction.

    A message whose outcome is already known (it failed, it was held back) stays so when it is
    then marked processed.
    """
    found = await find(session=session, channel=channel, external_id=external_id)
    if found is None or (status == PROCESSED and found.status != RECEIVED):
        return
    finish(found, status, participant_id=found.participant_id, **detail)
    session.add(found)
