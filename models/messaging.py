"""The outbox (every message Palabre will send) and the record of every message it received."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import OutboxStatus
from models.types import json_field, utc_field


class OutboxMessage(SQLModel, table=True):
    """A message to send, written in the same transaction as the change that causes it.

    `template` and `payload` (plain JSON) are rendered at send time in the recipient's locale;
    `dedupe_key` is unique, so repeating the operation that enqueued it writes nothing new.
    """

    __table_args__ = (Index("ix_outbox_due", "channel", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int | None = Field(
        default=None, foreign_key="consultation.id", index=True, ondelete="CASCADE"
    )
    channel: str = Field(max_length=20)
    participant_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    # An explicit address for messages to someone who is not (yet) a participant.
    address: str | None = Field(default=None, max_length=320)
    template: str = Field(max_length=120)
    payload: dict = json_field(dict)
    dedupe_key: str = Field(max_length=255, unique=True)
    # Sent even in quiet hours: the person asked for it a moment ago.
    interactive: bool = Field(default=False)
    status: str = Field(default=OutboxStatus.PENDING, max_length=20)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = utc_field(nullable=False)
    # Past this moment the message is stale (a reminder of a phase that has closed): it is
    # dropped at send time, never sent late.
    not_after: datetime | None = utc_field()
    claimed_until: datetime | None = utc_field()
    last_error: str | None = None
    external_id: str | None = Field(default=None, max_length=255, index=True)
    created_at: datetime = utc_field(nullable=False)
    sent_at: datetime | None = utc_field()


class InboundRecord(SQLModel, table=True):
    """An update or email seen, by its external id, recorded before it is acted on."""

    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    external_id: str = Field(max_length=255)
    participant_id: int | None = Field(default=None, foreign_key="participant.id")
    status: str = Field(default="received", max_length=20)
    detail: dict = json_field(dict)
    received_at: datetime = utc_field(nullable=False)
    processed_at: datetime | None = utc_field()


class AuditEvent(SQLModel, table=True):
    """Who did what and when: every coordinator decision, every forced override."""

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int | None = Field(
        default=None, foreign_key="consultation.id", index=True, ondelete="CASCADE"
    )
    actor_id: int | None = Field(default=None, foreign_key="participant.id")
    actor_label: str | None = Field(default=None, max_length=120)
    action: str = Field(max_length=80)
    subject: str | None = Field(default=None, max_length=120)
    reason: str | None = None
    detail: dict = json_field(dict)
    at: datetime = utc_field(nullable=False, index=True)


class JobRun(SQLModel, table=True):
    """A scheduled job that has run (by its deterministic key): a restart does not repeat it."""

    __table_args__ = (UniqueConstraint("job_key"),)

    id: int | None = Field(default=None, primary_key=True)
    job_key: str = Field(max_length=255)
    ran_at: datetime = utc_field(nullable=False)
    detail: dict = json_field(dict)


__all__ = ["AuditEvent", "InboundRecord", "JobRun", "OutboxMessage"]
