"""The results of a consultation in one plain-JSON document (`palabre results --json`).

Findings with their confirmation rates (overall and per actor category) and the contest
reasons; the ranking of the shortlisted actions (Schulze order, Borda scores), overall and per
category; participation metrics; the evaluation questionnaires; the plan after the vote (the
local government's answer to each action, its progress and the members' view of it). No part of
it names anyone. The
document's shape is described in `docs/results-json.md`; `FORMAT` changes when it does.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock, followup, metrics, questionnaires
from consultation.actions import ranking_results
from consultation.common import get_consultation
from consultation.findings import finding_results
from consultation.phases import phases_of

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
    }
