"""The scheduler's plan: every job the database implies, each with a deterministic id and a time.

Nothing of the plan is stored. It is derived from the consultations, their phases and
questionnaires, and the record of once-only jobs already run (`JobRun`), so a restart rebuilds
the same plan, and a timetable changed by `palabre init` or by a coordinator's extension shows
up at the next resync. Job ids name what they do:

    phase-open:<consultation>:<phase>             phase-close:<consultation>:<phase>
    reminder:<consultation>:<phase>:<hours>       digest:<consultation>
    questionnaire-open:<consultation>:<questionnaire>
    questionnaire-reminder:<consultation>:<questionnaire>
    questionnaire-close:<consultation>:<questionnaire>
    final-plan:<consultation>
    follow-digest:<consultation>                  follow-questionnaire:<consultation>:<number>
    plan-missing:<consultation>                   plan-overdue:<consultation>

(database ids). A job is *due* when its time has come and its condition holds (a phase opens
only once the one before it has closed). State-changing jobs are naturally once-only (a closed
phase is not closed again); messages are once-only through their `run_key`, recorded in
`JobRun` in the same transaction as the messages they write.

Downtime rules live here: a missed transition is due at once; a missed reminder is dropped once
its deadline has passed, and of several missed reminders before one deadline only the latest is
sent; a missed digest is one job (today's morning, if it has passed), never one per missed day.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation.clock import as_utc
from consultation.common import rules
from consultation.definition import RulesSpec
from models import (
    Consultation,
    JobRun,
    Phase,
    PhaseKind,
    PhaseStatus,
    Questionnaire,
    QuestionnaireStatus,
)

PHASE_OPEN = "phase-open"
PHASE_CLOSE = "phase-close"
REMINDER = "reminder"
DIGEST = "digest"
QUESTIONNAIRE_OPEN = "questionnaire-open"
QUESTIONNAIRE_REMINDER = "questionnaire-reminder"
QUESTIONNAIRE_CLOSE = "questionnaire-close"
FINAL_PLAN = "final-plan"
# After the vote (consultation.followup): the members' follow-up digest and questionnaire, and
# the coordinators' reminders of missing decisions and of due dates passed without progress.
FOLLOW_DIGEST = "follow-digest"
FOLLOW_QUESTIONNAIRE = "follow-questionnaire"
PLAN_MISSING = "plan-missing"
PLAN_OVERDUE = "plan-overdue"

# Within one moment: close what ends, tell its outcome, open what follows, then remind, then
# the digest (last, so that it reflects everything the same tick changed).
ORDER = {
    PHASE_CLOSE: 0,
    FINAL_PLAN: 1,
    QUESTIONNAIRE_CLOSE: 2,
    QUESTIONNAIRE_OPEN: 3,
    PHASE_OPEN: 4,
    REMINDER: 5,
    QUESTIONNAIRE_REMINDER: 5,
    FOLLOW_QUESTIONNAIRE: 5,
    PLAN_MISSING: 5,
    PLAN_OVERDUE: 5,
    DIGEST: 6,
    FOLLOW_DIGEST: 6,
}


@dataclass(frozen=True)
class PlannedJob:
    """One thing the scheduler will do (or would do now, when `due`)."""

    id: str
    kind: str
    consultation_id: int
    at: datetime
    due: bool = False
    run_key: str | None = None
    # After this a job that did not run is dropped, not run late (a reminder past its deadline).
    until: datetime | None = None
    phase_id: int | None = None
    questionnaire_id: int | None = None
    offset_hours: int | None = None
    # Why it is not due although its time has come (the previous phase is still open).
    waiting_for: str | None = None
    # For display: the phase kind or questionnaire key it concerns, the digest's local date.
    subject: str | None = None
    # A follow-up questionnaire's number, and whether it is the one at the end.
    number: int | None = None
    final: bool = False

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.at, ORDER[self.kind], self.id)


@dataclass
class ConsultationState:
    """What the plan of one consultation is derived from."""

    consultation: Consultation
    phases: list[Phase]
    questionnaires: list[Questionnaire]
    runs: set[str] = field(default_factory=set)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.consultation.timezone or "Europe/Paris")

    @property
    def rules(self) -> RulesSpec:
        return rules(self.consultation)


@dataclass(frozen=True)
class PhaseEstimate:
    """When a phase opened or will open, and when it closed or will close."""

    phase: Phase
    opens: datetime
    closes: datetime
    # Skipped: a later phase was opened first, so this one never will be (as the core rules).
    skipped: bool = False


def estimate_phases(phases: Iterable[Phase]) -> list[PhaseEstimate]:
    """Actual dates for what happened, planned ones for the rest, in timetable order.

    As `phases.open_phase` does, a phase that opens late keeps its planned deadline only within
    its minimum and maximum durations, and the next phase cannot open before it closes: a late
    phase pushes the ones after it.
    """
    ordered = sorted(phases, key=lambda p: p.position)
    last_started = max(
        (p.position for p in ordered if p.status != PhaseStatus.SCHEDULED), default=0
    )
    estimates: list[PhaseEstimate] = []
    previous_close: datetime | None = None
    for phase in ordered:
        if phase.status == PhaseStatus.CLOSED:
            opens = as_utc(phase.opened_at or phase.opens_at)
            closes = as_utc(phase.closed_at or phase.closes_at)
        elif phase.status == PhaseStatus.OPEN:
            opens = as_utc(phase.opened_at or phase.opens_at)
            closes = as_utc(phase.closes_at)
        else:
            opens = as_utc(phase.opens_at)
            if previous_close is not None:
                opens = max(opens, previous_close)
            closes = min(
                max(as_utc(phase.closes_at), opens + timedelta(seconds=phase.min_duration_s)),
                opens + timedelta(seconds=phase.max_duration_s),
            )
            if phase.position < last_started:
                estimates.append(PhaseEstimate(phase, opens, closes, skipped=True))
                continue
        estimates.append(PhaseEstimate(phase, opens, closes))
        previous_close = closes
    return estimates


def digest_slot(state: ConsultationState, day: date) -> datetime:
    """The digest moment of local `day` (rules.digest_hour in the consultation's zone), in UTC."""
    hour = state.rules.digest_hour
    return datetime.combine(day, hour, tzinfo=state.zone).astimezone(UTC)


def digest_key(consultation_id: int, day: date) -> str:
    return f"{DIGEST}:{consultation_id}:{day.isoformat()}"


def reminder_key(consultation_id: int, phase_id: int, hours: int, deadline: datetime) -> str:
    # The deadline is part of the key: a phase extended to a new deadline earns new reminders.
    return f"{REMINDER}:{consultation_id}:{phase_id}:{hours}:{int(deadline.timestamp())}"


def reminder_offsets(state: ConsultationState) -> list[int]:
    return state.rules.reminder_offsets_hours


def questionnaire_reminder_at(
    state: ConsultationState, opens: datetime, closes: datetime
) -> datetime:
    """The single reminder of a final questionnaire: the largest reminder offset before it
    closes, but never in its first half."""
    offsets = reminder_offsets(state) or RulesSpec().reminder_offsets_hours
    return max(closes - timedelta(hours=offsets[0]), opens + (closes - opens) / 2)


def candidates(state: ConsultationState, now: datetime) -> list[PlannedJob]:
    """Every job of one consultation that has not happened yet, with its due flag as of `now`.

    Once-only jobs are returned whether or not they already ran; `derive` drops those in
    `state.runs`.
    """
    c = state.consultation.id
    assert c is not None
    jobs: list[PlannedJob] = []
    estimates = [e for e in estimate_phases(state.phases) if not e.skipped]
    by_kind: dict[str, list[PhaseEstimate]] = {}
    for estimate in estimates:
        by_kind.setdefault(estimate.phase.kind, []).append(estimate)

    blocked = False  # an earlier phase is still to close
    previous: Phase | None = None
    for estimate in estimates:
        phase = estimate.phase
        if phase.status == PhaseStatus.SCHEDULED:
            ready = not blocked
            jobs.append(
                PlannedJob(
                    id=f"{PHASE_OPEN}:{c}:{phase.id}",
                    kind=PHASE_OPEN,
                    consultation_id=c,
                    at=estimate.opens,
                    due=ready and as_utc(phase.opens_at) <= now,
                    phase_id=phase.id,
                    subject=phase.kind,
                    waiting_for=None if ready or previous is None else previous.kind,
                )
            )
        if phase.status != PhaseStatus.CLOSED:
            jobs.append(
                PlannedJob(
                    id=f"{PHASE_CLOSE}:{c}:{phase.id}",
                    kind=PHASE_CLOSE,
                    consultation_id=c,
                    at=estimate.closes,
                    due=phase.status == PhaseStatus.OPEN and estimate.closes <= now,
                    phase_id=phase.id,
                    subject=phase.kind,
                )
            )
            jobs.extend(_phase_reminders(state, estimate, now))
            blocked = True
        previous = phase

    jobs.extend(_questionnaire_jobs(state, by_kind, estimates, now))

    ranks = by_kind.get(PhaseKind.RANK, [])
    if ranks:
        # As `trace.ranking_over`: the plan is final once every rank phase has closed.
        jobs.append(
            PlannedJob(
                id=f"{FINAL_PLAN}:{c}",
                kind=FINAL_PLAN,
                consultation_id=c,
                at=ranks[-1].closes,
                due=all(e.phase.status == PhaseStatus.CLOSED for e in ranks),
                run_key=f"{FINAL_PLAN}:{c}",
                subject=PhaseKind.RANK.value,
            )
        )

    digest = _digest_job(state, estimates, now)
    if digest is not None:
        jobs.append(digest)
    jobs.extend(_follow_jobs(state, by_kind, estimates, now))
    return jobs


FOLLOW_DIGEST_STEP = {"weekly": (7, 0), "monthly": (0, 1), "quarterly": (0, 3)}


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it is shorter."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _daily(
    state: ConsultationState, kind: str, start: datetime, end: datetime, now: datetime
) -> PlannedJob | None:
    """A job at every digest moment from `start` to `end`: today's if it has not run, else the
    next one (as the digest is)."""
    c = state.consultation.id
    assert c is not None
    today = now.astimezone(state.zone).date()
    at = digest_slot(state, today)
    key = f"{kind}:{c}:{today.isoformat()}"
    if start <= at <= now and at <= end and key not in state.runs:
        return PlannedJob(
            id=f"{kind}:{c}", kind=kind, consultation_id=c, at=at, due=True, run_key=key
        )
    day = max(today if now < at else today + timedelta(days=1), start.astimezone(state.zone).date())
    while digest_slot(state, day) < start:
        day += timedelta(days=1)
    at = digest_slot(state, day)
    if at > end:
        return None
    return PlannedJob(
        id=f"{kind}:{c}",
        kind=kind,
        consultation_id=c,
        at=at,
        run_key=f"{kind}:{c}:{day.isoformat()}",
    )


def _follow_jobs(
    state: ConsultationState,
    by_kind: dict[str, list[PhaseEstimate]],
    estimates: list[PhaseEstimate],
    now: datetime,
) -> list[PlannedJob]:
    """The follow-up of the plan, from the end of the ranking to the end of the follow phase
    (or of the last phase, without one).

    Coordinators are reminded of missing decisions every `decision_reminder_days` after the
    ranking closed, and of overdue actions at each day's digest moment. In the follow phase,
    members get the follow-up digest every `follow_digest` period from its opening, and the
    follow-up questionnaire every `follow_questionnaire_months` and at its end. Of several
    moments missed while the scheduler was stopped, only the latest is kept.
    """
    c = state.consultation.id
    assert c is not None
    ranks = by_kind.get(PhaseKind.RANK, [])
    if not ranks or not estimates:
        return []
    follows = by_kind.get(PhaseKind.FOLLOW, [])
    follow = follows[-1] if follows else None
    end = (follow or estimates[-1]).closes
    ranked = all(e.phase.status == PhaseStatus.CLOSED for e in ranks)
    start = max(e.closes for e in ranks)
    jobs: list[PlannedJob] = []
    every = timedelta(days=state.rules.decision_reminder_days)
    reached = max(int((now - start) / every), 0) if ranked else 0
    for number in (reached, reached + 1):
        at = start + every * number
        key = f"{PLAN_MISSING}:{c}:{number}"
        if number == 0 or at > end or key in state.runs:
            continue
        jobs.append(
            PlannedJob(
                id=f"{PLAN_MISSING}:{c}",
                kind=PLAN_MISSING,
                consultation_id=c,
                at=at,
                due=ranked and at <= now,
                run_key=key,
                number=number,
            )
        )
        break
    if ranked:
        overdue = _daily(state, PLAN_OVERDUE, start, end, now)
        if overdue is not None:
            jobs.append(overdue)
    if follow is None or follow.phase.status == PhaseStatus.SCHEDULED:
        return jobs
    jobs.extend(_follow_digest(state, follow, now))
    jobs.extend(_follow_questionnaires(state, follow, now))
    return jobs


def follow_digest_slots(state: ConsultationState, follow: PhaseEstimate) -> Iterator[datetime]:
    """The follow-up digest moments: from the follow phase's opening, every period."""
    days, months = FOLLOW_DIGEST_STEP[state.rules.follow_digest]
    first = follow.opens.astimezone(state.zone).date()
    if digest_slot(state, first) < follow.opens:
        first += timedelta(days=1)
    number = 0
    while True:
        day = add_months(first, months * number) + timedelta(days=days * number)
        yield digest_slot(state, day)
        number += 1


def _follow_digest(
    state: ConsultationState, follow: PhaseEstimate, now: datetime
) -> list[PlannedJob]:
    c = state.consultation.id
    assert c is not None
    if follow.phase.status == PhaseStatus.CLOSED:
        # One last digest tells what changed since the previous one, when the follow-up ends.
        key = f"{FOLLOW_DIGEST}:{c}:end"
        if key in state.runs:
            return []
        return [
            PlannedJob(
                id=f"{FOLLOW_DIGEST}:{c}",
                kind=FOLLOW_DIGEST,
                consultation_id=c,
                at=follow.closes,
                due=True,
                run_key=key,
                phase_id=follow.phase.id,
            )
        ]
    is_open = follow.phase.status == PhaseStatus.OPEN
    latest = None
    for at in follow_digest_slots(state, follow):
        if at >= follow.closes:
            break
        key = f"{FOLLOW_DIGEST}:{c}:{at.astimezone(state.zone).date().isoformat()}"
        if at <= now:
            latest = (at, key)
            continue
        if latest is not None and latest[1] not in state.runs:
            at, key = latest
        return [
            PlannedJob(
                id=f"{FOLLOW_DIGEST}:{c}",
                kind=FOLLOW_DIGEST,
                consultation_id=c,
                at=at,
                due=is_open and at <= now,
                run_key=key,
                phase_id=follow.phase.id,
            )
        ]
    if latest is not None and latest[1] not in state.runs:
        return [
            PlannedJob(
                id=f"{FOLLOW_DIGEST}:{c}",
                kind=FOLLOW_DIGEST,
                consultation_id=c,
                at=latest[0],
                due=is_open,
                run_key=latest[1],
                phase_id=follow.phase.id,
            )
        ]
    return []


def follow_questionnaire_times(
    state: ConsultationState, follow: PhaseEstimate
) -> list[tuple[int, datetime, bool]]:
    """(number, moment, final) of every follow-up questionnaire of the follow phase."""
    months = state.rules.follow_questionnaire_months
    at_end = state.rules.follow_questionnaire_at_end
    # A periodic questionnaire still open when the one at the end comes would ask twice.
    last = follow.closes - (
        timedelta(days=state.rules.follow_questionnaire_days) if at_end else timedelta(0)
    )
    first = follow.opens.astimezone(state.zone).date()
    times: list[tuple[int, datetime, bool]] = []
    if months > 0:
        number = 1
        while True:
            at = digest_slot(state, add_months(first, months * number))
            if at >= last:
                break
            times.append((number, at, False))
            number += 1
    if at_end:
        times.append((len(times) + 1, follow.closes, True))
    return times


def _follow_questionnaires(
    state: ConsultationState, follow: PhaseEstimate, now: datetime
) -> list[PlannedJob]:
    c = state.consultation.id
    assert c is not None
    times = follow_questionnaire_times(state, follow)
    arrived = [number for number, at, _ in times if at <= now]
    latest = max(arrived, default=0)
    closed = follow.phase.status == PhaseStatus.CLOSED
    jobs = []
    for number, at, final in times:
        if number < latest:
            continue
        ready = closed if final else follow.phase.status != PhaseStatus.SCHEDULED
        jobs.append(
            PlannedJob(
                id=f"{FOLLOW_QUESTIONNAIRE}:{c}:{number}",
                kind=FOLLOW_QUESTIONNAIRE,
                consultation_id=c,
                at=at,
                due=ready and at <= now,
                run_key=f"{FOLLOW_QUESTIONNAIRE}:{c}:{number}",
                phase_id=follow.phase.id,
                number=number,
                final=final,
            )
        )
    return jobs


def _phase_reminders(
    state: ConsultationState, estimate: PhaseEstimate, now: datetime
) -> list[PlannedJob]:
    """Reminders before the phase's deadline, except in the evaluation phase (the final
    questionnaire has its own single reminder)."""
    phase = estimate.phase
    if phase.kind in (PhaseKind.EVALUATE, PhaseKind.FOLLOW):
        return []
    c = state.consultation.id
    deadline = estimate.closes
    times = [
        (hours, deadline - timedelta(hours=hours))
        for hours in reminder_offsets(state)
        if deadline - timedelta(hours=hours) > estimate.opens
    ]
    is_open = phase.status == PhaseStatus.OPEN
    # Of the reminders whose time has come, only the latest is still worth sending.
    arrived = [hours for hours, at in times if at <= now]
    latest = min(arrived) if arrived else None
    jobs = []
    for hours, at in times:
        if latest is not None and hours > latest:
            continue
        jobs.append(
            PlannedJob(
                id=f"{REMINDER}:{c}:{phase.id}:{hours}",
                kind=REMINDER,
                consultation_id=c,
                at=at,
                due=is_open and at <= now < deadline,
                run_key=reminder_key(c, phase.id, hours, deadline),
                until=deadline,
                phase_id=phase.id,
                offset_hours=hours,
                subject=phase.kind,
            )
        )
    return jobs


def _questionnaire_jobs(
    state: ConsultationState,
    by_kind: dict[str, list[PhaseEstimate]],
    estimates: list[PhaseEstimate],
    now: datetime,
) -> list[PlannedJob]:
    c = state.consultation.id
    jobs: list[PlannedJob] = []
    evaluations = by_kind.get(PhaseKind.EVALUATE, [])
    for questionnaire in state.questionnaires:
        q = questionnaire.id
        if questionnaire.status == QuestionnaireStatus.CLOSED:
            continue
        if questionnaire.status == QuestionnaireStatus.SCHEDULED:
            trigger = _trigger(questionnaire, by_kind, evaluations, estimates)
            if trigger is None:
                continue
            opens, ready = trigger
            closes = opens + timedelta(days=questionnaire.open_days)
            jobs.append(
                PlannedJob(
                    id=f"{QUESTIONNAIRE_OPEN}:{c}:{q}",
                    kind=QUESTIONNAIRE_OPEN,
                    consultation_id=c,
                    at=opens,
                    due=ready,
                    questionnaire_id=q,
                    subject=questionnaire.key,
                )
            )
            due = False
        else:
            opens = as_utc(questionnaire.opened_at or now)
            closes = as_utc(
                questionnaire.closes_at or opens + timedelta(days=questionnaire.open_days)
            )
            due = True
        jobs.append(
            PlannedJob(
                id=f"{QUESTIONNAIRE_CLOSE}:{c}:{q}",
                kind=QUESTIONNAIRE_CLOSE,
                consultation_id=c,
                at=closes,
                due=due and closes <= now,
                questionnaire_id=q,
                subject=questionnaire.key,
            )
        )
        if questionnaire.is_final:
            at = questionnaire_reminder_at(state, opens, closes)
            jobs.append(
                PlannedJob(
                    id=f"{QUESTIONNAIRE_REMINDER}:{c}:{q}",
                    kind=QUESTIONNAIRE_REMINDER,
                    consultation_id=c,
                    at=at,
                    due=due and at <= now < closes,
                    run_key=f"{QUESTIONNAIRE_REMINDER}:{c}:{q}",
                    until=closes,
                    questionnaire_id=q,
                    subject=questionnaire.key,
                )
            )
    return jobs


def _trigger(
    questionnaire: Questionnaire,
    by_kind: dict[str, list[PhaseEstimate]],
    evaluations: list[PhaseEstimate],
    estimates: list[PhaseEstimate],
) -> tuple[datetime, bool] | None:
    """When a scheduled questionnaire opens, and whether that moment has come (as
    `questionnaires.due_questionnaires` decides it).

    A step questionnaire opens when the latest phase of its kind that has opened closes (the
    first of its kind, before any has opened). The final one opens with the evaluation phase
    when there is one, and otherwise when the last phase closes.
    """
    if questionnaire.is_final:
        if evaluations:
            started = [e for e in evaluations if e.phase.opened_at is not None]
            if started:
                return started[0].opens, True
            return evaluations[0].opens, False
        if not estimates:
            return None
        last = estimates[-1]
        done = all(e.phase.status == PhaseStatus.CLOSED for e in estimates)
        return last.closes, done
    followed = by_kind.get(questionnaire.after_phase or "", [])
    if not followed:
        return None
    started = [e for e in followed if e.phase.opened_at is not None]
    trigger = started[-1] if started else followed[0]
    return trigger.closes, trigger.phase.status == PhaseStatus.CLOSED


def _digest_job(
    state: ConsultationState, estimates: list[PhaseEstimate], now: datetime
) -> PlannedJob | None:
    """The next digest moment while the consultation runs: from its first opening until its
    last phase has closed and no questionnaire is open any more.

    A morning missed while the scheduler was stopped is caught up when it comes back that same
    day; mornings of days gone by are not (the next digest covers everything since the last
    one), so a stop of several days sends one digest, and never one in the middle of the night.
    """
    if not estimates:
        return None
    c = state.consultation.id
    started = estimates[0].phase.status != PhaseStatus.SCHEDULED
    running = any(e.phase.status != PhaseStatus.CLOSED for e in estimates) or any(
        q.status != QuestionnaireStatus.CLOSED for q in state.questionnaires
    )
    if not running:
        return None
    start = estimates[0].opens
    local_today = now.astimezone(state.zone).date()
    today = digest_slot(state, local_today)
    if started and start <= today <= now and digest_key(c, local_today) not in state.runs:
        return PlannedJob(
            id=f"{DIGEST}:{c}",
            kind=DIGEST,
            consultation_id=c,
            at=today,
            due=True,
            run_key=digest_key(c, local_today),
            subject=local_today.isoformat(),
        )
    day = local_today if now < today else local_today + timedelta(days=1)
    day = max(day, start.astimezone(state.zone).date())
    while digest_slot(state, day) < start:
        day += timedelta(days=1)
    return PlannedJob(
        id=f"{DIGEST}:{c}",
        kind=DIGEST,
        consultation_id=c,
        at=digest_slot(state, day),
        run_key=digest_key(c, day),
        subject=day.isoformat(),
    )


async def load(
    *, session: AsyncSession, consultation_id: int | None = None
) -> list[ConsultationState]:
    """The consultations (all, or one) with their phases and questionnaires."""
    query = select(Consultation).order_by(Consultation.id)
    if consultation_id is not None:
        query = query.where(Consultation.id == consultation_id)
    consultations = list((await session.exec(query)).all())
    if not consultations:
        return []
    ids = [consultation.id for consultation in consultations]
    phases = (
        await session.exec(
            select(Phase).where(Phase.consultation_id.in_(ids)).order_by(Phase.position)  # type: ignore[union-attr]
        )
    ).all()
    questionnaires = (
        await session.exec(
            select(Questionnaire)
            .where(Questionnaire.consultation_id.in_(ids))  # type: ignore[union-attr]
            .order_by(Questionnaire.id)
        )
    ).all()
    states = {
        consultation.id: ConsultationState(consultation, [], []) for consultation in consultations
    }
    for phase in phases:
        states[phase.consultation_id].phases.append(phase)
    for questionnaire in questionnaires:
        states[questionnaire.consultation_id].questionnaires.append(questionnaire)
    return list(states.values())


async def derive(
    *, session: AsyncSession, now: datetime, consultation_id: int | None = None
) -> list[PlannedJob]:
    """The whole plan as of `now`, in the order the jobs will run."""
    states = await load(session=session, consultation_id=consultation_id)
    keys = [
        job.run_key for state in states for job in candidates(state, now) if job.run_key is not None
    ]
    done = await runs_among(session=session, keys=keys)
    plan: list[PlannedJob] = []
    for state in states:
        # Knowing what ran changes the plan itself (the next digest, once today's has run).
        state.runs = done
        plan.extend(job for job in candidates(state, now) if job.run_key not in done)
    return sorted(plan, key=lambda job: job.sort_key)


async def runs_among(*, session: AsyncSession, keys: list[str]) -> set[str]:
    """Which of these once-only jobs have run."""
    done: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = await session.exec(select(JobRun.job_key).where(JobRun.job_key.in_(chunk)))  # type: ignore[attr-defined]
        done.update(rows.all())
    return done


def fingerprint(plan: Iterable[PlannedJob]) -> str:
    """A short digest of what the plan will wake up for; equal plans, equal fingerprints."""
    text = "\n".join(f"{job.id}|{job.at.isoformat()}|{job.due}|{job.run_key}" for job in plan)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
