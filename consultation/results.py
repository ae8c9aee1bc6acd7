"""The results of a consultation in one plain-JSON document (`palabre results --json`).

Findings with their confirmation rates (overall and per actor category) and the contest
reasons; the ranking of the shortlisted actions (Schulze order, Borda scores), overall and per
category; participation metrics; the evaluation questionnaires; what became of the observations
and proposals; the meetings whose contributions count; the plan after the vote (the local
government's answer to each action, its progress and the members' view of it). No part of it
names anyone. The
document's shape is described in `docs/results-json.md`; `FORMAT` changes when it does.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock, followup, metrics, questionnaires
from consultation.actions import ranking_results
from consultation.common import get_consultation
from consultation.findings import finding_results
from consultation.meetings import meetings_of
from consultation.phases import phases_of
from models import (
    Action,
    ActionStatus,
    Finding,
    FindingObservation,
    FindingStatus,
    MeetingBallot,
    MeetingStance,
    Observation,
    ScopeStatus,
)

FORMAT = 1


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def results(*, session: AsyncSession, consultation_id: int) -> dict[str, Any]:
    """Everything a coordinator publishes at the end (or looks at along the way)."""
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    phases = await phases_of(session=session, consultation_id=consultation_id)
    return {
        "format": FORMAT,
        "generated_at": clock.now().isoformat(),
        "consultation": {
            "slug": consultation.slug,
            "title": consultation.title,
            "question": consultation.question,
            "timezone": consultation.timezone,
            "categories": [
                {"key": category["key"], "label": dict(category["label"])}
                for category in consultation.categories
            ],
        },
        "phases": [
            {
                "position": phase.position,
                "kind": phase.kind,
                "status": phase.status,
                "opens_at": _iso(phase.opens_at),
                "closes_at": _iso(phase.closes_at),
                "opened_at": _iso(phase.opened_at),
                "closed_at": _iso(phase.closed_at),
            }
            for phase in phases
        ],
        "findings": await finding_results(session=session, consultation_id=consultation_id),
        "ranking": await ranking_results(session=session, consultation_id=consultation_id),
        "participation": await metrics.participation_report(
            session=session, consultation=consultation
        ),
        "questionnaires": await questionnaires.questionnaire_results(
            session=session, consultation_id=consultation_id
        ),
        "plan": await followup.plan_section(session=session, consultation_id=consultation_id),
        "observations": await _observations(session, consultation_id),
        "proposals": await _proposals(session, consultation_id),
        "meetings": await _meetings(session, consultation_id),
    }


async def _observations(session: AsyncSession, consultation_id: int) -> dict[str, Any]:
    """What became of the observations: how many in each state, which ones findings cite."""
    rows = (
        await session.exec(
            select(Observation).where(Observation.consultation_id == consultation_id)
        )
    ).all()
    cited = set(
        (
            await session.exec(
                select(FindingObservation.observation_id)
                .join(Finding, Finding.id == FindingObservation.finding_id)
                .where(Finding.consultation_id == consultation_id)
                .where(Finding.status == FindingStatus.PUBLISHED)
            )
        ).all()
    )
    states = Counter(row.scope_status for row in rows)
    return {
        "received": len(rows),
        "from_meetings": sum(1 for row in rows if row.meeting_id is not None),
        "pending": states[ScopeStatus.PENDING],
        "in_scope": states[ScopeStatus.IN_SCOPE],
        "out_of_scope": states[ScopeStatus.OUT_OF_SCOPE],
        "merged": states[ScopeStatus.MERGED],
        "cited": sum(1 for row in rows if row.id in cited),
        # Reasons are the coordinators' words, not a participant's: shown as given, sorted.
        "out_of_scope_reasons": sorted(
            (row.scope_reason or "").strip()
            for row in rows
            if row.scope_status == ScopeStatus.OUT_OF_SCOPE
        ),
    }


async def _proposals(session: AsyncSession, consultation_id: int) -> dict[str, Any]:
    states = Counter(
        (
            await session.exec(
                select(Action.status).where(Action.consultation_id == consultation_id)
            )
        ).all()
    )
    return {
        "received": sum(states.values()),
        "merged": states[ActionStatus.MERGED],
        "shortlisted": states[ActionStatus.SHORTLISTED],
    }


_MEETING_PARTS = (
    ("observations", Observation),
    ("stances", MeetingStance),
    ("ballots", MeetingBallot),
)


async def _meetings(session: AsyncSession, consultation_id: int) -> list[dict[str, Any]]:
    """Each meeting whose contributions count: when, where, who came, what it gave."""
    found = []
    for meeting in await meetings_of(session=session, consultation_id=consultation_id):
        found.append(
            {
                "held_on": meeting.held_on.isoformat(),
                "place": meeting.place,
                "attendance": dict(meeting.attendance),
                "attended": sum(meeting.attendance.values()),
                **{
                    name: (
                        await session.execute(
                            select(func.count())
                            .select_from(model)
                            .where(model.meeting_id == meeting.id)  # type: ignore[attr-defined]
                        )
                    ).scalar_one()
                    for name, model in _MEETING_PARTS
                },
            }
        )
    return found
