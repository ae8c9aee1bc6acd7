"""`palabre init` and `palabre db upgrade`: the consultation's definition and the schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from consultation import definition
from palabre.commands.common import _, fail, migrate, run, settings

if TYPE_CHECKING:
    from models.db import Database

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.command("init")(init)
    root.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version (safe to repeat)."""
    migrate(settings().database_url)
    typer.echo(_("Database schema is up to date."))


def init(
    file: Path = typer.Argument(..., help="The consultation definition (TOML)."),
    allow_past: bool = typer.Option(
        False, "--allow-past", help="Accept phases whose closing date is already past."
    ),
) -> None:
    """Create the consultation FILE describes, or update the one with the same slug."""
    spec = _load_definition(file)

    async def work(database: Database) -> tuple[str, bool]:
        async with database.session() as session:
            consultation, changed = await definition.apply(
                session=session, spec=spec, allow_past=allow_past
            )
            return consultation.slug, changed

    slug, changed = run(work, upgrade=True)
    if changed:
        typer.echo(_("Consultation {slug} saved.").format(slug=slug))
    else:
        typer.echo(_("Consultation {slug} is already up to date.").format(slug=slug))


def _load_definition(file: Path) -> definition.ConsultationSpec:
    try:
        return definition.load(file)
    except definition.DefinitionError as exc:
        fail(str(exc))
