"""A consultation and its timetable of phases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import PhaseStatus
from models.types import json_field, utc_field


class ConsultationBase(SQLModel):
    slug: str = Field(max_length=80, unique=True, index=True)
    title: str = Field(max_length=300)
    question: str = Field(max_length=2000)
    # Lists of sentences: what the consultation is about, and what it is not about.
    scope_in: list = json_field(list)
    scope_out: list = json_field(list)
    # [{"key": "coop", "label": {"fr": "...", "en": "..."}}, ...]
    categories: list = json_field(list)
    default_locale: str = Field(default="fr", max_length=8)
    timezone: str = Field(default="Europe/Paris", max_length=64)
    # Limits and timings: observation_max_length, daily_cap, ballot_k, quiet hours, reminders...
    rules: dict = json_field(dict)


class Consultation(ConsultationBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = utc_field(nullable=False)
    updated_at: datetime = utc_field(nullable=False)


class PhaseBase(SQLModel):
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    position: int
    kind: str = Field(max_length=20)
    opens_at: datetime = utc_field(nullable=False)
    closes_at: datetime = utc_field(nullable=False)
    min_duration_s: int = Field(ge=0)
    max_duration_s: int = Field(ge=0)
    status: str = Field(default=PhaseStatus.SCHEDULED, max_length=20)


class Phase(PhaseBase, table=True):
    __table_args__ = (UniqueConstraint("consultation_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    opened_at: datetime | None = utc_field()
    closed_at: datetime | None = utc_field()
