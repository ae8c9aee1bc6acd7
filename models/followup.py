"""After the vote: the official answer to every action, its progress, and the members' view of it.

A decision is one row per action, changed in place; every change also leaves a `PlanEvent`
(what the follow-up digest tells, dated) besides the audit trail. A follow-up questionnaire is a
round: members say, per action they touched, whether it progresses as announced.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import Channel, Progress
from models.types import utc_field


class ActionDecision(SQLModel, table=True):
    """The local government's answer to one action, and, when retained, how it is carried out."""

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    action_id: int = Field(foreign_key="action.id", unique=True, ondelete="CASCADE")
    decision: str = Field(max_length=30)
    # The wording as retained, for "retained with changes".
    wording: str | None = None
    reason: str | None = None
    lead: str | None = Field(default=None, max_length=300)
    due_on: date | None = None
    status: str = Field(default=Progress.PLANNED, max_length=20)
    status_note: str | None = None
    status_at: datetime | None = utc_field()
    # The due date the coordinators were last reminded of, so an overdue action is told once.
    overdue_reminded_for: date | None = None
    decided_by_id: int | None = Field(default=None, foreign_key="participant.id")
    decided_at: datetime = utc_field(nullable=False)
    updated_at: datetime = utc_field(nullable=False)


class ActionMilestone(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("decision_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    decision_id: int = Field(foreign_key="actiondecision.id", index=True, ondelete="CASCADE")
    position: int
    text: str
    done_at: datetime | None = utc_field()


class PlanEvent(SQLModel, table=True):
    """One dated change of the plan: a decision, a progress update, a milestone ticked."""

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    action_id: int = Field(foreign_key="action.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=20)
    value: str = Field(max_length=30)
    note: str | None = None
    actor_id: int | None = Field(default=None, foreign_key="participant.id")
    actor_label: str | None = Field(default=None, max_length=120)
    at: datetime = utc_field(nullable=False, index=True)


class FollowUpRound(SQLModel, table=True):
    """One follow-up questionnaire: numbered from 1 in the follow phase; `final` at its end."""

    __table_args__ = (UniqueConstraint("consultation_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    number: int
    final: bool = Field(default=False)
    opened_at: datetime = utc_field(nullable=False)
    closes_at: datetime = utc_field(nullable=False)


class FollowUpAnswer(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("round_id", "participant_id", "action_id"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="followupround.id", index=True, ondelete="CASCADE")
    participant_id: int = Field(foreign_key="participant.id", index=True)
    action_id: int = Field(foreign_key="action.id", ondelete="CASCADE")
    value: str = Field(max_length=10)
    remark: str | None = None
    channel: str = Field(default=Channel.TELEGRAM, max_length=20)
    created_at: datetime = utc_field(nullable=False)
    updated_at: datetime = utc_field(nullable=False)
