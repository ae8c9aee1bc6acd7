"""Participation metrics: who takes part, by actor category, so that no group dominates unseen.

A *contribution* is one of: an observation submitted, a stance on one version of a finding, an
action proposed, a ballot cast, a questionnaire answered (one per questionnaire however many
questions were answered; a question skipped is not an answer). Each one is timestamped when it
was first made, and belongs to the phase whose actual window (`opened_at` ≤ t < `closed_at`, or
up to now while the phase is open) contains that time.

Everything here is counts: no metric names anyone. Forgotten participants keep their category
and their contributions, so the counts by category stay right after an erasure. The concentration
and representation figures concern participants only: coordinators run the process, and counting
them would make every category look better served than it is.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock
from models import (
    Action,
    Answer,
    Ballot,
    Consultation,
    Finding,
    FindingVersion,
    Observation,
    Participant,
    Phase,
    Question,
    Questionnaire,
    Role,
    Stance,
)

# The most active tenth of the contributors: how much of the material do they write?
TOP_SHARE = 0.10
# A category is under-represented when its share of contributors is below this fraction of its
# share of invited participants...
UNDER_REPRESENTED_RATIO = 0.75
# ...and it has at least this many invited participants (below that, one person more or less
# swings the ratio and the flag would be noise).
UNDER_REPRESENTED_MIN_INVITED = 5


@dataclass(frozen=True)
class Contribution:
    participant_id: int
    kind: str  # observation, stance, proposal, ballot, questionnaire
    at: datetime


def _answered() -> Any:
    # A skipped question is stored as an answer with no value; it is not a contribution.
    return or_(Answer.value_int.is_not(None), Answer.value_text.is_not(None))  # type: ignore[union-attr]


async def contributions(
    *, session: AsyncSession, consultation_id: int, participant_id: int | None = None
) -> list[Contribution]:
    """Every contribution made in the consultation (or by one participant), oldest first."""
    queries = [
        (
            "observation",
            select(Observation.author_id, Observation.created_at)
            .where(Observation.consultation_id == consultation_id)
            .where(Observation.author_id.is_not(None)),  # type: ignore[union-attr]
        ),
        (
            "stance",
            select(Stance.participant_id, Stance.created_at)
            .join(FindingVersion, FindingVersion.id == Stance.finding_version_id)
            .join(Finding, Finding.id == FindingVersion.finding_id)
            .where(Finding.consultation_id == consultation_id),
        ),
        (
            "proposal",
            select(Action.proposer_id, Action.created_at)
            .where(Action.consultation_id == consultation_id)
            .where(Action.proposer_id.is_not(None)),  # type: ignore[union-attr]
        ),
        (
            "ballot",
            select(Ballot.participant_id, Ballot.created_at).where(
                Ballot.consultation_id == consultation_id
            ),
        ),
        (
            "questionnaire",
            select(Answer.participant_id, func.min(Answer.created_at))
            .join(Question, Question.id == Answer.question_id)
            .join(Questionnaire, Questionnaire.id == Question.questionnaire_id)
            .where(Questionnaire.consultation_id == consultation_id)
            .where(_answered())
            .group_by(Answer.participant_id, Question.questionnaire_id),
        ),
    ]
    found: list[Contribution] = []
    for kind, query in queries:
        if participant_id is not None:
            query = query.where(query.selected_columns[0] == participant_id)
        for author, at in (await session.execute(query)).all():
            found.append(Contribution(participant_id=author, kind=kind, at=clock.as_utc(at)))
    found.sort(key=lambda item: (item.at, item.kind, item.participant_id))
    return found


async def contributors(*, session: AsyncSession, consultation_id: int) -> dict[int, int]:
    """participant id → number of contributions (see the module docstring for what counts)."""
    counts: Counter[int] = Counter(
        item.participant_id
        for item in await contributions(session=session, consultation_id=consultation_id)
    )
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
        if participant.is_coordinator:
            continue  # they run the consultation: counting them would inflate every rate
        row = table[participant.category]
        row["invited"] += 1
        if participant.id in active:
            row["contributed"] += 1
        if participant.erased_at is not None:
            continue
        if participant.telegram_chat_id is not None and participant.telegram_active:
            row["telegram"] += 1
        elif participant.email:
            row["email_only"] += 1
        if participant.consent_at is not None:
            row["consented"] += 1
    return dict(table)


Window = tuple[datetime, datetime | None]


def phase_window(phase: Phase) -> Window | None:
    """When `phase` actually ran: opened_at to closed_at (no end while it is open)."""
    if phase.opened_at is None:
        return None
    end = clock.as_utc(phase.closed_at) if phase.closed_at is not None else None
    return clock.as_utc(phase.opened_at), end


def _in_window(at: datetime, window: Window | None) -> bool:
    if window is None:
        return False
    start, end = window
    return start <= at and (end is None or at < end)


async def contributors_in_phase(
    *, session: AsyncSession, phase: Phase, participant_id: int | None = None
) -> set[int]:
    """The ids of everyone (or only `participant_id`) who contributed while `phase` was open."""
    window = phase_window(phase)
    if window is None:
        return set()
    return {
        item.participant_id
        for item in await contributions(
            session=session, consultation_id=phase.consultation_id, participant_id=participant_id
        )
        if _in_window(item.at, window)
    }


async def _people(session: AsyncSession, consultation_id: int) -> list[Participant]:
    return list(
        (
            await session.exec(
                select(Participant)
                .where(Participant.consultation_id == consultation_id)
                .where(Participant.role == Role.PARTICIPANT)
            )
        ).all()
    )


async def by_phase(*, session: AsyncSession, consultation: Consultation) -> list[dict[str, Any]]:
    """For each phase, in order: how many people contributed while it was open, by category."""
    phases = (
        await session.exec(
            select(Phase).where(Phase.consultation_id == consultation.id).order_by(Phase.position)
        )
    ).all()
    category_of = {person.id: person.category for person in await _people(session, consultation.id)}
    items = [
        item
        for item in await contributions(session=session, consultation_id=consultation.id)
        if item.participant_id in category_of
    ]
    keys = [category["key"] for category in consultation.categories]
    table = []
    for phase in phases:
        window = phase_window(phase)
        inside = [item for item in items if _in_window(item.at, window)]
        people = {item.participant_id for item in inside}
        per_category: dict[str, dict[str, int]] = {
            key: {"contributors": 0, "contributions": 0} for key in keys
        }
        for item in inside:
            row = per_category.setdefault(
                category_of[item.participant_id], {"contributors": 0, "contributions": 0}
            )
            row["contributions"] += 1
        for person in people:
            per_category[category_of[person]]["contributors"] += 1
        table.append(
            {
                "position": phase.position,
                "kind": phase.kind,
                "status": phase.status,
                "opened_at": phase.opened_at.isoformat() if phase.opened_at else None,
                "closed_at": phase.closed_at.isoformat() if phase.closed_at else None,
                "contributors": len(people),
                "contributions": len(inside),
                "by_category": per_category,
            }
        )
    return table


def concentration_of(counts: dict[int, int], share: float = TOP_SHARE) -> dict[str, Any]:
    """How much of the material the most active `share` of the contributors wrote.

    Contributors are the people with at least one contribution; the most active are the first
    ceil(share × contributors) of them by number of contributions. Who exactly is chosen among
    people tied at the boundary does not matter: tied people have the same count, so the sum is
    the same. `share_of_contributions` is their contributions over all contributions (None when
    nobody has contributed yet).
    """
    ordered = sorted((count for count in counts.values() if count > 0), reverse=True)
    total = sum(ordered)
    top = math.ceil(share * len(ordered)) if ordered else 0
    top_sum = sum(ordered[:top])
    return {
        "contributors": len(ordered),
        "contributions": total,
        "top_contributors": top,
        "top_contributions": top_sum,
        "share_of_contributions": round(top_sum / total, 4) if total else None,
    }


async def concentration(*, session: AsyncSession, consultation_id: int) -> dict[str, Any]:
    """`concentration_of` the consultation's participants (coordinators left out)."""
    people = {person.id for person in await _people(session, consultation_id)}
    counts = await contributors(session=session, consultation_id=consultation_id)
    return concentration_of({pid: count for pid, count in counts.items() if pid in people})


async def representation(
    *,
    session: AsyncSession,
    consultation: Consultation,
    ratio: float = UNDER_REPRESENTED_RATIO,
    min_invited: int = UNDER_REPRESENTED_MIN_INVITED,
) -> dict[str, dict[str, Any]]:
    """Each category's share of the contributors against its share of the invited.

    For category c: invited_share = invited(c) / invited(all), contributor_share =
    contributors(c) / contributors(all), ratio = contributor_share / invited_share. The category
    is flagged `under_represented` when ratio < `ratio` (0.75: it brings less than three quarters
    of the voice its size would give it) and it has at least `min_invited` invited participants.
    Nothing is flagged before anyone has contributed (ratio None). Invited means every
    participant on the list, forgotten ones included (they were invited); coordinators are left
    out.
    """
    people = await _people(session, consultation.id)
    counts = await contributors(session=session, consultation_id=consultation.id)
    invited: Counter[str] = Counter(person.category for person in people)
    active: Counter[str] = Counter(person.category for person in people if counts.get(person.id))
    total_invited = sum(invited.values())
    total_active = sum(active.values())
    keys = [category["key"] for category in consultation.categories]
    keys += sorted(key for key in invited if key not in keys)
    table: dict[str, dict[str, Any]] = {}
    for key in keys:
        invited_share = invited[key] / total_invited if total_invited else 0.0
        contributor_share = active[key] / total_active if total_active else None
        value = (
            contributor_share / invited_share
            if contributor_share is not None and invited_share
            else None
        )
        flagged = value is not None and invited[key] >= min_invited and value < ratio
        table[key] = {
            "invited": invited[key],
            "contributors": active[key],
            "invited_share": round(invited_share, 4),
            "contributor_share": None if contributor_share is None else round(contributor_share, 4),
            "ratio": None if value is None else round(value, 4),
            "under_represented": flagged,
        }
    return table


async def participation_report(
    *, session: AsyncSession, consultation: Consultation
) -> dict[str, Any]:
    """Every participation metric in one plain-JSON document (for `palabre results --json`)."""
    return {
        "by_category": await participation_by_category(session=session, consultation=consultation),
        "by_phase": await by_phase(session=session, consultation=consultation),
        "concentration": await concentration(session=session, consultation_id=consultation.id),
        "representation": await representation(session=session, consultation=consultation),
        "rules": {
            "top_share": TOP_SHARE,
            "under_represented_ratio": UNDER_REPRESENTED_RATIO,
            "under_represented_min_invited": UNDER_REPRESENTED_MIN_INVITED,
        },
    }
