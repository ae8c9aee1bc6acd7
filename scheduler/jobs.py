"""What the scheduler does when a job is due: each body calls the core.

Transitions (a phase or a questionnaire opening or closing) run in one transaction the caller
opens, and are once-only by the state they change. Messages (reminders, the final plan,
digests) are once-only by a `JobRun` row, written once all their messages are; their outbox
dedupe keys make a rerun after a crash, or a second instance racing this one, write nothing
twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import digests, followup, phases, questionnaires, reminders, trace
from models import Cadence, JobRun, Participant
from models.db import Database, insert_for
from scheduler import plan

logger = logging.getLogger(__name__)

ACTOR = "scheduler"
# Participants per transaction in a message job.
BATCH = 200


@dataclass(frozen=True)
class Outcome:
    """What one job did: `ran` is False when another run had done it already."""

    job_id: str
    ran: bool
    messages: int = 0
    detail: dict[str, Any] | None = None


async def claim_run(
    *, session: AsyncSession, key: str, at: datetime, detail: dict[str, Any]
) -> bool:
    """Record that once-only job `key` has run; False when another run recorded it first.

    On PostgreSQL a concurrent claim of the same key waits for the first transaction and then
    finds the row: one of them records it.
    """
    result = await session.execute(
        insert_for(session)(JobRun)
        .values(job_key=key, ran_at=at, detail=detail)
        .on_conflict_do_nothing(index_elements=["job_key"])
    )
    return bool(result.rowcount)


async def open_phase(*, session: AsyncSession, phase_id: int) -> None:
    """Open the phase; one already over (it would close the moment it opened, after downtime)
    is closed without ever opening, and nobody is told about it one phase at a time."""
    phase = await phases.get_phase(session=session, phase_id=phase_id)
    if phases.already_over(phase):
        await phases.skip_phase(session=session, phase_id=phase_id, actor_label=ACTOR)
        return
    await phases.open_phase(session=session, phase_id=phase_id, actor_label=ACTOR)


async def close_phase(*, session: AsyncSession, phase_id: int) -> None:
    await phases.close_phase(session=session, phase_id=phase_id, actor_label=ACTOR)


async def open_questionnaire(*, session: AsyncSession, questionnaire_id: int) -> None:
    await questionnaires.open_questionnaire(
        session=session, questionnaire_id=questionnaire_id, actor_label=ACTOR
    )


async def close_questionnaire(*, session: AsyncSession, questionnaire_id: int) -> None:
    await questionnaires.close_questionnaire(
        session=session, questionnaire_id=questionnaire_id, actor_label=ACTOR
    )


async def has_run(*, session: AsyncSession, key: str) -> bool:
    found = await session.exec(select(JobRun.id).where(JobRun.job_key == key))
    return found.first() is not None


async def last_follow_digest(*, session: AsyncSession, consultation_id: int) -> datetime | None:
    """Up to when the previous follow-up digest told the changes (None before the first): the
    next one tells what changed since, even when the scheduler missed a period."""
    prefix = f"{plan.FOLLOW_DIGEST}:{consultation_id}:"
    run = (
        await session.exec(
            select(JobRun)
            .where(JobRun.job_key.startswith(prefix))  # type: ignore[attr-defined]
            .order_by(JobRun.ran_at.desc())  # type: ignore[attr-defined]
        )
    ).first()
    if run is None or not run.detail.get("at"):
        return None
    return datetime.fromisoformat(run.detail["at"])


async def _batches(job: plan.PlannedJob, session: AsyncSession) -> list[list[int] | None]:
    """The participants a message job writes to, split into batches (None: one batch)."""
    if job.kind in (
        plan.REMINDER,
        plan.QUESTIONNAIRE_REMINDER,
        plan.FOLLOW_DIGEST,
        plan.FOLLOW_QUESTIONNAIRE,
    ):
        ids = await reminders.audience_ids(session=session, consultation_id=job.consultation_id)
    elif job.kind == plan.DIGEST:
        ids = list(
            (
                await session.exec(
                    select(Participant.id)
                    .where(Participant.consultation_id == job.consultation_id)
                    .where(Participant.email.is_not(None))  # type: ignore[union-attr]
                    .where(Participant.digest_cadence != Cadence.OFF)
                    .order_by(Participant.id)  # type: ignore[arg-type]
                )
            ).all()
        )
    else:
        return [None]
    return [ids[start : start + BATCH] for start in range(0, len(ids), BATCH)] or [[]]


async def _write(
    job: plan.PlannedJob, *, session: AsyncSession, now: datetime, batch: list[int] | None
) -> int:
    """Write one batch of the job's messages; returns how many were written."""
    if job.kind == plan.REMINDER:
        assert job.phase_id is not None and job.offset_hours is not None
        return await reminders.remind_phase(
            session=session,
            phase_id=job.phase_id,
            offset_hours=job.offset_hours,
            deadline=job.until,
            participant_ids=batch,
        )
    if job.kind == plan.QUESTIONNAIRE_REMINDER:
        assert job.questionnaire_id is not None
        return await reminders.remind_questionnaire(
            session=session, questionnaire_id=job.questionnaire_id, participant_ids=batch
        )
    if job.kind == plan.FINAL_PLAN:
        return await trace.send_final_plan(
            session=session, consultation_id=job.consultation_id, actor_label=ACTOR
        )
    if job.kind == plan.FOLLOW_DIGEST:
        return await followup.send_follow_digest(
            session=session,
            consultation_id=job.consultation_id,
            since=await last_follow_digest(session=session, consultation_id=job.consultation_id),
            until=job.at,
            participant_ids=batch,
        )
    if job.kind == plan.FOLLOW_QUESTIONNAIRE:
        assert job.number is not None
        await followup.open_round(
            session=session,
            consultation_id=job.consultation_id,
            number=job.number,
            final=job.final,
            participant_ids=batch,
        )
        return 0
    if job.kind == plan.PLAN_MISSING:
        return await followup.remind_missing_decisions(
            session=session, consultation_id=job.consultation_id, key=job.run_key or job.id
        )
    if job.kind == plan.PLAN_OVERDUE:
        return await followup.remind_overdue(
            session=session, consultation_id=job.consultation_id, key=job.run_key or job.id
        )
    if job.kind == plan.DIGEST:
        # `digests.enqueue_due_digests`, one batch at a time: each person's digest is decided
        # by the digest module (cadence, news); a batch already written is skipped on a rerun.
        people = (
            await session.exec(
                select(Participant)
                .where(Participant.id.in_(batch or []))  # type: ignore[union-attr]
                .order_by(Participant.id)  # type: ignore[arg-type]
            )
        ).all()
        written = 0
        for person in people:
            written += int(
                await digests.enqueue_digest(session=session, participant=person, now=now)
            )
        return written
    raise ValueError(f"{job.kind} is not a message job")


async def run_message_job(job: plan.PlannedJob, *, database: Database, now: datetime) -> Outcome:
    """Run one once-only job of the plan (a reminder, the final plan, a digest) as of `now`.

    Its messages are written in batches of participants, each batch in its own short
    transaction, so that a job for thousands of people never holds the database (on SQLite,
    the only writer's lock) for long. The job is recorded as run (`JobRun`) once every batch
    is written: after a crash in the middle it runs again, and the outbox dedupe keys skip
    the batches already written.
    """
    assert job.run_key is not None, job
    async with database.session() as session:
        if await has_run(session=session, key=job.run_key):
            return Outcome(job.id, ran=False)
        batches = await _batches(job, session)
    written = 0
    for batch in batches:
        async with database.session() as session:
            written += int(await _write(job, session=session, now=now, batch=batch) or 0)
    detail: dict[str, Any] = {
        "job": job.id,
        "consultation_id": job.consultation_id,
        "at": job.at.isoformat(),
        "messages": written,
        "batches": len(batches),
    }
    async with database.session() as session:
        ran = await claim_run(session=session, key=job.run_key, at=now, detail=detail)
    return Outcome(job.id, ran=ran, messages=written, detail=detail)
