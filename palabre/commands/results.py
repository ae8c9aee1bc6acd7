"""`palabre results`: the results in short on the terminal, as JSON, or as the meeting brief.

The figures come from `consultation.results`, the brief's arrangement of them from
`consultation.brief`; this module only prints them or renders the brief's templates to files
(the PDF is the HTML page laid out by `templates.pdf`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from consultation.brief import brief_context
from consultation.common import get_consultation
from consultation.results import results as results_document
from models.db import Database
from palabre.commands.common import (
    ConsultationOption,
    _,
    category_names,
    echo_json,
    echo_table,
    fail,
    ngettext,
    run,
    settings,
)
from templates.pdf import pdf_from_html
from templates.render import render


def register(root: typer.Typer) -> None:
    root.command("results")(results)


class BriefLocale(StrEnum):
    FR = "fr"
    EN = "en"


def results(
    consultation: str | None = ConsultationOption,
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON (documented in docs/results-json.md)."
    ),
    html: Path | None = typer.Option(
        None, "--html", help="Write the meeting brief to FILE as a printable HTML page."
    ),
    markdown: Path | None = typer.Option(
        None, "--markdown", help="Write the meeting brief to FILE in Markdown (for the minutes)."
    ),
    pdf: Path | None = typer.Option(
        None, "--pdf", help="Write the meeting brief to FILE as a PDF (A4), to print or project."
    ),
    locale: BriefLocale | None = typer.Option(
        None, "--locale", help="Language of the meeting brief (default: PALABRE_LOCALE)."
    ),
) -> None:
    """Findings with their confirmation rates, the ranking of the actions, participation.

    With --html, --markdown or --pdf, write the meeting brief instead of printing the short
    form.
    """

    async def work(database: Database) -> tuple[dict[str, Any], dict[str, list[str]]]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            document = await results_document(session=session, consultation_id=target.id)
            return document, {"in": list(target.scope_in), "out": list(target.scope_out)}

    document, scope = run(work)
    briefs = [
        (path, name)
        for path, name in ((html, "brief.html"), (markdown, "brief.md"), (pdf, "brief.pdf"))
        if path
    ]
    if briefs:
        language = locale.value if locale else settings().locale
        context = brief_context(document, scope_in=scope["in"], scope_out=scope["out"])
        # Make every file before writing any: a template error leaves no file half-replaced.
        made: list[tuple[Path, bytes]] = []
        page = render("report/brief.html", context, language) if html or pdf else ""
        for path, name in briefs:
            if name == "brief.pdf":
                made.append((path, pdf_from_html(page)))
            elif name == "brief.html":
                made.append((path, (page + "\n").encode("utf-8")))
            else:
                made.append((path, (render("report/brief.md", context, language) + "\n").encode()))
        for path, data in made:
            try:
                path.write_bytes(data)
            except OSError as exc:
                fail(_("Cannot write {file}: {reason}").format(file=path, reason=exc.strerror))
            typer.echo(_("Meeting brief written to {file}.").format(file=path), err=as_json)
    if as_json:
        echo_json(document)
    elif not briefs:
        _print_results(document)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _answers(item: dict[str, Any]) -> str:
    """ "3 confirmations, 1 contestation, 0 abstention", each number with its own plural."""
    return ", ".join(
        [
            ngettext("{count} confirmation", "{count} confirmations", item["confirm"]).format(
                count=item["confirm"]
            ),
            ngettext("{count} contestation", "{count} contestations", item["contest"]).format(
                count=item["contest"]
            ),
            ngettext("{count} abstention", "{count} abstentions", item["abstain"]).format(
                count=item["abstain"]
            ),
        ]
    )


def _print_results(document: dict[str, Any]) -> None:
    echo = typer.echo
    info = document["consultation"]
    names = category_names(
        {category["key"]: category["label"] for category in info["categories"]}, settings().locale
    )
    echo(f"{info['title']} ({info['slug']})")
    echo("")
    echo(_("Findings (confirmation rate = confirm / (confirm + contest))"))
    if not document["findings"]:
        echo("  " + _("No finding published yet."))
    for item in document["findings"]:
        text = " ".join(item["text"].split())
        echo(f"  {item['code']} v{item['version']}  {text[:90]}{'…' if len(text) > 90 else ''}")
        echo(
            "      "
            + _("{rate} confirmed: {counts}").format(
                rate=_rate(item["confirmation_rate"]), counts=_answers(item)
            )
        )
        parts = [
            f"{names.get(key, key)} {_rate(row['confirmation_rate'])} "
            f"({row['confirm']}/{row['confirm'] + row['contest']})"
            for key, row in item["by_category"].items()
            if row["answers"]
        ]
        if parts:
            echo("      " + " · ".join(parts))
        for reason in item["contest_reasons"]:
            echo("      – " + " ".join(reason.split()))
    echo("")
    ranking = document["ranking"]
    echo(
        ngettext(
            "Ranking of the shortlist (Schulze order, Borda scores): {ballots} ballot",
            "Ranking of the shortlist (Schulze order, Borda scores): {ballots} ballots",
            ranking["ballots"],
        ).format(ballots=ranking["ballots"])
    )
    if not ranking["candidates"]:
        echo("  " + _("No shortlist yet."))
    for row in ranking["overall"]["table"]:
        tie = "=" if row["tied"] else " "
        text = " ".join(row["text"].split())
        echo(
            f"  {row['rank']:>2}{tie} {row['code']:<5} {row['borda']:>8g}  "
            f"{text[:70]}{'…' if len(text) > 70 else ''}"
        )
    for key, result in ranking["by_category"].items():
        order = " > ".join(" = ".join(tier) for tier in result["tiers"])
        echo(f"  {names.get(key, key)} ({result['ballots']}): {order}")
    echo("")
    participation = document["participation"]
    echo(_("Participation"))
    echo_table(
        ["  " + _("category"), _("invited"), _("contributed")],
        [
            ["  " + names.get(key, key), row["invited"], row["contributed"]]
            for key, row in participation["by_category"].items()
        ],
        right={1, 2},
    )
    concentration = participation.get("concentration") or {}
    share = concentration.get("share_of_contributions")
    if share is not None:
        echo(
            _("  The most active 10% wrote {share} of the contributions.").format(
                share=f"{share:.0%}"
            )
        )
    flagged = [
        key
        for key, row in (participation.get("representation") or {}).items()
        if row.get("under_represented")
    ]
    if flagged:
        echo(
            _("  Under-represented: {keys}").format(
                keys=", ".join(names.get(key, key) for key in flagged)
            )
        )
