"""`palabre actions`: add, link, merge and shortlist the actions participants will rank.

The command line acts as a coordinator: every decision is checked by the same rules as on the
bot and lands in the audit trail under the actor "cli". Each command runs in one transaction: a
refusal leaves the database as it was.
"""

from __future__ import annotations

from typing import Any

import typer

from consultation import actions
from consultation.common import get_consultation
from models import Action
from models.db import Database
from palabre.commands.common import CLI, ConsultationOption, JsonOption, _, echo_json, run

app = typer.Typer(help="The actions: add, link, merge, shortlist, list.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="actions")


def _codes(value: str | None) -> list[str]:
    return [part for part in (value or "").replace(",", " ").split() if part]


@app.command("add")
def actions_add(
    text: str = typer.Argument(..., help="The action, in one sentence or two."),
    answers: str | None = typer.Option(
        None, "--answers", help="The findings it answers, e.g. F1,F3."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Add an action (from a meeting, say), optionally answering some findings."""

    async def work(database: Database) -> str:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            action = await actions.add_action(
                session=session,
                consultation_id=target.id,
                by=None,
                text=text,
                finding_codes=_codes(answers),
                actor_label=CLI,
            )
            return action.code

    code = run(work)
    typer.echo(_("Action {code} added.").format(code=code))


@app.command("link")
def actions_link(
    code: str = typer.Argument(..., help="The action's code, e.g. A3."),
    answers: str = typer.Option(..., "--answers", help="The findings it answers, e.g. F1,F3."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Record that an action answers some findings (for the traceability of contributions)."""

    async def work(database: Database) -> tuple[str, list[str]]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            action = await actions.link_findings(
                session=session,
                consultation_id=target.id,
                code=code,
                finding_codes=_codes(answers),
                by=None,
                actor_label=CLI,
            )
            return action.code, await actions.finding_codes_of(session=session, action=action)

    action_code, linked = run(work)
    typer.echo(_("{code} answers {findings}.").format(code=action_code, findings=", ".join(linked)))


@app.command("merge")
def actions_merge(
    code: str = typer.Argument(..., help="The duplicate action's code."),
    into: str = typer.Option(..., "--into", help="The action it duplicates."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Merge a duplicate action into another."""

    async def work(database: Database) -> tuple[str, str]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            action = await actions.merge_action(
                session=session,
                consultation_id=target.id,
                code=code,
                into_code=into,
                by=None,
                actor_label=CLI,
            )
            merged_into = await actions.get_action(
                session=session, consultation_id=target.id, code=into
            )
            return action.code, merged_into.code

    source, destination = run(work)
    typer.echo(_("{code} merged into {into}.").format(code=source, into=destination))


@app.command("shortlist")
def actions_shortlist(
    codes: list[str] = typer.Argument(..., help="The actions to rank, e.g. A1 A4 A7."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Set the shortlist participants will rank: exactly these actions."""

    async def work(database: Database) -> list[str]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            chosen = await actions.shortlist(
                session=session,
                consultation_id=target.id,
                by=None,
                codes=[c for value in codes for c in _codes(value)],
                actor_label=CLI,
            )
            return [action.code for action in chosen]

    chosen = run(work)
    typer.echo(_("Shortlist: {codes}").format(codes=" ".join(chosen)))


@app.command("list")
def actions_list(
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """List the actions (without who proposed them) with their status and findings."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            rows = []
            for action in await actions.actions_of(session=session, consultation_id=target.id):
                into = None
                if action.merged_into_id is not None:
                    merged = await session.get(Action, action.merged_into_id)
                    into = merged.code if merged else None
                rows.append(
                    {
                        "code": action.code,
                        "status": action.status,
                        "merged_into": into,
                        "answers": await actions.finding_codes_of(session=session, action=action),
                        "text": action.text,
                    }
                )
            return rows

    rows = run(work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        status = row["status"] + (f" → {row['merged_into']}" if row["merged_into"] else "")
        text = " ".join(row["text"].split())
        answers = ",".join(row["answers"]) or "-"
        typer.echo(
            f"{row['code']:<5} {status:<14} [{answers}] {text[:80]}{'…' if len(text) > 80 else ''}"
        )
    typer.echo(_("{count} actions").format(count=len(rows)))
