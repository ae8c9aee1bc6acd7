"""`palabre ballots`: record the paper ballots of a meeting alongside those cast on the bot.

The command line acts as a coordinator: every decision is checked by the same rules as on the
bot and lands in the audit trail under the actor "cli". Each command runs in one transaction: a
refusal leaves the database as it was.
"""

from __future__ import annotations

from pathlib import Path

import typer

from consultation import actions, files
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

app = typer.Typer(help="Paper ballots.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ballots")


@app.command("import")
def ballots_import(
    file: Path = typer.Argument(..., help="CSV: email,ranking (codes separated by spaces)."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Record paper ballots; a file with any rejected row imports nothing."""
    try:
        rows = actions.read_ballots_csv(files.read_text(file), str(file))
    except DefinitionError as exc:
        fail(str(exc))

    async def work(database: Database) -> actions.BallotImportReport:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            return await actions.import_ballots(
                session=session, consultation_id=target.id, rows=rows, by=None, actor_label=CLI
            )

    report = run(work)
    stop_on_rejected_lines(file, report.rejected)
    typer.echo(
        _("{imported} ballots imported ({replaced} replaced an earlier ballot).").format(
            imported=report.imported, replaced=report.replaced
        )
    )
