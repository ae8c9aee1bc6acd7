"""`palabre findings`: write the draft findings from a file, publish them, list them.

The command line acts as a coordinator: every decision is checked by the same rules as on the
bot and lands in the audit trail under the actor "cli". Each command runs in one transaction: a
refusal leaves the database as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from consultation import files, findings
from consultation.common import get_consultation
from consultation.errors import DefinitionError, UserError
from models.db import Database
from palabre.commands.common import (
    CLI,
    ConsultationOption,
    JsonOption,
    _,
    echo_json,
    fail,
    run,
    settings,
)
from templates.render import render_error

app = typer.Typer(help="The draft findings: write, publish, list.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="findings")


def _read_findings(file: Path) -> list[findings.DraftSpec]:
    try:
        return findings.parse_findings_file(files.read_text(file), str(file))
    except DefinitionError as exc:
        fail(str(exc))


def _apply_findings(file: Path, consultation: str | None, publish: bool, as_json: bool) -> None:
    drafts = _read_findings(file)

    async def work(database: Database) -> findings.DraftReport:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            try:
                return await findings.apply_drafts(
                    session=session,
                    consultation_id=target.id,
                    drafts=drafts,
                    by=None,
                    publish=publish,
                    actor_label=CLI,
                )
            except UserError as exc:
                draft = getattr(exc, "draft", None)
                if draft is None:
                    raise
                problem = render_error(exc.code, exc.params, settings().locale)
                raise DefinitionError(str(file), f"line {draft.line}", problem) from exc

    report = run(work)
    if as_json:
        echo_json(report.as_dict())
        return
    if report.created:
        typer.echo(_("New: {codes}").format(codes=" ".join(report.created)))
    for item in report.revised:
        typer.echo(
            _("Revised: {code} (version {version}, {asked} people asked to answer again)").format(
                code=item["code"], version=item["version"], asked=item["asked_again"]
            )
        )
    if report.relinked:
        typer.echo(_("Observations updated: {codes}").format(codes=" ".join(report.relinked)))
    if report.unchanged:
        typer.echo(_("Unchanged: {codes}").format(codes=" ".join(report.unchanged)))
    if publish:
        if report.published:
            typer.echo(
                _("Published: {codes} ({told} participants notified)").format(
                    codes=" ".join(report.published), told=report.told
                )
            )
        else:
            typer.echo(_("Nothing new to publish."))


@app.command("publish")
def findings_publish(
    file: Path = typer.Argument(..., help="The findings file (see docs/findings-format.md)."),
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """Create or revise the findings FILE describes, then publish them (safe to repeat)."""
    _apply_findings(file, consultation, publish=True, as_json=as_json)


@app.command("draft")
def findings_draft(
    file: Path = typer.Argument(..., help="The findings file (see docs/findings-format.md)."),
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """Create or revise the findings FILE describes without publishing the new ones."""
    _apply_findings(file, consultation, publish=False, as_json=as_json)


@app.command("list")
def findings_list(
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """List every finding with its status, version and observations."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            rows = []
            for finding in await findings.findings_of(session=session, consultation_id=target.id):
                version = await findings.current_text(session=session, finding=finding)
                rows.append(
                    {
                        "code": finding.code,
                        "status": finding.status,
                        "version": version.version,
                        "observations": await findings.observation_ids_of(
                            session=session, finding=finding
                        ),
                        "text": version.text,
                    }
                )
            return rows

    rows = run(work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        text = " ".join(row["text"].split())
        links = ",".join(str(i) for i in row["observations"]) or "-"
        typer.echo(
            f"{row['code']:<5} {row['status']:<10} v{row['version']:<3} [{links}] "
            f"{text[:80]}{'…' if len(text) > 80 else ''}"
        )
    typer.echo(_("{count} findings").format(count=len(rows)))
