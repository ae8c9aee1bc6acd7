"""`palabre meeting import`: what a meeting or workshop said, into the consultation.

One CSV file per meeting, one line per card, show of hands or paper ballot, each with only the
category of the person who gave it (see docs/meeting-format.md). The meeting's date, place and
attendance come as options. A file with any bad line imports nothing and names each bad line,
as `palabre ballots import` does.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from consultation import files, meetings
from consultation.common import get_consultation
from consultation.errors import DefinitionError
from models.db import Database
from palabre.commands.common import (
    CLI,
    ConsultationOption,
    _,
    fail,
    run,
    stop_on_rejected_lines,
)

app = typer.Typer(
    help="What a meeting or a workshop said, recorded anonymously.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="meeting")


@app.command("import")
def meeting_import(
    file: Path = typer.Argument(
        ..., help="CSV: kind,category,finding,choice,ranking,text (docs/meeting-format.md)."
    ),
    held_on: str = typer.Option(..., "--date", help="The day of the meeting, e.g. 2027-03-12."),
    place: str = typer.Option(..., "--place", help="Where it was held."),
    attendance: str = typer.Option(
        ..., "--attendance", help="People present by category, e.g. association=12,elected=3."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Record a meeting's observations, stances and paper ballots; a bad line imports nothing."""
    try:
        day = date.fromisoformat(held_on.strip())
    except ValueError:
        fail(_("--date: {value!r} is not a date; write it as 2027-03-12.").format(value=held_on))
    try:
        spec = meetings.MeetingSpec(
            held_on=day, place=place, attendance=meetings.parse_attendance(attendance)
        )
        rows = meetings.read_meeting_csv(files.read_text(file), str(file))
    except DefinitionError as exc:
        fail(str(exc))

    async def work(database: Database) -> meetings.MeetingImportReport:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            return await meetings.import_meeting(
                session=session,
                consultation_id=target.id,
                meeting=spec,
                rows=rows,
                by=None,
                actor_label=CLI,
            )

    report = run(work)
    stop_on_rejected_lines(file, report.rejected)
    typer.echo(
        _(
            "Meeting of {date} at {place} recorded: {observations} observations, "
            "{stances} answers to findings, {ballots} ballots."
        ).format(
            date=day.isoformat(),
            place=spec.place,
            observations=report.observations,
            stances=report.stances,
            ballots=report.ballots,
        )
    )
