"""Participation metrics: who takes part, by actor category, so that no group dominates unseen."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import (
    Answer,
    Ballot,
    Consultation,
    Finding,
    FindingVersion,
    Observation,
    Participant,
    Question,
    Questionnaire,
    Stance,
)


async def contributors(*, session: AsyncSession, consultation_id: int) -> dict[int, int]:
    """participant id → number of contributions (observations, stances, ballots, answers)."""
    counts: Counter[int] = Counter()
    queries = [
        select(Observation.author_id, func.count())
        .where(Observation.consultation_id == consultation_id)
        .where(Observation.author_id.is_not(None))  # type: ignore[union-attr]
        .group_by(Observation.author_id),
        select(Stance.participant_id, func.count())
        .join(FindingVersion, FindingVersion.id == Stance.finding_version_id)
        .join(Finding, Finding.id == FindingVersion.finding_id)
        .where(Finding.consultation_id == consultation_id)
        .group_by(Stance.participant_id),
        select(Ballot.participant_id, func.count())
        .where(Ballot.consultation_id == consultation_id)
        .group_by(Ballot.participant_id),
        select(Answer.participant_id, func.count(func.distinct(Question.questionnaire_id)))
        .join(Question, Question.id == Answer.question_id)
        .join(Questionnaire, Questionnaire.id == Question.questionnaire_id)
        .where(Questionnaire.consultation_id == consultation_id)
        .group_by(Answer.participant_id),
    ]
    for query in queries:
        for participant_id, count in (await session.execute(query)).all():
            counts[participant_id] += count
    return dict(counts)


async def participation_by_category(
    *, session: AsyncSession, consultation: Consultation
) -> dict[str, dict[str, Any]]:
    """For each category: invited, reachable on Telegram, by email only, consented, contributed."""
    participants = (
        await session.exec(
            select(Participant).where(Participant.consultation_id == consultation.id)
        )
    ).all()
    active = await contributors(session=session, consultation_id=consultation.id)
    table: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"invited": 0, "telegram": 0, "email_only": 0, "consented": 0, "contributed": 0}
    )
    for category in consultation.categories:
        table[category["key"]]  # every category shows, even with nobody in it
    for participant in participants:
        if participant.erased_at is not None:
            row = table[participant.category]
            row["invited"] += 1
            row["contributed"] += 1 if participant.id in active else 0
            continue
        row = table[participant.category]
        row["invited"] += 1
        if participant.telegram_chat_id is not None and participant.telegram_active:
            row["telegram"] += 1
        elif participant.email:
            row["email_only"] += 1
        if participant.consent_at is not None:
            row["consented"] += 1
        if participant.id in active:
            row["contributed"] += 1
    return dict(table)
