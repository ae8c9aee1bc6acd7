"""Reminders before a deadline, only to those who have not answered yet, saying what is missing.

A phase reminder goes to each participant who still owes the open phase its answer: findings
not yet confirmed or contested (review), a ballot not cast (rank), no observation yet (observe),
no proposal yet (propose). It says exactly what is missing ("2 findings and your ranking"), and
mentions an open questionnaire they have not finished. Nobody who has answered everything is
reminded, and coordinators, who run the process, are not reminded to answer it.

The final questionnaire has one reminder of its own, to those who have not finished it.

What is missing is what `status.awaiting` says awaits each person, computed for everyone at
once (a few queries per phase rather than a dozen per person: a reminder to 2,000 people takes
well under a second); a test holds the two to the same answers. Callers may pass
`participant_ids` to work in batches, each in its own short transaction.

Each message has a dedupe key per person, per phase (or questionnaire), per offset and deadline:
running a reminder twice, or on two instances, writes it once. Transport-agnostic: the message
is the outbox template "reminder".
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock, outbox, questionnaires
from consultation.common import code_key, get_consultation, people_to_tell
from consultation.errors import NotFound
from consultation.preferences import has_consented
from models import (
    Action,
    ActionStatus,
    Answer,
    Ballot,
    Finding,
    FindingStatus,
    FindingVersion,
    Observation,
    Participant,
    Phase,
    PhaseKind,
    PhaseStatus,
    Question,
    Questionnaire,
    QuestionnaireStatus,
    Stance,
)

logger = logging.getLogger(__name__)

TEMPLATE = "reminder"


@dataclass
class Missing:
    """What one person still owes: the open phase's answers, and unfinished questionnaires."""

    findings: list[str] = field(default_factory=list)
    ballot: bool = False
    observation: bool = False
    proposal: bool = False
    questionnaires: list[dict[str, Any]] = field(default_factory=list)

    @property
    def phase_answer_missing(self) -> bool:
        return bool(self.findings or self.ballot or self.observation or self.proposal)

    def as_payload(self) -> dict[str, Any]:
        return {
            "findings": list(self.findings),
            "ballot": self.ballot,
            "observation": self.observation,
            "proposal": self.proposal,
            "questionnaires": list(self.questionnaires),
        }


async def audience(
    *,
    session: AsyncSession,
    consultation_id: int,
    participant_ids: Collection[int] | None = None,
) -> list[Participant]:
    """Who may be reminded: reachable participants (not coordinators) who have consented.

    Someone who never consented cannot contribute yet; their invitation, not a reminder, is
    what they need.
    """
    people = await people_to_tell(
        session=session, consultation_id=consultation_id, coordinators=False
    )
    wanted = set(participant_ids) if participant_ids is not None else None
    return [
        person
        for person in people
        if (wanted is None or person.id in wanted)
        and has_consented(person)
        and outbox.channel_for(person)
    ]


async def audience_ids(*, session: AsyncSession, consultation_id: int) -> list[int]:
    """The ids of `audience`, in a stable order: what callers split into batches."""
    people = await audience(session=session, consultation_id=consultation_id)
    return [person.id for person in people if person.id is not None]


# --- what everyone still owes, in bulk (the same answers as `status.awaiting`) -------------


async def _contributed_in(session: AsyncSession, phase: Phase) -> set[int]:
    """Who has already given the observe or propose phase something."""
    start = phase.opened_at or phase.opens_at
    if phase.kind == PhaseKind.OBSERVE:
        query = select(Observation.author_id).where(
            Observation.consultation_id == phase.consultation_id,
            Observation.created_at >= start,
        )
    elif phase.kind == PhaseKind.PROPOSE:
        query = select(Action.proposer_id).where(
            Action.consultation_id == phase.consultation_id, Action.created_at >= start
        )
    else:
        return set()
    return {row for row in (await session.exec(query.distinct())).all() if row is not None}


async def _unanswered_findings(
    session: AsyncSession, consultation_id: int, people: Collection[int]
) -> dict[int, list[str]]:
    """participant → codes of the published findings whose current version they have not
    answered (as `findings.findings_for(awaiting_only=True)`)."""
    current = (
        await session.exec(
            select(FindingVersion.id, Finding.code)
            .join(Finding, Finding.id == FindingVersion.finding_id)
            .where(Finding.consultation_id == consultation_id)
            .where(Finding.status == FindingStatus.PUBLISHED)
            .where(FindingVersion.version == Finding.current_version)
        )
    ).all()
    if not current:
        return {}
    code_of = dict(current)
    answered: dict[int, set[str]] = defaultdict(set)
    rows = await session.exec(
        select(Stance.participant_id, Stance.finding_version_id).where(
            Stance.finding_version_id.in_(list(code_of))  # type: ignore[attr-defined]
        )
    )
    for participant_id, version_id in rows.all():
        answered[participant_id].add(code_of[version_id])
    codes = sorted(code_of.values(), key=code_key)
    return {
        person: [code for code in codes if code not in answered.get(person, set())]
        for person in people
    }


async def _without_ballot(
    session: AsyncSession, consultation_id: int, people: Collection[int]
) -> set[int]:
    """Who has no ballot yet, when there is a shortlist to rank (as `status.awaiting`)."""
    shortlisted = (
        await session.exec(
            select(Action.id)
            .where(Action.consultation_id == consultation_id)
            .where(Action.status == ActionStatus.SHORTLISTED)
            .limit(1)
        )
    ).first()
    if shortlisted is None:
        return set()
    voters = set(
        (
            await session.exec(
                select(Ballot.participant_id).where(Ballot.consultation_id == consultation_id)
            )
        ).all()
    )
    return {person for person in people if person not in voters}


def _entry(questionnaire: Questionnaire) -> dict[str, Any]:
    return {
        "key": questionnaire.key,
        "title": dict(questionnaire.title),
        "closes_at": questionnaire.closes_at.isoformat() if questionnaire.closes_at else None,
    }


async def _unfinished(
    session: AsyncSession, questionnaire: Questionnaire, people: Collection[int]
) -> set[int]:
    """Who among `people` the open questionnaire is for and still has a question for (as
    `questionnaires.open_for`: a skipped question counts as answered)."""
    meant_for = {
        person.id
        for person in await questionnaires.audience(session=session, questionnaire=questionnaire)
    }
    total = (
        await session.execute(
            select(func.count())
            .select_from(Question)
            .where(Question.questionnaire_id == questionnaire.id)
        )
    ).scalar_one()
    answered = dict(
        (
            await session.execute(
                select(Answer.participant_id, func.count(func.distinct(Question.position)))
                .join(Question, Question.id == Answer.question_id)
                .where(Question.questionnaire_id == questionnaire.id)
                .group_by(Answer.participant_id)
            )
        ).all()
    )
    return {person for person in people if person in meant_for and answered.get(person, 0) < total}


async def _open_questionnaires(session: AsyncSession, consultation_id: int) -> list[Questionnaire]:
    current = clock.now()
    found = (
        await session.exec(
            select(Questionnaire)
            .where(Questionnaire.consultation_id == consultation_id)
            .where(Questionnaire.status == QuestionnaireStatus.OPEN)
            .order_by(Questionnaire.opened_at, Questionnaire.id)  # type: ignore[arg-type]
        )
    ).all()
    return [q for q in found if q.closes_at is not None and current < q.closes_at]


async def phase_recipients(
    *, session: AsyncSession, phase: Phase, participant_ids: Collection[int] | None = None
) -> list[tuple[Participant, Missing]]:
    """Everyone (or everyone in `participant_ids`) who still owes the open `phase` an answer,
    with what exactly is missing."""
    if phase.status != PhaseStatus.OPEN or phase.kind in (PhaseKind.EVALUATE, PhaseKind.FOLLOW):
        return []
    if clock.now() >= phase.closes_at:
        return []
    people = await audience(
        session=session, consultation_id=phase.consultation_id, participant_ids=participant_ids
    )
    ids = [person.id for person in people if person.id is not None]
    contributed = await _contributed_in(session, phase)
    findings = (
        await _unanswered_findings(session, phase.consultation_id, ids)
        if phase.kind == PhaseKind.REVIEW
        else {}
    )
    no_ballot = (
        await _without_ballot(session, phase.consultation_id, ids)
        if phase.kind == PhaseKind.RANK
        else set()
    )
    unfinished = [
        (questionnaire, await _unfinished(session, questionnaire, ids))
        for questionnaire in await _open_questionnaires(session, phase.consultation_id)
    ]
    found: list[tuple[Participant, Missing]] = []
    for person in people:
        missing = Missing(
            findings=findings.get(person.id, []),
            ballot=person.id in no_ballot,
            observation=phase.kind == PhaseKind.OBSERVE and person.id not in contributed,
            proposal=phase.kind == PhaseKind.PROPOSE and person.id not in contributed,
            questionnaires=[_entry(q) for q, owing in unfinished if person.id in owing],
        )
        if missing.phase_answer_missing:
            found.append((person, missing))
    return found


async def remind_phase(
    *,
    session: AsyncSession,
    phase_id: int,
    offset_hours: int,
    deadline: datetime | None = None,
    participant_ids: Collection[int] | None = None,
) -> int:
    """Remind those who have not answered the open phase, `offset_hours` before `deadline`.

    Returns the number of messages written (never twice for one person, offset and deadline).
    """
    phase = await session.get(Phase, phase_id)
    if phase is None:
        raise NotFound("phase.unknown", kind=str(phase_id))
    deadline = clock.as_utc(deadline or phase.closes_at)
    if phase.status != PhaseStatus.OPEN or clock.now() >= deadline:
        return 0
    consultation = await get_consultation(session=session, consultation_id=phase.consultation_id)
    stamp = int(deadline.timestamp())
    written = 0
    for person, missing in await phase_recipients(
        session=session, phase=phase, participant_ids=participant_ids
    ):
        payload = {
            "phase_kind": phase.kind,
            "closes_at": deadline.isoformat(),
            "timezone": consultation.timezone,
            "hours": offset_hours,
            **missing.as_payload(),
        }
        written += await outbox.notify(
            session=session,
            participant=person,
            template=TEMPLATE,
            payload=payload,
            dedupe_key=f"reminder:{phase.id}:{offset_hours}:{stamp}:{person.id}",
            not_after=deadline,
        )
    logger.info(
        "phase %s (%s): %d reminders written %dh before its deadline",
        phase.id,
        phase.kind,
        written,
        offset_hours,
    )
    return written


async def questionnaire_recipients(
    *,
    session: AsyncSession,
    questionnaire: Questionnaire,
    participant_ids: Collection[int] | None = None,
) -> list[tuple[Participant, Missing]]:
    """Everyone the open questionnaire is meant for who has not finished it."""
    if questionnaire.status != QuestionnaireStatus.OPEN or questionnaire.closes_at is None:
        return []
    if clock.now() >= questionnaire.closes_at:
        return []
    people = await audience(
        session=session,
        consultation_id=questionnaire.consultation_id,
        participant_ids=participant_ids,
    )
    owing = await _unfinished(session, questionnaire, [person.id for person in people])
    entry = _entry(questionnaire)
    return [(person, Missing(questionnaires=[entry])) for person in people if person.id in owing]


async def remind_questionnaire(
    *,
    session: AsyncSession,
    questionnaire_id: int,
    participant_ids: Collection[int] | None = None,
) -> int:
    """The one reminder of a questionnaire, to those who have not finished it."""
    questionnaire = await session.get(Questionnaire, questionnaire_id)
    if questionnaire is None:
        raise NotFound("questionnaire.unknown", key=str(questionnaire_id))
    consultation = await get_consultation(
        session=session, consultation_id=questionnaire.consultation_id
    )
    written = 0
    for person, missing in await questionnaire_recipients(
        session=session, questionnaire=questionnaire, participant_ids=participant_ids
    ):
        assert questionnaire.closes_at is not None
        payload = {
            "phase_kind": None,
            "closes_at": questionnaire.closes_at.isoformat(),
            "timezone": consultation.timezone,
            "hours": None,
            **missing.as_payload(),
        }
        written += await outbox.notify(
            session=session,
            participant=person,
            template=TEMPLATE,
            payload=payload,
            dedupe_key=f"questionnaire_reminder:{questionnaire.id}:{person.id}",
            not_after=questionnaire.closes_at,
        )
    logger.info("questionnaire %s: %d reminders written", questionnaire.key, written)
    return written
