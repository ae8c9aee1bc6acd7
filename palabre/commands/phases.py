"""`palabre phase`: open, close or extend a phase of the timetable.

The same rules hold as on the bot: a phase does not close before its minimum duration, nor run
past its maximum, unless forced with a reason; every decision lands in the audit trail under the
actor "cli". Each command runs in one transaction: a refusal leaves the database as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import typer

from consultation import phases
from consultation.clock import as_utc
from consultation.common import get_consultation
from models.db import Database
from palabre.commands.common import CLI, ConsultationOption, _, fail, run, when
from palabre.commands.words import phase_name

ForceOption = typer.Option(
    False, "--force", help="Override the minimum or maximum duration (needs --reason; logged)."
)
ReasonOption = typer.Option(None, "--reason", help="Why: kept in the audit trail.")

app = typer.Typer(help="Open, close or extend a phase of the timetable.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="phase")


def parse_until(value: str, timezone: str) -> datetime:
    """`2027-02-10 18:00` (the consultation's time zone) or an ISO time with its offset."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        fail(
            _("--until: {value!r} is not a date and time; write it as 2027-02-10 18:00.").format(
                value=value
            )
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return as_utc(parsed)


async def _open_now(database: Database, consultation: str | None) -> str | None:
    """The kind of the phase open now, if any."""
    async with database.session() as session:
        target = await get_consultation(session=session, slug=consultation)
        current = await phases.current_phase(session=session, consultation_id=target.id)
        return current.kind if current is not None else None


def _close_first(kind: str, consultation: str | None, options: dict[str, Any]) -> str | None:
    """Opening a phase while another is open: with --force, offer to close that one first in
    the same command (both changes logged with the reason); the kind to close, or None."""
    current = run(lambda database: _open_now(database, consultation))
    if current is None or current == kind:
        return None
    if not options["force"]:
        fail(
            _(
                "The phase “{current}” is still open. To close it and open “{phase}” in one "
                'command: palabre phase open {kind} --force --reason "why".'
            ).format(current=phase_name(current), phase=phase_name(kind), kind=kind)
        )
    if not (options["reason"] or "").strip():
        fail(_("--force needs a --reason: it is kept in the audit trail."))
    if not options.get("yes"):
        typer.confirm(
            _("The phase “{current}” is still open: close it now and open “{phase}”?").format(
                current=phase_name(current), phase=phase_name(kind)
            ),
            abort=True,
        )
    return current


def _phase_command(verb: str, kind: str, consultation: str | None, **options: Any) -> None:
    close_first = _close_first(kind, consultation, options) if verb == "open" else None

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            if close_first is not None:
                previous = await phases.find_phase(
                    session=session, consultation_id=target.id, kind=close_first
                )
                await phases.close_phase(
                    session=session,
                    phase_id=previous.id,
                    actor_label=CLI,
                    force=True,
                    reason=options["reason"],
                )
            phase = await phases.find_phase(session=session, consultation_id=target.id, kind=kind)
            common = {
                "session": session,
                "phase_id": phase.id,
                "actor_label": CLI,
                "force": options["force"],
                "reason": options["reason"],
            }
            if verb == "open":
                phase = await phases.open_phase(**common)
            elif verb == "close":
                phase = await phases.close_phase(**common)
            else:
                until = parse_until(options["until"], target.timezone)
                phase = await phases.extend_phase(until=until, **common)
            return {
                "kind": phase.kind,
                "status": phase.status,
                "closes_at": phase.closes_at.isoformat(),
                "closed_at": phase.closed_at.isoformat() if phase.closed_at else None,
                "timezone": target.timezone,
            }

    done = run(work)
    if close_first is not None:
        typer.echo(_("The phase “{phase}” is closed.").format(phase=phase_name(close_first)))
    closes = when(done["closes_at"], done["timezone"])
    if verb == "open":
        message = _("The phase “{phase}” is open until {closes} ({timezone}).")
    elif verb == "close":
        message = _("The phase “{phase}” is closed.")
    else:
        message = _("The phase “{phase}” now closes on {closes} ({timezone}).")
    typer.echo(
        message.format(phase=phase_name(done["kind"]), closes=closes, timezone=done["timezone"])
    )


@app.command("open")
def phase_open(
    kind: str = typer.Argument(..., help="observe, review, propose, rank or evaluate."),
    force: bool = ForceOption,
    reason: str | None = ReasonOption,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Open the next phase of KIND and announce it to every participant.

    If another phase is still open, --force with a --reason closes it first, in the same
    command (asked for confirmation unless --yes; both changes are logged with the reason).
    """
    _phase_command("open", kind, consultation, force=force, reason=reason, yes=yes)


@app.command("close")
def phase_close(
    kind: str = typer.Argument(..., help="observe, review, propose, rank or evaluate."),
    force: bool = ForceOption,
    reason: str | None = ReasonOption,
    consultation: str | None = ConsultationOption,
) -> None:
    """Close the open phase of KIND (refused before its minimum duration unless --force)."""
    _phase_command("close", kind, consultation, force=force, reason=reason)


@app.command("extend")
def phase_extend(
    kind: str = typer.Argument(..., help="observe, review, propose, rank or evaluate."),
    until: str = typer.Option(..., "--until", help="New deadline, e.g. 2027-02-10 18:00."),
    force: bool = ForceOption,
    reason: str | None = ReasonOption,
    consultation: str | None = ConsultationOption,
) -> None:
    """Move the deadline of a phase of KIND (a reason is required; past the maximum: --force)."""
    _phase_command("extend", kind, consultation, force=force, reason=reason, until=until)
