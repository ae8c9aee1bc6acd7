"""`palabre export`: the consultation's data as CSV or JSON files, one per table, no names.

See consultation/export.py for what the tables hold and how participants are made pseudonymous.
The CSV files are UTF-8 with a byte-order mark (so Excel reads the accents right) and every cell
a spreadsheet would run as a formula is neutralised.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from consultation import export
from consultation.common import get_consultation
from models.db import Database
from palabre.commands.common import ConsultationOption, _, fail, run


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


def register(root: typer.Typer) -> None:
    root.command("export")(export_command)


def export_command(
    out: Path = typer.Option(..., "--out", help="The folder to write the files into."),
    out_format: ExportFormat = typer.Option(ExportFormat.CSV, "--format", help="csv or json."),
    separator: str = typer.Option(
        ",", "--separator", help="CSV field separator: ',' or ';' (Excel in French)."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Write observations, findings, stances, actions, ballots and answers, with pseudonyms."""
    if separator not in {",", ";", "\t"}:
        fail(_("--separator: use ',' or ';'."))

    async def work(database: Database) -> tuple[str, dict[str, list[dict[str, Any]]]]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            tables = await export.export_tables(session=session, consultation_id=target.id)
            return target.slug, tables

    slug, tables = run(work)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, rows in tables.items():
            if out_format == ExportFormat.CSV:
                text = export.csv_text(rows, export.COLUMNS[name], delimiter=separator)
                (out / f"{slug}-{name}.csv").write_text(text, encoding="utf-8-sig", newline="")
            else:
                (out / f"{slug}-{name}.json").write_text(export.json_text(rows), encoding="utf-8")
    except OSError as exc:
        fail(_("Cannot write {file}: {reason}").format(file=out, reason=exc.strerror))
    typer.echo(
        _("{count} files written to {folder} ({rows} rows).").format(
            count=len(tables), folder=out, rows=sum(len(rows) for rows in tables.values())
        )
    )
