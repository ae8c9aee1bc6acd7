"""Evaluation questionnaires: one after each key step and a final one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.enums import QuestionnaireStatus
from models.types import json_field, utc_field


class Questionnaire(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("consultation_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    consultation_id: int = Field(foreign_key="consultation.id", index=True, ondelete="CASCADE")
    key: str = Field(max_length=80)
    # {"fr": "...", "en": "..."}
    title: dict = json_field(dict)
    # The phase kind whose close sends it ("observe", ...); None with is_final.
    after_phase: str | None = Field(default=None, max_length=20)
    is_final: bool = Field(default=False)
    open_days: int = Field(default=7)
    status: str = Field(default=QuestionnaireStatus.SCHEDULED, max_length=20)
    opened_at: datetime | None = utc_field()
    closes_at: datetime | None = utc_field()
    closed_at: datetime | None = utc_field()


class Question(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("questionnaire_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    questionnaire_id: int = Field(foreign_key="questionnaire.id", index=True, ondelete="CASCADE")
    position: int
    kind: str = Field(max_length=20)
    prompt: dict = json_field(dict)
    # For "choice": [{"fr": "...", "en": "..."}, ...]
    choices: list = json_field(list)


class Answer(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("question_id", "participant_id"),)

    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="question.id", index=True, ondelete="CASCADE")
    participant_id: int = Field(foreign_key="participant.id", index=True)
    value_int: int | None = None
    value_text: str | None = None
    channel: str = Field(max_length=20)
    created_at: datetime = utc_field(nullable=False)
    updated_at: datetime = utc_field(nullable=False)
