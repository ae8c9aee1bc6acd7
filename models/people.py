"""Participants, their invitations, and where each one is in a short dialogue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import Cadence, Channel, EmailStatus, Role
from models.types import json_field, utc_field


class ParticipantBase(SQLModel):
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    name: str | None = Field(default=None, max_length=200)
    organisation: str | None = Field(default=None, max_length=200)
    category: str = Field(max_length=80)
    role: str = Field(default=Role.PARTICIPANT, max_length=20)
    email: str | None = Field(default=None, max_length=320)
    preferred_channel: str = Field(default=Channel.TELEGRAM, max_length=20)
    locale: str = Field(default="fr", max_length=8)
    digest_cadence: str = Field(default=Cadence.WEEKLY, max_length=10)


class Participant(ParticipantBase, table=True):
    __table_args__ = (
        UniqueConstraint("consultation_id", "email"),
        UniqueConstraint("consultation_id", "telegram_chat_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    telegram_chat_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    telegram_active: bool = Field(default=False)
    email_status: str = Field(default=EmailStatus.OK, max_length=20)
    bounce_count: int = Field(default=0)
    # Random key in the signed reply address (`reply+<key>.<sig>@...`); never the database id.
    reply_key: str = Field(max_length=40, unique=True, index=True)
    consent_at: datetime | None = utc_field()
    consent_declined_at: datetime | None = utc_field()
    opted_out_at: datetime | None = utc_field()
    erased_at: datetime | None = utc_field()
    last_digest_at: datetime | None = utc_field()
    created_at: datetime = utc_field(nullable=False)
    updated_at: datetime = utc_field(nullable=False)

    @property
    def is_coordinator(self) -> bool:
        return self.role == Role.COORDINATOR

    @property
    def reachable(self) -> bool:
        """Whether Palabre may write to this person at all."""
        return self.erased_at is None and self.opted_out_at is None


class Invitation(SQLModel, table=True):
    """A single-use personal invitation; only the token's SHA-256 is stored."""

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = utc_field(nullable=False)
    expires_at: datetime = utc_field(nullable=False)
    used_at: datetime | None = utc_field()
    # A newer link was issued: this one no longer opens anything.
    revoked_at: datetime | None = utc_field()


class ForgottenAddress(SQLModel, table=True):
    """A keyed hash (HMAC with the secret key) of an address whose owner asked to be forgotten.

    The address itself is erased; the hash alone lets an import recognise it and refuse to
    create the person again, and cannot be turned back into the address without the key.
    """

    __table_args__ = (UniqueConstraint("consultation_id", "digest"),)

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    digest: str = Field(max_length=64)
    created_at: datetime = utc_field(nullable=False)


class DialogueState(SQLModel, table=True):
    """Where a person is in a short dialogue (a contest reason awaited, a ballot being built).

    Kept in the database rather than in memory so that a restart or a second worker picks the
    dialogue up where it was, and a half-typed contribution is never lost.
    """

    __table_args__ = (UniqueConstraint("participant_id", "channel"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True, ondelete="CASCADE")
    channel: str = Field(max_length=20)
    kind: str = Field(max_length=40)
    data: dict = json_field(dict)
    updated_at: datetime = utc_field(nullable=False)
