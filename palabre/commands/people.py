"""`palabre participants` and `palabre invite-link`: the people taking part.

Importing a CSV is all or nothing; listing shows how Palabre actually reaches each person (the
channel they are bound to), not only the one they prefer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from palabre.commands.common import (
    N_,
    ConsultationOption,
    JsonOption,
    _,
    category_names,
    echo_json,
    echo_table,
    fail,
    ngettext,
    run,
    settings,
)

if TYPE_CHECKING:
    from consultation import participants
    from models.db import Database

app = typer.Typer(help="The people taking part.", no_args_is_help=True)

# Marked for translation here, translated where printed.
ROLES = {"participant": N_("participant"), "coordinator": N_("coordinator")}
CHANNELS = {"telegram": N_("Telegram"), "email": N_("email"), None: N_("unreachable")}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="participants")
    root.command("invite-link")(invite_link)


@app.command("import")
def participants_import(
    file: Path = typer.Argument(..., help="CSV: name,email,organisation,category,role,locale"),
    consultation: str | None = ConsultationOption,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Add or update participants from a CSV file; a file with any bad row imports nothing."""
    from consultation import participants
    from consultation.common import get_consultation

    async def work(database: Database) -> participants.ImportReport:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            keys = {category["key"] for category in target.categories}
            rows, report = participants.read_csv_file(file, categories=keys)
            if report.rejected:
                return report
            return await participants.import_rows(
                session=session,
                consultation=target,
                rows=rows,
                report=report,
                erasure_key=settings().secret_key.get_secret_value(),
            )

    report = run(work, upgrade=True)
    if as_json:
        echo_json(report.as_dict())
    else:
        for line, address in report.forgotten:
            typer.echo(
                _("{file}, line {line}: {email} asked to be forgotten: not imported again.").format(
                    file=file, line=line, email=address
                ),
                err=True,
            )
        for line, reason in report.rejected:
            typer.echo(
                _("{file}, line {line}: {reason}").format(file=file, line=line, reason=reason),
                err=True,
            )
        if report.rejected:
            typer.echo(
                _("Nothing imported: correct the lines above and run the import again."), err=True
            )
        else:
            typer.echo(
                _(
                    "{imported} imported, {updated} updated, {unchanged} unchanged, 0 rejected."
                ).format(
                    imported=report.imported, updated=report.updated, unchanged=report.unchanged
                )
            )
    if report.rejected:
        raise typer.Exit(code=1)


@app.command("list")
def participants_list(
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """List the participants with their category, role and the channel that reaches them."""
    from sqlmodel import select

    from consultation import outbox
    from consultation.common import get_consultation
    from models import Participant

    async def work(database: Database) -> tuple[list[dict[str, Any]], dict[str, str]]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            people = (
                await session.exec(
                    select(Participant)
                    .where(Participant.consultation_id == target.id)
                    .order_by(Participant.category, Participant.name)
                )
            ).all()
            rows = [
                {
                    "name": person.name if person.erased_at is None else None,
                    "email": person.email,
                    "organisation": person.organisation,
                    "category": person.category,
                    "role": person.role,
                    "locale": person.locale,
                    "channel": person.preferred_channel,
                    "reached_by": outbox.channel_for(person),
                    "telegram": person.telegram_chat_id is not None and person.telegram_active,
                    "consented": person.consent_at is not None,
                    "email_status": person.email_status,
                }
                for person in people
            ]
            labels = {category["key"]: category["label"] for category in target.categories}
            return rows, category_names(labels, settings().locale)

    rows, names = run(work)
    if as_json:
        echo_json(rows)
        return
    if rows:
        echo_table(
            [_("name"), _("email"), _("category"), _("role"), _("language"), _("reached by")],
            [
                [
                    row["name"] or _("(forgotten)"),
                    row["email"] or "-",
                    names.get(row["category"], row["category"]),
                    _(ROLES.get(row["role"], row["role"])),
                    row["locale"],
                    _(CHANNELS[row["reached_by"]]),
                ]
                for row in rows
            ],
        )
    typer.echo(
        ngettext("{count} participant", "{count} participants", len(rows)).format(count=len(rows))
    )


@app.command("export")
def participants_export(
    email: str = typer.Argument(..., help="The participant's email address."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Print everything Palabre holds about one person, as JSON (their right of access)."""
    from consultation import participants, privacy
    from consultation.common import get_consultation

    async def work(database: Database) -> dict:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            person = await participants.by_email(
                session=session, consultation_id=target.id, email=email
            )
            return await privacy.export_data(session=session, participant=person)

    echo_json(run(work))


@app.command("forget")
def participants_forget(
    email: str = typer.Argument(..., help="The participant's email address."),
    consultation: str | None = ConsultationOption,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Erase one person's personal data for good; their contributions stay, anonymous."""
    from consultation import participants, privacy
    from consultation.common import get_consultation

    if not yes:
        typer.confirm(
            _("Forget {email} for good? Their contributions stay, anonymous.").format(email=email),
            abort=True,
        )

    async def work(database: Database) -> None:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            person = await participants.by_email(
                session=session, consultation_id=target.id, email=email
            )
            emailed = await privacy.forget(
                session=session,
                participant=person,
                actor_label="cli",
                erasure_key=settings().secret_key.get_secret_value(),
            )
        if settings().mail_backend == "file":
            from mailer.eml import remove_files

            remove_files(settings().mail_dir, emailed)

    run(work)
    typer.echo(_("{email} has been forgotten.").format(email=email))


def invite_link(
    email: str = typer.Argument(..., help="The participant's email address."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Print a personal, single-use Telegram invitation link for one participant."""
    config = settings()
    if not config.telegram_bot_username and not config.bot_enabled:
        fail(
            _(
                "Set PALABRE_TELEGRAM_BOT_USERNAME, or PALABRE_TELEGRAM_TOKEN so that Palabre can "
                "ask Telegram for the bot's name."
            )
        )
    from telegram.error import TelegramError

    from bot.app import bot_username
    from consultation import participants
    from consultation.common import get_consultation, rules

    try:
        username = asyncio.run(bot_username(config.bot_config()))
    except TelegramError as exc:
        fail(_("Telegram did not give the bot's name: {reason}").format(reason=exc.message))

    async def work(database: Database) -> str:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            person = await participants.by_email(
                session=session, consultation_id=target.id, email=email
            )
            days = rules(target).invitation_days
            return await participants.create_invitation(
                session=session, participant=person, days=days
            )

    token = run(work)
    typer.echo(f"https://t.me/{username}?start={token}")
