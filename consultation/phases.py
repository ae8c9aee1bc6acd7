"""The timetable of a consultation: phases that open, close and are extended by the rules.

A phase goes scheduled → open → closed, once. Only the open phase accepts its kind of
contribution, and only until its announced deadline. A phase cannot close before its minimum
duration, nor be extended past its maximum, unless a coordinator forces it with a reason; the
override is written to the audit trail. Closing a closed phase, or opening an open one, changes
nothing and tells nobody twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, clock, outbox
from consultation.common import (
    actor_of,
    get_consultation,
    lock_consultation,
    people_to_tell,
    require_coordinator,
    rules,
)
from consultation.errors import NotFound, PhaseClosed, UserError
from models import Action, ActionStatus, Participant, Phase, PhaseStatus

logger = logging.getLogger(__name__)

OPEN = "open"
CLOSE = "close"


# --- reading the timetable ---------------------------------------------------------------


async def get_phase(*, session: AsyncSession, phase_id: int) -> Phase:
    phase = await session.get(Phase, phase_id)
    if phase is None:
        raise NotFound("phase.unknown", kind=str(phase_id))
    return phase


async def _locked(session: AsyncSession, phase_id: int) -> Phase:
    """The phase, read again after taking its consultation's row lock.

    Timetable changes of one consultation happen one at a time (a coordinator and the scheduler
    may act at the same moment): the second one sees what the first did, and finds nothing to do.
    """
    phase = await get_phase(session=session, phase_id=phase_id)
    await lock_consultation(session=session, consultation_id=phase.consultation_id)
    return (
        await session.exec(
            select(Phase).where(Phase.id == phase_id).execution_options(populate_existing=True)
        )
    ).one()


async def phases_of(*, session: AsyncSession, consultation_id: int) -> list[Phase]:
    return list(
        (
            await session.exec(
                select(Phase)
                .where(Phase.consultation_id == consultation_id)
                .order_by(Phase.position)  # type: ignore[arg-type]
            )
        ).all()
    )


async def current_phase(*, session: AsyncSession, consultation_id: int) -> Phase | None:
    """The open phase, if any (there is at most one)."""
    return (
        await session.exec(
            select(Phase)
            .where(Phase.consultation_id == consultation_id)
            .where(Phase.status == PhaseStatus.OPEN)
            .order_by(Phase.position)  # type: ignore[arg-type]
        )
    ).first()


async def require_open(*, session: AsyncSession, consultation_id: int, kind: str) -> Phase:
    """The open phase of `kind`, or `PhaseClosed` saying which phase is open instead.

    A deadline that has passed closes the door even before the scheduler flips the status, so
    that the deadline everyone was told is the one that holds.
    """
    phase = await current_phase(session=session, consultation_id=consultation_id)
    if phase is None or phase.kind != kind:
        raise PhaseClosed("phase.not_open", kind=str(kind), current=phase.kind if phase else "")
    if clock.now() >= phase.closes_at:
        raise PhaseClosed(
            "phase.deadline_passed", kind=phase.kind, closes_at=phase.closes_at.isoformat()
        )
    return phase


async def find_phase(*, session: AsyncSession, consultation_id: int, kind: str) -> Phase:
    """The phase of `kind` a coordinator means: the open one, else the next one to come, else
    the last one that closed (a consultation may hold the same kind of phase twice)."""
    of_kind = [
        p
        for p in await phases_of(session=session, consultation_id=consultation_id)
        if p.kind == kind
    ]
    if not of_kind:
        raise NotFound("phase.unknown", kind=kind)
    for status in (PhaseStatus.OPEN, PhaseStatus.SCHEDULED):
        found = [p for p in of_kind if p.status == status]
        if found:
            return found[0]
    return of_kind[-1]


async def _timezone(session: AsyncSession, consultation_id: int) -> str:
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    return consultation.timezone


def _min_end(phase: Phase) -> datetime:
    return (phase.opened_at or phase.opens_at) + timedelta(seconds=phase.min_duration_s)


async def _shortlisted(session: AsyncSession, consultation_id: int) -> int:
    found = await session.exec(
        select(func.count())
        .select_from(Action)
        .where(Action.consultation_id == consultation_id)
        .where(Action.status == ActionStatus.SHORTLISTED)
    )
    return int(found.one())


def may_close(phase: Phase, at: datetime) -> bool:
    """Whether closing `phase` at `at` needs no override: its minimum duration has passed, or
    its deadline has (a deadline set earlier than the minimum was itself a forced decision:
    keeping it is not a new override)."""
    return at >= _min_end(phase) or at >= phase.closes_at


def _max_end(phase: Phase) -> datetime:
    return (phase.opened_at or phase.opens_at) + timedelta(seconds=phase.max_duration_s)


# --- changing it ---------------------------------------------------------------------------


def already_over(phase: Phase) -> bool:
    """Whether a scheduled phase would close the moment it opened: its whole planned window
    went by (while the service was down, or in a timetable written in the past) and no minimum
    duration keeps it open."""
    if phase.status != PhaseStatus.SCHEDULED:
        return False
    current = clock.now()
    opened_now = current + timedelta(seconds=phase.min_duration_s)
    deadline = min(
        max(phase.closes_at, opened_now), current + timedelta(seconds=phase.max_duration_s)
    )
    return deadline <= current


async def open_phase(
    *,
    session: AsyncSession,
    phase_id: int,
    by: Participant | None = None,
    actor_label: str | None = None,
    force: bool = False,
    reason: str | None = None,
) -> Phase:
    """Open a scheduled phase and announce it to everyone ("phase_opened"); idempotent.

    Another phase must not be open. The planned deadline is kept when it fits the phase's
    minimum and maximum durations counted from now; otherwise it moves to the nearest bound
    (an early or late opening must not make the phase too short or too long).
    """
    phase = await _locked(session, phase_id)
    require_coordinator(by, phase.consultation_id)
    if phase.status == PhaseStatus.OPEN:
        return phase
    if phase.status == PhaseStatus.CLOSED:
        raise UserError("phase.already_closed", kind=phase.kind)
    phases = await phases_of(session=session, consultation_id=phase.consultation_id)
    other = next((p for p in phases if p.status == PhaseStatus.OPEN), None)
    if other is not None:
        raise UserError("phase.another_open", kind=phase.kind, current=other.kind)
    later = next(
        (p for p in phases if p.position > phase.position and p.status != PhaseStatus.SCHEDULED),
        None,
    )
    if later is not None:
        raise UserError("phase.out_of_order", kind=phase.kind, later=later.kind)
    if force and not (reason or "").strip():
        raise UserError("phase.reason_required", kind=phase.kind)

    current = clock.now()
    planned = phase.closes_at
    phase.status = PhaseStatus.OPEN
    phase.opened_at = current
    phase.closes_at = min(max(planned, _min_end(phase)), _max_end(phase))
    session.add(phase)
    await audit.record(
        session=session,
        consultation_id=phase.consultation_id,
        action="phase.opened",
        subject=phase.kind,
        reason=(reason or "").strip() or None,
        detail={
            "position": phase.position,
            "planned_opens_at": phase.opens_at.isoformat(),
            "planned_closes_at": planned.isoformat(),
            "closes_at": phase.closes_at.isoformat(),
            "forced": force,
        },
        **actor_of(by, actor_label),
    )
    consultation = await get_consultation(session=session, consultation_id=phase.consultation_id)
    limits = rules(consultation)
    payload = {
        "kind": phase.kind,
        "closes_at": phase.closes_at.isoformat(),
        "timezone": consultation.timezone,
        "question": consultation.question,
        "limits": {
            "observation_max_length": limits.observation_max_length,
            "daily_cap": limits.daily_cap,
            # "Choose your k": never more than there are actions to choose from.
            "ballot_k": min(limits.ballot_k, await _shortlisted(session, phase.consultation_id))
            if phase.kind == "rank"
            else limits.ballot_k,
        },
    }
    await outbox.notify_many(
        session=session,
        participants=await people_to_tell(session=session, consultation_id=phase.consultation_id),
        template="phase_opened",
        payload=payload,
        dedupe_prefix=f"phase_opened:{phase.id}",
        digest_covers=True,
    )
    logger.info("phase %s (%s) opened", phase.id, phase.kind)
    return phase


async def close_phase(
    *,
    session: AsyncSession,
    phase_id: int,
    by: Participant | None = None,
    actor_label: str | None = None,
    force: bool = False,
    reason: str | None = None,
) -> Phase:
    """Close an open phase and announce it ("phase_closed"); closing it again changes nothing.

    Before the minimum duration (and before the deadline already set) it is refused unless
    `force` with a `reason`, which the audit trail keeps.
    """
    phase = await _locked(session, phase_id)
    require_coordinator(by, phase.consultation_id)
    if phase.status == PhaseStatus.CLOSED:
        return phase
    if phase.status == PhaseStatus.SCHEDULED:
        raise UserError("phase.not_started", kind=phase.kind)
    current = clock.now()
    min_end = _min_end(phase)
    early = not may_close(phase, current)
    reason = (reason or "").strip() or None
    if early and not force:
        raise UserError(
            "phase.too_early",
            kind=phase.kind,
            min_end=min_end.isoformat(),
            timezone=await _timezone(session, phase.consultation_id),
        )
    if early and reason is None:
        raise UserError("phase.reason_required", kind=phase.kind)

    phase.status = PhaseStatus.CLOSED
    phase.closed_at = current
    session.add(phase)
    await audit.record(
        session=session,
        consultation_id=phase.consultation_id,
        action="phase.closed",
        subject=phase.kind,
        reason=reason,
        detail={
            "position": phase.position,
            "forced": early,
            "override": "min_duration" if early else None,
            "min_end": min_end.isoformat(),
            "planned_closes_at": phase.closes_at.isoformat(),
        },
        **actor_of(by, actor_label),
    )
    consultation = await get_consultation(session=session, consultation_id=phase.consultation_id)
    following = [
        p
        for p in await phases_of(session=session, consultation_id=phase.consultation_id)
        if p.position > phase.position and p.status == PhaseStatus.SCHEDULED
    ]
    upcoming = following[0] if following else None
    payload = {
        "kind": phase.kind,
        "closed_at": current.isoformat(),
        "timezone": consultation.timezone,
        "next_kind": upcoming.kind if upcoming else None,
        "next_opens_at": max(upcoming.opens_at, current).isoformat() if upcoming else None,
    }
    await outbox.notify_many(
        session=session,
        participants=await people_to_tell(session=session, consultation_id=phase.consultation_id),
        template="phase_closed",
        payload=payload,
        dedupe_prefix=f"phase_closed:{phase.id}",
        digest_covers=True,
    )
    logger.info("phase %s (%s) closed%s", phase.id, phase.kind, " (forced)" if early else "")
    return phase


async def skip_phase(
    *, session: AsyncSession, phase_id: int, actor_label: str | None = None
) -> Phase:
    """Close a scheduled phase that is already over without opening it (`already_over`);
    nobody is told (the phase that follows is announced instead)."""
    phase = await _locked(session, phase_id)
    if phase.status != PhaseStatus.SCHEDULED:
        return phase
    current = clock.now()
    phase.status = PhaseStatus.CLOSED
    phase.closed_at = current
    session.add(phase)
    await audit.record(
        session=session,
        consultation_id=phase.consultation_id,
        action="phase.skipped",
        subject=phase.kind,
        detail={
            "position": phase.position,
            "planned_opens_at": phase.opens_at.isoformat(),
            "planned_closes_at": phase.closes_at.isoformat(),
        },
        **actor_of(None, actor_label),
    )
    logger.warning("phase %s (%s) was already over: closed without opening", phase.id, phase.kind)
    return phase


async def extend_phase(
    *,
    session: AsyncSession,
    phase_id: int,
    until: datetime,
    reason: str | None,
    by: Participant | None = None,
    actor_label: str | None = None,
    force: bool = False,
) -> Phase:
    """Move a phase's deadline to `until`, within its minimum and maximum durations.

    A reason is always required (it is a change of the announced timetable); going past the
    maximum or below the minimum also needs `force`. An open phase's participants are told the
    new deadline ("phase_extended").
    """
    if until.tzinfo is None:
        raise ValueError("extend_phase needs a timezone-aware `until`")
    phase = await _locked(session, phase_id)
    require_coordinator(by, phase.consultation_id)
    reason = (reason or "").strip() or None
    if reason is None:
        raise UserError("phase.reason_required", kind=phase.kind)
    if phase.status == PhaseStatus.CLOSED:
        raise UserError("phase.already_closed", kind=phase.kind)
    current = clock.now()
    until = clock.as_utc(until)
    if until <= current:
        raise UserError("phase.until_in_past", kind=phase.kind, until=until.isoformat())
    start = phase.opened_at or phase.opens_at
    if until <= start:
        raise UserError("phase.until_before_opening", kind=phase.kind, opens_at=start.isoformat())
    if until == phase.closes_at:
        return phase
    override = None
    if until > _max_end(phase):
        override = "max_duration"
    elif until < _min_end(phase):
        override = "min_duration"
    if override == "max_duration" and not force:
        raise UserError(
            "phase.beyond_max",
            kind=phase.kind,
            max_end=_max_end(phase).isoformat(),
            timezone=await _timezone(session, phase.consultation_id),
        )
    if override == "min_duration" and not force:
        raise UserError(
            "phase.below_min",
            kind=phase.kind,
            min_end=_min_end(phase).isoformat(),
            timezone=await _timezone(session, phase.consultation_id),
        )

    previous = phase.closes_at
    phase.closes_at = until
    session.add(phase)
    await audit.record(
        session=session,
        consultation_id=phase.consultation_id,
        action="phase.extended",
        subject=phase.kind,
        reason=reason,
        detail={
            "position": phase.position,
            "from": previous.isoformat(),
            "to": until.isoformat(),
            "forced": override is not None,
            "override": override,
        },
        **actor_of(by, actor_label),
    )
    if phase.status == PhaseStatus.OPEN:
        consultation = await get_consultation(
            session=session, consultation_id=phase.consultation_id
        )
        payload = {
            "kind": phase.kind,
            "closes_at": until.isoformat(),
            "previous_closes_at": previous.isoformat(),
            "timezone": consultation.timezone,
        }
        stamp = until.strftime("%Y%m%dT%H%M%S")
        await outbox.notify_many(
            session=session,
            participants=await people_to_tell(
                session=session, consultation_id=phase.consultation_id
            ),
            template="phase_extended",
            payload=payload,
            dedupe_prefix=f"phase_extended:{phase.id}:{stamp}",
            digest_covers=True,
        )
    return phase


async def extend_phase_by(
    *, session: AsyncSession, phase_id: int, days: int, reason: str | None, by: Participant
) -> Phase:
    """Move a phase's deadline `days` days later (the rules of `extend_phase` apply)."""
    phase = await get_phase(session=session, phase_id=phase_id)
    return await extend_phase(
        session=session,
        phase_id=phase_id,
        until=phase.closes_at + timedelta(days=days),
        reason=reason,
        by=by,
    )


async def due_transitions(
    *, session: AsyncSession, consultation_id: int | None = None
) -> list[tuple[str, Phase]]:
    """What the scheduler should do now: ("close", phase) and ("open", phase), in that order.

    An open phase past its deadline is due to close. The next phase is due to open when its
    planned opening has come and no other phase would remain open; phases a coordinator skipped
    (a later phase was opened first) are never due.
    """
    query = select(Phase).order_by(Phase.consultation_id, Phase.position)  # type: ignore[arg-type]
    if consultation_id is not None:
        query = query.where(Phase.consultation_id == consultation_id)
    current = clock.now()
    by_consultation: dict[int, list[Phase]] = {}
    for phase in (await session.exec(query)).all():
        by_consultation.setdefault(phase.consultation_id, []).append(phase)
    closes: list[tuple[str, Phase]] = []
    opens: list[tuple[str, Phase]] = []
    for phases in by_consultation.values():
        still_open = False
        for phase in phases:
            if phase.status == PhaseStatus.OPEN:
                if phase.closes_at <= current:
                    closes.append((CLOSE, phase))
                else:
                    still_open = True
        if still_open:
            continue
        started = [p.position for p in phases if p.status != PhaseStatus.SCHEDULED]
        last = max(started, default=0)
        upcoming = next(
            (p for p in phases if p.position > last and p.status == PhaseStatus.SCHEDULED),
            None,
        )
        if upcoming is not None and upcoming.opens_at <= current:
            opens.append((OPEN, upcoming))
    return closes + opens
