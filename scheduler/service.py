"""The scheduler inside `palabre serve`: APScheduler decides when to wake up, the database what
to do.

`run_due()` is the whole of the scheduler's work: as of the clock's now, it makes every due
transition (the core's `phases.due_transitions` and `questionnaires.due_questionnaires`), then
runs every due once-only job of the plan (reminders, the final plan, digests), each in its own
transaction. It is what every APScheduler trigger calls, and what tests call after moving the
clock. Nothing is remembered between runs except in the database, so a restart, or another
instance taking over, carries on exactly where the last run stopped.

APScheduler (3.11, `AsyncIOScheduler`) holds two kinds of jobs: a tick every minute (leadership,
a resync of the plan, `run_due`), and one date job per upcoming entry of the plan, under the
plan's deterministic id, so that a transition happens on time rather than up to a minute late.
The plan is re-derived at every tick and the date jobs replaced only when its fingerprint
changes: a timetable edited by `palabre init` or by a coordinator on another instance is picked
up within a minute.

Only the leader (see `scheduler.leader`) runs jobs; the others tick, and take over within a
minute when the leader goes away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from consultation import clock, phases, questionnaires
from consultation.errors import UserError
from models.db import Database
from scheduler import jobs, plan
from scheduler.leader import Leadership, leadership_for

logger = logging.getLogger(__name__)

TICK_ID = "palabre:tick"
FIRST_TICK_ID = "palabre:first-tick"
TICK_SECONDS = 60.0
# Transitions can cascade (a phase closes, its questionnaire opens, the next phase opens): a
# bound on the rounds of one run keeps a bug from spinning.
MAX_ROUNDS = 20
# Date jobs kept in APScheduler at once; later ones are added as the earlier ones pass.
MAX_WAKEUPS = 500


@dataclass
class RunReport:
    """What one `run_due` did."""

    leader: bool
    transitions: list[str] = field(default_factory=list)
    messages: list[jobs.Outcome] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    # How long each job took (job id → seconds), for the logs and for capacity planning.
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ran(self) -> list[str]:
        return self.transitions + [outcome.job_id for outcome in self.messages if outcome.ran]

    @property
    def message_count(self) -> int:
        return sum(outcome.messages for outcome in self.messages)


class SchedulerService:
    """One instance's scheduler; `start()` inside `palabre serve`, `shutdown()` on the way out."""

    def __init__(
        self,
        database: Database,
        *,
        tick_seconds: float = TICK_SECONDS,
        leadership: Leadership | None = None,
    ) -> None:
        self.database = database
        self.tick_seconds = tick_seconds
        self.leadership = leadership or leadership_for(database)
        self._scheduler: AsyncIOScheduler | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._fingerprint: str | None = None
        # The last error of each failing job, so that a job refused every minute logs once.
        self._errors: dict[str, str] = {}

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start ticking; the first tick (catching up on anything missed) runs at once."""
        if self._scheduler is not None:
            return
        self._stopping = False
        scheduler = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        scheduler.add_job(
            self.tick, IntervalTrigger(seconds=self.tick_seconds), id=TICK_ID, name="tick"
        )
        # No trigger: run once, now.
        scheduler.add_job(self.tick, id=FIRST_TICK_ID, name="first tick")
        scheduler.start()
        self._scheduler = scheduler
        logger.info("scheduler started (tick every %gs)", self.tick_seconds)

    async def shutdown(self) -> None:
        """Stop: let a run in progress finish its transaction, then give up leadership."""
        self._stopping = True
        async with self._lock:
            scheduler, self._scheduler = self._scheduler, None
            if scheduler is not None and scheduler.running:
                scheduler.shutdown(wait=False)
        # APScheduler shuts down in a callback of the event loop: let it run.
        await asyncio.sleep(0)
        await self.leadership.release()
        self._fingerprint = None
        logger.info("scheduler stopped")

    @property
    def is_leader(self) -> bool:
        return self.leadership.is_leader

    def wakeups(self) -> dict[str, Any]:
        """The date jobs APScheduler holds now: plan id → run time (for tests and logs)."""
        if self._scheduler is None:
            return {}
        return {
            job.id: job.next_run_time
            for job in self._scheduler.get_jobs()
            if job.id not in (TICK_ID, FIRST_TICK_ID)
        }

    # --- the work ------------------------------------------------------------------------

    async def tick(self) -> RunReport:
        """The periodic job: keep or take leadership, run what is due, re-plan the wake-ups."""
        async with self._lock:
            if self._stopping:
                return RunReport(leader=False)
            if not await self.leadership.refresh():
                self._clear_wakeups()
                return RunReport(leader=False)
            report = await self._run_due()
            await self._resync()
            return report

    async def run_due(self) -> RunReport:
        """Do everything due as of `clock.now()`; a no-op unless this instance leads."""
        async with self._lock:
            if self._stopping or not await self.leadership.refresh():
                return RunReport(leader=False)
            return await self._run_due()

    async def resync(self) -> bool:
        """Re-derive the plan and replace the date jobs if it changed; returns whether it did."""
        async with self._lock:
            return await self._resync()

    async def _wake(self, job_id: str) -> None:
        """A date job of the plan has come: run what is due (it, and anything else)."""
        logger.debug("woken for %s", job_id)
        await self.tick()

    async def _run_due(self) -> RunReport:
        started = time.perf_counter()
        report = RunReport(leader=True)
        await self._transitions(report)
        await self._message_jobs(report)
        report.seconds = time.perf_counter() - started
        if report.ran or report.failed:
            logger.info(
                "scheduler run: %d transitions, %d jobs, %d messages, %d failed in %.2fs",
                len(report.transitions),
                len([outcome for outcome in report.messages if outcome.ran]),
                report.message_count,
                len(report.failed),
                report.seconds,
            )
        return report

    async def _transitions(self, report: RunReport) -> None:
        """Phases and questionnaires that open or close now, in rounds until none is left:
        closing a phase may make its questionnaire and the next phase due."""
        attempted: set[str] = set()
        for _ in range(MAX_ROUNDS):
            async with self.database.session() as session:
                moves = await phases.due_transitions(session=session)
                asked = await questionnaires.due_questionnaires(session=session)
            closes = [
                (
                    f"{plan.PHASE_CLOSE}:{p.consultation_id}:{p.id}",
                    self._transaction(partial(jobs.close_phase, phase_id=p.id)),
                )
                for verb, p in moves
                if verb == phases.CLOSE
            ]
            opens = [
                (
                    f"{plan.PHASE_OPEN}:{p.consultation_id}:{p.id}",
                    self._transaction(partial(jobs.open_phase, phase_id=p.id)),
                )
                for verb, p in moves
                if verb == phases.OPEN
            ]
            questionnaire_moves = [
                (
                    f"questionnaire-{verb}:{q.consultation_id}:{q.id}",
                    self._transaction(
                        partial(
                            jobs.open_questionnaire if verb == "open" else jobs.close_questionnaire,
                            questionnaire_id=q.id,
                        )
                    ),
                )
                for verb, q in asked
            ]
            # Closes first and alone: the questionnaire that follows a phase becomes due once it
            # has closed, and is sent before the next phase opens.
            todo = [move for move in closes if move[0] not in attempted]
            if not todo:
                todo = [move for move in questionnaire_moves + opens if move[0] not in attempted]
            if not todo:
                return
            for job_id, work in todo:
                attempted.add(job_id)
                if await self._attempt(job_id, report, work):
                    report.transitions.append(job_id)
        logger.error("scheduler: transitions still due after %d rounds", MAX_ROUNDS)

    async def _message_jobs(self, report: RunReport) -> None:
        now = clock.now()
        async with self.database.session() as session:
            due = [
                job
                for job in await plan.derive(session=session, now=now)
                if job.due and job.run_key is not None
            ]
        for job in due:
            work = partial(jobs.run_message_job, job, database=self.database, now=now)
            outcome = await self._attempt(job.id, report, work)
            if outcome:
                report.messages.append(outcome)

    def _transaction(self, body: Any) -> Any:
        """`body(session=...)` as one transaction of its own."""

        async def work() -> Any:
            async with self.database.session() as session:
                return await body(session=session)

        return work

    async def _attempt(self, job_id: str, report: RunReport, work: Any) -> Any:
        """Run one job; a failure is reported and logged (once), not raised."""
        started = time.perf_counter()
        try:
            result = await work()
        except UserError as exc:
            # The core refused (another phase still open, a closed questionnaire...): the rules
            # say no, and a coordinator must decide. Retried at every tick, logged once.
            self._failed(job_id, f"{exc.code} {exc.params}", report, logging.WARNING)
            return None
        except Exception as exc:
            self._failed(job_id, f"{type(exc).__name__}: {exc}", report, logging.ERROR, exc)
            return None
        finally:
            report.timings[job_id] = time.perf_counter() - started
        self._errors.pop(job_id, None)
        logger.info("scheduler job %s done in %.2fs", job_id, report.timings[job_id])
        return result if result is not None else True

    def _failed(
        self,
        job_id: str,
        error: str,
        report: RunReport,
        level: int,
        exc: BaseException | None = None,
    ) -> None:
        report.failed.append((job_id, error))
        if self._errors.get(job_id) != error:
            self._errors[job_id] = error
            logger.log(level, "scheduler job %s failed: %s", job_id, error, exc_info=exc)

    # --- wake-ups ------------------------------------------------------------------------

    async def _resync(self) -> bool:
        if self._scheduler is None:
            return False
        now = clock.now()
        async with self.database.session() as session:
            planned = await plan.derive(session=session, now=now)
        upcoming = [job for job in planned if job.at > now and not job.due][:MAX_WAKEUPS]
        current = plan.fingerprint(upcoming)
        if current == self._fingerprint:
            return False
        self._fingerprint = current
        wanted = {job.id: job for job in upcoming}
        for existing in self._scheduler.get_jobs():
            if existing.id not in (TICK_ID, FIRST_TICK_ID) and existing.id not in wanted:
                existing.remove()
        for job in upcoming:
            self._scheduler.add_job(
                self._wake,
                DateTrigger(run_date=job.at),
                args=[job.id],
                id=job.id,
                name=job.id,
                replace_existing=True,
            )
        logger.info("scheduler plan: %d upcoming jobs (fingerprint %s)", len(upcoming), current)
        return True

    def _clear_wakeups(self) -> None:
        if self._scheduler is None:
            return
        for existing in self._scheduler.get_jobs():
            if existing.id not in (TICK_ID, FIRST_TICK_ID):
                existing.remove()
        self._fingerprint = None
