"""Observations: what actors see on the ground, submitted during the observe phase.

Every voice gets the same room: a length limit and a daily cap per person (counted in the
consultation's time zone), and text that is empty, invisible or full of control characters is
refused with a reason. Coordinators mark each observation in or out of the consultation's scope
(out of scope needs a reason, and the author is told it) and merge duplicates.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, clock, outbox
from consultation.common import (
    actor_of,
    clean_text,
    get_consultation,
    local_day_start,
    lock_participant,
    require_coordinator,
    rules,
)
from consultation.errors import NotFound, UserError
from consultation.phases import require_open
from consultation.preferences import require_consent
from models import (
    FindingObservation,
    Observation,
    Participant,
    PhaseKind,
    ScopeStatus,
)

logger = logging.getLogger(__name__)

SCOPE_REASON_MAX_LENGTH = 1000
THEME_MAX_LENGTH = 120
EXCERPT_LENGTH = 200


async def submit_observation(
    *,
    session: AsyncSession,
    participant: Participant,
    text: str,
    theme: str | None = None,
    channel: str,
) -> Observation:
    """Record an observation during the observe phase, within the length and daily limits."""
    require_consent(participant)
    phase = await require_open(
        session=session, consultation_id=participant.consultation_id, kind=PhaseKind.OBSERVE
    )
    consultation = await get_consultation(
        session=session, consultation_id=participant.consultation_id
    )
    value = clean_text(text, area="observation", limit=rules(consultation).observation_max_length)
    theme_value = None
    if theme is not None and theme.strip():
        try:
            theme_value = clean_text(theme, area="observation", limit=THEME_MAX_LENGTH)
        except UserError as exc:
            if exc.code == "observation.too_long":
                raise UserError("observation.theme_too_long", limit=THEME_MAX_LENGTH) from exc
            raise
    await lock_participant(session=session, participant=participant)
    current = clock.now()
    cap = rules(consultation).daily_cap
    today = (
        await session.execute(
            select(func.count())
            .select_from(Observation)
            .where(Observation.author_id == participant.id)
            .where(Observation.created_at >= local_day_start(consultation, current))
        )
    ).scalar_one()
    if today >= cap:
        raise UserError("observation.daily_cap", cap=cap)
    observation = Observation(
        consultation_id=participant.consultation_id,
        phase_id=phase.id,
        author_id=participant.id,
        text=value,
        theme=theme_value,
        channel=str(channel),
        created_at=current,
    )
    session.add(observation)
    await session.flush()
    return observation


async def get_observation(
    *, session: AsyncSession, observation_id: int, consultation_id: int | None = None
) -> Observation:
    observation = await session.get(Observation, observation_id)
    if observation is None or (
        consultation_id is not None and observation.consultation_id != consultation_id
    ):
        raise NotFound("observation.unknown", id=observation_id)
    return observation


async def decide_scope(
    *,
    session: AsyncSession,
    observation_id: int,
    by: Participant | None,
    in_scope: bool,
    reason: str | None = None,
    actor_label: str | None = None,
) -> Observation:
    """Mark an observation in or out of scope; out of scope needs a reason, told to the author.

    Repeating the same decision changes nothing and tells nobody again.
    """
    observation = await get_observation(session=session, observation_id=observation_id)
    require_coordinator(by, observation.consultation_id)
    if observation.scope_status == ScopeStatus.MERGED:
        raise UserError("observation.merged", id=observation.id, into=observation.duplicate_of_id)
    consultation = await get_consultation(
        session=session, consultation_id=observation.consultation_id
    )
    reason_value = None
    if reason is not None and reason.strip():
        reason_value = clean_text(reason, area="observation", limit=SCOPE_REASON_MAX_LENGTH)
    if not in_scope and reason_value is None:
        raise UserError("observation.reason_required", id=observation.id)
    status = ScopeStatus.IN_SCOPE if in_scope else ScopeStatus.OUT_OF_SCOPE
    if observation.scope_status == status and observation.scope_reason == reason_value:
        return observation
    current = clock.now()
    observation.scope_status = status
    observation.scope_reason = reason_value
    observation.decided_by_id = by.id if by is not None else None
    observation.decided_at = current
    session.add(observation)
    await audit.record(
        session=session,
        consultation_id=observation.consultation_id,
        action="observation.scope",
        subject=str(observation.id),
        reason=reason_value,
        detail={"status": str(status)},
        **actor_of(by, actor_label),
    )
    if not in_scope and observation.author_id is not None:
        author = await session.get(Participant, observation.author_id)
        if author is not None:
            excerpt = observation.text
            if len(excerpt) > EXCERPT_LENGTH:
                excerpt = excerpt[: EXCERPT_LENGTH - 1].rstrip() + "…"
            stamp = current.strftime("%Y%m%dT%H%M%S")
            await outbox.notify(
                session=session,
                participant=author,
                template="observation_out_of_scope",
                payload={
                    "excerpt": excerpt,
                    "reason": reason_value,
                    "submitted_at": observation.created_at.isoformat(),
                    "timezone": consultation.timezone,
                },
                dedupe_key=f"observation_out_of_scope:{observation.id}:{stamp}",
                interactive=False,
            )
    return observation


async def merge_observation(
    *,
    session: AsyncSession,
    observation_id: int,
    into_id: int,
    by: Participant | None,
    actor_label: str | None = None,
) -> Observation:
    """Mark an observation as a duplicate of another; the findings drawing on it follow.

    Observations already merged into the duplicate move to the target too, so that every
    duplicate points straight at the observation that stands for them all.
    """
    observation = await get_observation(session=session, observation_id=observation_id)
    require_coordinator(by, observation.consultation_id)
    target = await get_observation(
        session=session, observation_id=into_id, consultation_id=observation.consultation_id
    )
    if target.id == observation.id:
        raise UserError("observation.merge_self", id=observation.id)
    if target.scope_status == ScopeStatus.MERGED:
        raise UserError("observation.merged", id=target.id, into=target.duplicate_of_id)
    if observation.duplicate_of_id == target.id:
        return observation
    if observation.scope_status == ScopeStatus.MERGED:
        raise UserError("observation.merged", id=observation.id, into=observation.duplicate_of_id)
    current = clock.now()
    observation.scope_status = ScopeStatus.MERGED
    observation.duplicate_of_id = target.id
    observation.decided_by_id = by.id if by is not None else None
    observation.decided_at = current
    session.add(observation)
    earlier = (
        await session.exec(select(Observation).where(Observation.duplicate_of_id == observation.id))
    ).all()
    for duplicate in earlier:
        duplicate.duplicate_of_id = target.id
        session.add(duplicate)
    await _move_finding_links(session, [observation.id, *[d.id for d in earlier]], target.id)
    await audit.record(
        session=session,
        consultation_id=observation.consultation_id,
        action="observation.merged",
        subject=str(observation.id),
        detail={"into": target.id},
        **actor_of(by, actor_label),
    )
    return observation


async def _move_finding_links(session: AsyncSession, sources: list[int], target: int) -> None:
    links = (
        await session.exec(
            select(FindingObservation).where(
                FindingObservation.observation_id.in_(sources)  # type: ignore[attr-defined]
            )
        )
    ).all()
    if not links:
        return
    finding_ids = {link.finding_id for link in links}
    already = set(
        (
            await session.exec(
                select(FindingObservation.finding_id)
                .where(FindingObservation.observation_id == target)
                .where(FindingObservation.finding_id.in_(finding_ids))  # type: ignore[attr-defined]
            )
        ).all()
    )
    await session.execute(
        delete(FindingObservation).where(
            FindingObservation.observation_id.in_(sources)  # type: ignore[attr-defined]
        )
    )
    for finding_id in sorted(finding_ids - already):
        session.add(FindingObservation(finding_id=finding_id, observation_id=target))
    await session.flush()


async def pending_scope(*, session: AsyncSession, consultation_id: int) -> list[Observation]:
    """Observations no coordinator has looked at yet, oldest first."""
    return list(
        (
            await session.exec(
                select(Observation)
                .where(Observation.consultation_id == consultation_id)
                .where(Observation.scope_status == ScopeStatus.PENDING)
                .order_by(Observation.created_at, Observation.id)  # type: ignore[arg-type]
            )
        ).all()
    )


async def observations_in(
    *, session: AsyncSession, consultation_id: int, status: str | None = None
) -> list[Observation]:
    """Every observation of a consultation (optionally of one scope status), oldest first."""
    query = select(Observation).where(Observation.consultation_id == consultation_id)
    if status is not None:
        query = query.where(Observation.scope_status == status)
    return list(
        (
            await session.exec(query.order_by(Observation.created_at, Observation.id))  # type: ignore[arg-type]
        ).all()
    )


async def observations_of(*, session: AsyncSession, participant: Participant) -> list[Observation]:
    """A person's own observations, oldest first."""
    return list(
        (
            await session.exec(
                select(Observation)
                .where(Observation.author_id == participant.id)
                .order_by(Observation.created_at, Observation.id)  # type: ignore[arg-type]
            )
        ).all()
    )
