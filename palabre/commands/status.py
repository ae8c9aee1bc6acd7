"""`palabre status`: the phases with the dates they actually ran, and participation.

A phase opened early or extended shows when it really opened and when it now closes; only the
phases still to come show their planned dates. Coordinators are not counted among the invited.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer

from palabre.commands.common import (
    ConsultationOption,
    _,
    category_names,
    echo_json,
    echo_table,
    run,
    settings,
)
from palabre.commands.words import phase_name, status_name

if TYPE_CHECKING:
    from models import Consultation, Phase
    from models.db import Database

COLUMNS = ("invited", "telegram", "email_only", "consented", "contributed")


def register(root: typer.Typer) -> None:
    root.command("status")(status)


def status(
    consultation: str | None = ConsultationOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (documented in README)."),
) -> None:
    """Show the phases with their dates and state, and participation by category."""
    from sqlmodel import select

    from consultation.common import get_consultation
    from consultation.metrics import participation_by_category
    from models import Phase

    async def work(database: Database) -> dict:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            phases = (
                await session.exec(
                    select(Phase).where(Phase.consultation_id == target.id).order_by(Phase.position)
                )
            ).all()
            by_category = await participation_by_category(session=session, consultation=target)
            return status_document(target, phases, by_category)

    document = run(work)
    if as_json:
        echo_json(document)
        return
    typer.echo(f"{document['title']} ({document['slug']})")
    typer.echo(document["question"])
    typer.echo("")
    zone = ZoneInfo(document["timezone"])

    def shown(value: str) -> str:
        return f"{datetime.fromisoformat(value).astimezone(zone):%Y-%m-%d %H:%M}"

    echo_table(
        ["", _("phase"), _("state"), _("from"), _("until")],
        [
            [
                f"{phase['position']}.",
                phase_name(phase["kind"]),
                status_name(phase["status"]),
                shown(phase["started"]),
                shown(phase["ends"]),
            ]
            for phase in document["phases"]
        ],
    )
    typer.echo(_("Times in {zone}.").format(zone=document["timezone"]))
    typer.echo("")
    headers = [
        _("invited"),
        _("on Telegram"),
        _("by email"),
        _("consented"),
        _("contributed"),
    ]
    names = category_names(document["categories"], settings().locale)
    rows = [
        [names.get(key, key), *(row[column] for column in COLUMNS)]
        for key, row in document["participation"].items()
    ]
    rows.append([_("total"), *(document["totals"][column] for column in COLUMNS)])
    echo_table([_("category"), *headers], rows, right=set(range(1, len(COLUMNS) + 1)))
    if document["totals"]["invited"] and not document["totals"]["consented"]:
        typer.echo(
            _(
                "Nobody has consented yet: people join by answering their invitation "
                "(palabre invite sends them by email)."
            )
        )


def status_document(
    target: Consultation, phases: list[Phase], by_category: dict[str, Any]
) -> dict[str, Any]:
    """The status as plain JSON (documented in the README)."""
    from consultation.clock import now

    return {
        "slug": target.slug,
        "title": target.title,
        "question": target.question,
        "timezone": target.timezone,
        "now": now().isoformat(),
        "phases": [
            {
                "position": phase.position,
                "kind": phase.kind,
                "status": phase.status,
                "opens_at": phase.opens_at.isoformat(),
                "closes_at": phase.closes_at.isoformat(),
                "min_days": phase.min_duration_s / 86400,
                "max_days": phase.max_duration_s / 86400,
                "opened_at": phase.opened_at.isoformat() if phase.opened_at else None,
                "closed_at": phase.closed_at.isoformat() if phase.closed_at else None,
                # What happened where it has happened, the plan for the rest.
                "started": (phase.opened_at or phase.opens_at).isoformat(),
                "ends": (phase.closed_at or phase.closes_at).isoformat(),
            }
            for phase in phases
        ],
        "categories": {category["key"]: category["label"] for category in target.categories},
        "participation": by_category,
        "totals": {
            key: sum(row[key] for row in by_category.values())
            for key in ("invited", "telegram", "email_only", "consented", "contributed")
        },
    }
