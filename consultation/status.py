"""What awaits one participant now: the bot's /status, the digests and the reminders ask here.

`awaiting()` looks only at what this person can still do in the open phase (and in any open
questionnaire): the findings whose current wording they have not answered, a ballot not cast,
questions not answered, and whether observations or proposals are welcome. Coordinators run the
process rather than answer it: nothing awaits them but the phase itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock, questionnaires
from consultation.actions import ballot_of
from consultation.common import get_consultation, local_day_start, rules
from consultation.findings import findings_for
from consultation.phases import current_phase
from models import Action, ActionStatus, Observation, Participant, PhaseKind, Role


@dataclass(frozen=True)
class PhaseInfo:
    kind: str
    closes_at: datetime


@dataclass
class Awaiting:
    """What one person may still do now."""

    phase: PhaseInfo | None
    timezone: str
    # Codes of the published findings whose current version awaits their answer, in their order.
    findings: list[str] = field(default_factory=list)
    ballot_needed: bool = False
    # Keys of the open questionnaires with questions they have not answered.
    questionnaires: list[str] = field(default_factory=list)
    observations_welcome: bool = False
    proposals_welcome: bool = False
    # What they gave in the open phase so far (observations, or proposals), and what is left today.
    contributed_in_phase: int = 0
    remaining_today: int | None = None

    @property
    def is_empty(self) -> bool:
        """Nothing to answer and nothing to contribute: no reason to write to this person."""
        return not (
            self.findings
            or self.ballot_needed
            or self.questionnaires
            or self.observations_welcome
            or self.proposals_welcome
        )

    def summary(self) -> dict[str, Any]:
        """Plain JSON for templates and reminders."""
        return {
            "phase": (
                {"kind": self.phase.kind, "closes_at": self.phase.closes_at.isoformat()}
                if self.phase
                else None
            ),
            "timezone": self.timezone,
            "findings": list(self.findings),
            "findings_count": len(self.findings),
            "ballot_needed": self.ballot_needed,
            "questionnaires": list(self.questionnaires),
            "observations_welcome": self.observations_welcome,
            "proposals_welcome": self.proposals_welcome,
            "contributed_in_phase": self.contributed_in_phase,
            "remaining_today": self.remaining_today,
            "is_empty": self.is_empty,
        }


async def awaiting(*, session: AsyncSession, participant: Participant) -> Awaiting:
    """What awaits `participant` now (see the module docstring)."""
    consultation = await get_consultation(
        session=session, consultation_id=participant.consultation_id
    )
    phase = await current_phase(session=session, consultation_id=participant.consultation_id)
    current = clock.now()
    live = phase is not None and current < phase.closes_at
    result = Awaiting(
        phase=PhaseInfo(kind=phase.kind, closes_at=phase.closes_at) if phase else None,
        timezone=consultation.timezone,
    )
    if participant.erased_at is not None or participant.role == Role.COORDINATOR:
        return result
    result.questionnaires = [
        q.key for q in await questionnaires.open_for(session=session, participant=participant)
    ]
    if not live:
        return result
    assert phase is not None
    cap = rules(consultation).daily_cap
    if phase.kind == PhaseKind.REVIEW:
        result.findings = [
            view.code
            for view in await findings_for(
                session=session, participant=participant, awaiting_only=True
            )
        ]
    elif phase.kind == PhaseKind.RANK:
        result.ballot_needed = await ballot_of(session=session, participant=participant) is None
        # Nothing to rank without a shortlist.
        if result.ballot_needed:
            result.ballot_needed = await _has_shortlist(session, participant.consultation_id)
    elif phase.kind in (PhaseKind.OBSERVE, PhaseKind.PROPOSE):
        model: Any = Observation if phase.kind == PhaseKind.OBSERVE else Action
        author = Observation.author_id if model is Observation else Action.proposer_id
        start = phase.opened_at or phase.opens_at
        in_phase = (
            await session.execute(
                select(func.count())
                .select_from(model)
                .where(author == participant.id)
                .where(model.created_at >= start)
            )
        ).scalar_one()
        today = (
            await session.execute(
                select(func.count())
                .select_from(model)
                .where(author == participant.id)
                .where(model.created_at >= local_day_start(consultation, current))
            )
        ).scalar_one()
        result.contributed_in_phase = in_phase
        result.remaining_today = max(cap - today, 0)
        welcome = result.remaining_today > 0
        if phase.kind == PhaseKind.OBSERVE:
            result.observations_welcome = welcome
        else:
            result.proposals_welcome = welcome
    return result


async def _has_shortlist(session: AsyncSession, consultation_id: int) -> bool:
    found = (
        await session.exec(
            select(Action.id)
            .where(Action.consultation_id == consultation_id)
            .where(Action.status == ActionStatus.SHORTLISTED)
            .limit(1)
        )
    ).first()
    return found is not None
