"""`palabre observations`: list the observations, moderate their scope, merge duplicates.

The command line acts as a coordinator: every decision is checked by the same rules as on the
bot and lands in the audit trail under the actor "cli". Each command runs in one transaction: a
refusal leaves the database as it was.
"""

from __future__ import annotations

from typing import Any

import typer

from consultation import observations
from consultation.common import get_consultation
from models import ScopeStatus
from models.db import Database
from palabre.commands.common import CLI, ConsultationOption, JsonOption, _, echo_json, run, when

app = typer.Typer(help="The observations: list, moderate, merge.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="observations")


@app.command("list")
def observations_list(
    pending: bool = typer.Option(False, "--pending", help="Only those not moderated yet."),
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """List the observations (without their authors) with their number and scope decision."""

    async def work(database: Database) -> tuple[str, list[dict[str, Any]]]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            found = await observations.observations_in(
                session=session,
                consultation_id=target.id,
                status=ScopeStatus.PENDING if pending else None,
            )
            return target.timezone, [
                {
                    "id": item.id,
                    "created_at": item.created_at.isoformat(),
                    "theme": item.theme,
                    "scope": item.scope_status,
                    "scope_reason": item.scope_reason,
                    "duplicate_of": item.duplicate_of_id,
                    "text": item.text,
                }
                for item in found
            ]

    timezone, rows = run(work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        status = row["scope"] + (f" → {row['duplicate_of']}" if row["duplicate_of"] else "")
        theme = f"[{row['theme']}] " if row["theme"] else ""
        text = " ".join(row["text"].split())
        typer.echo(
            f"{row['id']:>5}  {when(row['created_at'], timezone)}  {status:<14} "
            f"{theme}{text[:90]}{'…' if len(text) > 90 else ''}"
        )
    typer.echo(_("{count} observations").format(count=len(rows)))


@app.command("moderate")
def observations_moderate(
    observation_id: int = typer.Argument(..., help="The observation's number."),
    in_scope: bool = typer.Option(..., "--in/--out", help="In or out of the consultation's scope."),
    reason: str | None = typer.Option(
        None, "--reason", help="Why (required with --out: its author is told)."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Mark an observation in or out of scope; the author of one out of scope is told why."""

    async def work(database: Database) -> None:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            await observations.get_observation(
                session=session, observation_id=observation_id, consultation_id=target.id
            )
            await observations.decide_scope(
                session=session,
                observation_id=observation_id,
                by=None,
                in_scope=in_scope,
                reason=reason,
                actor_label=CLI,
            )

    run(work)
    if in_scope:
        typer.echo(_("Observation {id} is in scope.").format(id=observation_id))
    else:
        typer.echo(
            _("Observation {id} is out of scope; its author will be told why.").format(
                id=observation_id
            )
        )


@app.command("merge")
def observations_merge(
    observation_id: int = typer.Argument(..., help="The duplicate."),
    into: int = typer.Option(..., "--into", help="The observation it duplicates."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Merge a duplicate observation into another."""

    async def work(database: Database) -> None:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            await observations.get_observation(
                session=session, observation_id=observation_id, consultation_id=target.id
            )
            await observations.merge_observation(
                session=session,
                observation_id=observation_id,
                into_id=into,
                by=None,
                actor_label=CLI,
            )

    run(work)
    typer.echo(_("Observation {id} merged into {into}.").format(id=observation_id, into=into))
