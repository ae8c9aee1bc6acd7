"""`palabre schedule`: what the scheduler will do next, and when, so a coordinator can check the
timetable before launching (and at any time after).

The plan is the one the running scheduler derives (`scheduler.plan`), with the number of people
each step will write to: exact for what is decided now (reminders of the open phase go to those
who have not answered yet), an upper bound for what lies further ahead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import typer
from babel.dates import format_datetime
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock, outbox, reminders
from consultation.common import get_consultation, people_to_tell
from models import Cadence, Channel, Consultation, Participant, Phase, PhaseStatus, Questionnaire
from models.db import Database
from palabre.commands.common import _, echo_json, ngettext, run, settings
from palabre.commands.words import phase_name
from scheduler import plan
from templates.render import localized

DEFAULT_LIMIT = 25


class _Audience:
    """Recipient counts, each computed once per command."""

    def __init__(self, session: AsyncSession, consultation: Consultation) -> None:
        self.session = session
        self.consultation = consultation
        self._cache: dict[Any, int] = {}

    async def _once(self, key: Any, compute: Any) -> int:
        if key not in self._cache:
            self._cache[key] = await compute()
        return self._cache[key]

    async def everyone(self) -> int:
        async def compute() -> int:
            people = await people_to_tell(
                session=self.session, consultation_id=self.consultation.id
            )
            return sum(1 for person in people if outbox.channel_for(person))

        return await self._once("everyone", compute)

    async def answerers(self) -> int:
        """Participants (not coordinators) Palabre can write to: everyone who may answer."""

        async def compute() -> int:
            people = await people_to_tell(
                session=self.session, consultation_id=self.consultation.id, coordinators=False
            )
            return sum(1 for person in people if outbox.channel_for(person))

        return await self._once("answerers", compute)

    async def reminded(self, phase: Phase) -> int:
        async def compute() -> int:
            return len(await reminders.phase_recipients(session=self.session, phase=phase))

        return await self._once(("phase", phase.id), compute)

    async def unfinished(self, questionnaire: Questionnaire) -> int:
        async def compute() -> int:
            return len(
                await reminders.questionnaire_recipients(
                    session=self.session, questionnaire=questionnaire
                )
            )

        return await self._once(("unfinished", questionnaire.id), compute)

    async def consented(self) -> int:
        """Participants who have said yes: no one else is written to but their invitation."""

        async def compute() -> int:
            people = await people_to_tell(
                session=self.session, consultation_id=self.consultation.id, coordinators=False
            )
            return len(people)

        return await self._once("consented", compute)

    async def digest_readers(self, weekly_too: bool) -> int:
        async def compute() -> int:
            people = (
                await self.session.exec(
                    select(Participant).where(Participant.consultation_id == self.consultation.id)
                )
            ).all()
            cadences = {Cadence.DAILY, Cadence.WEEKLY} if weekly_too else {Cadence.DAILY}
            return sum(
                1
                for person in people
                if person.digest_cadence in cadences and outbox.channel_for(person) == Channel.EMAIL
            )

        return await self._once(("digest", weekly_too), compute)


async def _recipients(
    job: plan.PlannedJob, audience: _Audience, state: plan.ConsultationState
) -> tuple[int | None, bool]:
    """(how many people the job writes to, whether that number is exact rather than at most)."""
    phase = next((p for p in state.phases if p.id == job.phase_id), None)
    questionnaire = next((q for q in state.questionnaires if q.id == job.questionnaire_id), None)
    if job.kind in (plan.PHASE_OPEN, plan.PHASE_CLOSE):
        return await audience.everyone(), True
    if job.kind == plan.REMINDER and phase is not None:
        if phase.status == PhaseStatus.OPEN:
            return await audience.reminded(phase), True
        return await audience.answerers(), False
    if job.kind == plan.QUESTIONNAIRE_OPEN:
        # Who took part in the step is known only once it is over: at most every participant.
        return await audience.answerers(), False
    if job.kind == plan.QUESTIONNAIRE_REMINDER and questionnaire is not None:
        if questionnaire.status == "open":
            return await audience.unfinished(questionnaire), True
        return await audience.answerers(), False
    if job.kind == plan.FINAL_PLAN:
        return await audience.answerers(), True
    if job.kind == plan.DIGEST:
        weekday = state.rules.digest_weekday
        weekly_too = job.at.astimezone(state.zone).weekday() == weekday
        return await audience.digest_readers(weekly_too), False
    if job.kind in (plan.FOLLOW_DIGEST, plan.FOLLOW_QUESTIONNAIRE):
        # Only the members who took part in an action that changed, or that is retained.
        return await audience.answerers(), False
    return None, True


def describe(job: plan.PlannedJob, titles: dict[str, str] | None = None) -> str:
    """One line saying what the job does, in the coordinator's language; `titles` names the
    questionnaires (key → title)."""
    subject = job.subject or ""
    title = (titles or {}).get(subject, subject)
    if job.kind == plan.PHASE_OPEN:
        return _("opens the phase “{phase}”").format(phase=phase_name(subject))
    if job.kind == plan.PHASE_CLOSE:
        return _("closes the phase “{phase}”").format(phase=phase_name(subject))
    if job.kind == plan.REMINDER:
        return _("reminds those who have not answered, {hours} h before “{phase}” closes").format(
            hours=job.offset_hours, phase=phase_name(subject)
        )
    if job.kind == plan.QUESTIONNAIRE_OPEN:
        return _("opens the questionnaire “{title}”").format(title=title)
    if job.kind == plan.QUESTIONNAIRE_REMINDER:
        return _("reminds those who have not finished the questionnaire “{title}”").format(
            title=title
        )
    if job.kind == plan.QUESTIONNAIRE_CLOSE:
        return _("closes the questionnaire “{title}”").format(title=title)
    if job.kind == plan.FINAL_PLAN:
        return _("sends the final plan, with what became of each person's contributions")
    if job.kind == plan.DIGEST:
        return _("sends the email digests that have something to say")
    if job.kind == plan.FOLLOW_DIGEST:
        return _("tells each member what changed in the actions they took part in")
    if job.kind == plan.FOLLOW_QUESTIONNAIRE:
        return _("asks the members whether the actions progress as announced")
    if job.kind == plan.PLAN_MISSING:
        return _("reminds the coordinators of the decisions still missing")
    if job.kind == plan.PLAN_OVERDUE:
        return _("reminds the coordinators of actions past their due date")
    return job.kind


async def schedule_document(
    *, session: AsyncSession, consultation: Consultation, limit: int = DEFAULT_LIMIT
) -> dict[str, Any]:
    """The plan of one consultation as plain JSON (documented in the README)."""
    now = clock.now()
    zone = ZoneInfo(consultation.timezone)
    states = await plan.load(session=session, consultation_id=consultation.id)
    state = states[0]
    jobs = await plan.derive(session=session, now=now, consultation_id=consultation.id)
    all_jobs, total = jobs, len(jobs)
    if limit > 0:
        jobs = jobs[:limit]
    locale = settings().locale
    titles = {item.key: localized(item.title, locale) for item in state.questionnaires}
    audience = _Audience(session, consultation)
    rows = []
    for job in jobs:
        count, exact = await _recipients(job, audience, state)
        rows.append(
            {
                "id": job.id,
                "kind": job.kind,
                "at": job.at.astimezone(zone).isoformat(),
                "due_now": job.due,
                "subject": job.subject,
                "offset_hours": job.offset_hours,
                "waiting_for": job.waiting_for,
                "recipients": count,
                "recipients_exact": exact,
                "description": describe(job, titles),
            }
        )
    return {
        "slug": consultation.slug,
        "title": consultation.title,
        "timezone": consultation.timezone,
        "now": now.astimezone(zone).isoformat(),
        "jobs": rows,
        "total": total,
        "left_out": total - len(rows),
        "last_at": all_jobs[-1].at.astimezone(zone).isoformat() if all_jobs else None,
        "consented": await audience.consented(),
    }


def _when(value: str, locale: str) -> str:
    return format_datetime(datetime.fromisoformat(value), "EEE d MMM y, HH:mm", locale=locale)


def register(root: typer.Typer) -> None:
    root.command("schedule")(schedule)


def schedule(
    consultation: str | None = typer.Option(
        None, "--consultation", "-c", help="Consultation slug (needed only when several)."
    ),
    limit: int = typer.Option(
        DEFAULT_LIMIT, "--limit", "-n", help="How many steps to show (0: all)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (documented in README)."),
) -> None:
    """Show what the scheduler will do next and when, in the consultation's time zone."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            return await schedule_document(session=session, consultation=target, limit=limit)

    document = run(work)
    if as_json:
        echo_json(document)
        return
    locale = settings().locale
    typer.echo(f"{document['title']} ({document['slug']})")
    typer.echo(
        _("Times in {zone}; now: {now}.").format(
            zone=document["timezone"], now=_when(document["now"], locale)
        )
    )
    if not document["jobs"]:
        typer.echo(_("Nothing left to do: every phase and questionnaire is closed."))
        return
    typer.echo("")
    for row in document["jobs"]:
        line = f"  {_when(row['at'], locale):<26} {row['description']}"
        if row["recipients"] is not None:
            count = row["recipients"]
            people = (
                ngettext("{count} person", "{count} people", count)
                if row["recipients_exact"]
                else ngettext("up to {count} person", "up to {count} people", count)
            ).format(count=count)
            line += f" ({people})"
        if row["due_now"]:
            line += "  " + _("[due now]")
        elif row["waiting_for"]:
            line += "  " + _("[once “{phase}” has closed]").format(
                phase=phase_name(row["waiting_for"])
            )
        typer.echo(line)
    if document["left_out"]:
        typer.echo(
            ngettext(
                "… and {count} more step, until {last} (palabre schedule --limit 0 shows all).",
                "… and {count} more steps, until {last} (palabre schedule --limit 0 shows all).",
                document["left_out"],
            ).format(count=document["left_out"], last=_when(document["last_at"], locale))
        )
    if not document["consented"]:
        typer.echo(
            _(
                "Nobody has consented yet, so the counts are 0: people join by answering "
                "their invitation (palabre invite sends them by email)."
            )
        )
