"""What a meeting or a workshop said, recorded anonymously so it counts with everything else.

A meeting has a date, a place and how many people of each actor category attended. What was
gathered there on paper enters the same pipeline as any contribution: observations are ordinary
observations tagged with their meeting (no author), while stances and ballots, which belong to
a person everywhere else, are kept here with only the category they came from.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import json_field, utc_field


class Meeting(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("consultation_id", "held_on", "place"),)

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    held_on: date
    place: str = Field(max_length=200)
    # {"association": 12, "elected": 3, ...}: people present, by actor category.
    attendance: dict = json_field(dict)
    created_at: datetime = utc_field(nullable=False)


class MeetingStance(SQLModel, table=True):
    """A confirm / contest / abstain given on paper at a meeting, with its category only."""

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True, ondelete="CASCADE")
    finding_version_id: int = Field(foreign_key="findingversion.id", index=True, ondelete="CASCADE")
    category: str = Field(max_length=80)
    choice: str = Field(max_length=20)
    reason: str | None = None


class MeetingBallot(SQLModel, table=True):
    """A ranking of the shortlist filled in on paper at a meeting (action ids, best first)."""

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meeting.id", index=True, ondelete="CASCADE")
    category: str = Field(max_length=80)
    ranking: list = json_field(list)
