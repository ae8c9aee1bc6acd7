"""`palabre plan`: the local government's answer to every action after the vote, and its progress.

The command line acts as a coordinator: the same rules as on the bot (a reason for a refusal or
a change, a note for late and abandoned), each change dated and audited under the actor "cli",
each command one transaction.
"""

from __future__ import annotations

from typing import Any

import typer

from consultation import followup, participants
from consultation.findings import normalize_code
from models.db import Database
from palabre.commands.common import CLI, ConsultationOption, JsonOption, echo_json, run, settings
from templates.render import render

plan_app = typer.Typer(
    help="The plan after the vote: the official answer to each action, and its progress.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add `palabre plan` to `palabre`."""
    app.add_typer(plan_app, name="plan")


def _show(document: dict[str, Any]) -> None:
    typer.echo(render("report/plan.txt", {"plan": document}, settings().locale).rstrip())


async def _plan_of(session: Any, consultation_id: int) -> dict[str, Any]:
    return await followup.plan_of(session=session, consultation_id=consultation_id)


@plan_app.command("decide")
def decide(
    code: str = typer.Argument(..., help="The action, e.g. A3."),
    decision: str = typer.Argument(
        ..., help="retained, retained-with-changes or not-retained (or their French)."
    ),
    reason: str | None = typer.Option(
        None, "--reason", help="Why; required for not-retained and retained-with-changes."
    ),
    wording: str | None = typer.Option(
        None, "--wording", help="The wording as retained (retained-with-changes)."
    ),
    lead: str | None = typer.Option(None, "--lead", help="The lead organisation."),
    due: str | None = typer.Option(None, "--due", help="Due date: 2028-06 or 2028-06-15."),
    milestone: list[str] | None = typer.Option(
        None, "--milestone", help="A milestone, in order (repeat the option); replaces the list."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Record (or change) the official answer to an action; members who took part in it hear
    of it in the next follow-up digest."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            target = await participants.get_consultation(session=session, slug=consultation)
            await followup.decide(
                session=session,
                consultation_id=target.id,
                code=code,
                decision=decision,
                reason=reason,
                wording=wording,
                lead=lead,
                due=due,
                milestones=milestone,
                actor_label=CLI,
            )
            return await _plan_of(session, target.id)

    document = run(work)
    _show(
        {
            **document,
            "actions": [a for a in document["actions"] if a["code"] == normalize_code(code)],
        }
    )


@plan_app.command("progress")
def progress(
    code: str = typer.Argument(..., help="The action, e.g. A3."),
    status: str | None = typer.Option(
        None, "--status", help="started, late, done or abandoned (or their French)."
    ),
    note: str | None = typer.Option(
        None, "--note", help="What is happening; required for late and abandoned."
    ),
    tick: list[int] | None = typer.Option(
        None, "--tick", help="The number of a milestone reached (repeat the option)."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Report where a retained action stands, and tick its milestones."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            target = await participants.get_consultation(session=session, slug=consultation)
            await followup.record_progress(
                session=session,
                consultation_id=target.id,
                code=code,
                status=status,
                note=note,
                tick=tick or [],
                actor_label=CLI,
            )
            return await _plan_of(session, target.id)

    document = run(work)
    _show(
        {
            **document,
            "actions": [a for a in document["actions"] if a["code"] == normalize_code(code)],
        }
    )


@plan_app.command("list")
def list_plan(
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """The whole plan: each action's answer, status, milestones and the members' view."""

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            target = await participants.get_consultation(session=session, slug=consultation)
            return await followup.plan_section(session=session, consultation_id=target.id)

    document = run(work)
    if as_json:
        echo_json(document)
        return
    _show(document)
