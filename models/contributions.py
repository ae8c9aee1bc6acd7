"""What participants contribute: observations, stances on findings, actions and ballots."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import ActionStatus, Channel, FindingStatus, ScopeStatus
from models.types import json_field, utc_field


class ObservationBase(SQLModel):
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    phase_id: int | None = Field(default=None, foreign_key="phase.id", ondelete="SET NULL")
    author_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    text: str
    theme: str | None = Field(default=None, max_length=120)
    channel: str = Field(default=Channel.TELEGRAM, max_length=20)


class Observation(ObservationBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    scope_status: str = Field(default=ScopeStatus.PENDING, max_length=20, index=True)
    scope_reason: str | None = None
    decided_by_id: int | None = Field(default=None, foreign_key="participant.id")
    decided_at: datetime | None = utc_field()
    duplicate_of_id: int | None = Field(default=None, foreign_key="observation.id")
    # Said at a meeting (then it has no author): see models/meetings.py.
    meeting_id: int | None = Field(
        default=None, foreign_key="meeting.id", index=True, ondelete="SET NULL"
    )
    created_at: datetime = utc_field(nullable=False, index=True)


class Finding(SQLModel, table=True):
    """A draft finding; its wording lives in versions, and a new version asks everyone again."""

    __table_args__ = (UniqueConstraint("consultation_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    code: str = Field(max_length=12)
    status: str = Field(default=FindingStatus.DRAFT, max_length=20)
    current_version: int = Field(default=1)
    created_by_id: int | None = Field(default=None, foreign_key="participant.id")
    created_at: datetime = utc_field(nullable=False)
    published_at: datetime | None = utc_field()


class FindingVersion(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("finding_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    finding_id: int = Field(foreign_key="finding.id", index=True, ondelete="CASCADE")
    version: int
    text: str
    created_at: datetime = utc_field(nullable=False)
    published_at: datetime | None = utc_field()


class FindingObservation(SQLModel, table=True):
    """The observations a finding draws on."""

    finding_id: int = Field(foreign_key="finding.id", primary_key=True, ondelete="CASCADE")
    observation_id: int = Field(foreign_key="observation.id", primary_key=True, ondelete="CASCADE")


class Stance(SQLModel, table=True):
    """One participant's answer to one version of a finding; changing it updates the row."""

    __table_args__ = (UniqueConstraint("participant_id", "finding_version_id"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    finding_version_id: int = Field(foreign_key="findingversion.id", index=True, ondelete="CASCADE")
    choice: str = Field(max_length=20)
    reason: str | None = None
    channel: str = Field(max_length=20)
    created_at: datetime = utc_field(nullable=False)
    updated_at: datetime = utc_field(nullable=False)


class Action(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("consultation_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    code: str = Field(max_length=12)
    text: str
    proposer_id: int | None = Field(default=None, foreign_key="participant.id", index=True)
    status: str = Field(default=ActionStatus.PROPOSED, max_length=20)
    merged_into_id: int | None = Field(default=None, foreign_key="action.id")
    channel: str = Field(default=Channel.TELEGRAM, max_length=20)
    created_at: datetime = utc_field(nullable=False)


class ActionFinding(SQLModel, table=True):
    """The findings an action answers."""

    action_id: int = Field(foreign_key="action.id", primary_key=True, ondelete="CASCADE")
    finding_id: int = Field(foreign_key="finding.id", primary_key=True, ondelete="CASCADE")


class Ballot(SQLModel, table=True):
    """A participant's ordered list of shortlisted action ids, possibly partial (top k)."""

    __table_args__ = (UniqueConstraint("consultation_id", "participant_id"),)

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    participant_id: int = Field(foreign_key="participant.id", index=True)
    ranking: list = json_field(list)
    channel: str = Field(max_length=20)
    created_at: datetime = utc_field(nullable=False)
    updated_at: datetime = utc_field(nullable=False)
