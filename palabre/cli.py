"""The `palabre` command: set up a consultation, import its participants, run and watch it."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer
from sqlmodel import select

from bot import redact
from consultation import definition, participants, privacy
from consultation.clock import now
from consultation.common import get_consultation, rules
from consultation.metrics import participation_by_category
from mailer.eml import remove_files
from models import Consultation, Participant, Phase
from models.db import Database
from palabre.commands import (
    actions,
    ballots,
    findings,
    mail,
    observations,
    phases,
    results,
    schedule,
    serve,
)
from palabre.commands.common import ConsultationOption, _, echo_json, fail, migrate, run, settings
from templates.render import localized


def N_(message: str) -> str:  # gettext's name for "mark for translation, do not translate"
    return message


app = typer.Typer(
    name="palabre",
    help="Palabre: run a shared diagnosis between meetings, on Telegram and by email.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
participants_app = typer.Typer(help="The people taking part.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(participants_app, name="participants")


@app.callback()
def _configure(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log more.")) -> None:
    level = logging.DEBUG if verbose else getattr(logging, settings().log_level.upper(), 20)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Before anything logs: tokens, signed addresses and email addresses never reach the output.
    config = settings()
    redact.install(
        *(
            secret.get_secret_value()
            for secret in (
                config.secret_key,
                config.telegram_token,
                config.telegram_webhook_secret,
                config.smtp_password,
                config.imap_password,
            )
            if secret is not None
        )
    )
    if not verbose:
        # Alembic and APScheduler narrate every step at INFO; a coordinator needs to hear about
        # problems, and Palabre's own loggers say what happens.
        for chatty in ("alembic", "apscheduler"):
            logging.getLogger(chatty).setLevel(logging.WARNING)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version (safe to repeat)."""
    migrate(settings().database_url)
    typer.echo(_("Database schema is up to date."))


@app.command("init")
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


@participants_app.command("import")
def participants_import(
    file: Path = typer.Argument(..., help="CSV: name,email,organisation,category,role,locale"),
    consultation: str | None = ConsultationOption,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Add or update participants from a CSV file; a file with any bad row imports nothing."""

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


@participants_app.command("list")
def participants_list(
    consultation: str | None = ConsultationOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the participants with their category, role and channels."""

    async def work(database: Database) -> list[dict]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            people = (
                await session.exec(
                    select(Participant)
                    .where(Participant.consultation_id == target.id)
                    .order_by(Participant.category, Participant.name)
                )
            ).all()
            return [
                {
                    "name": person.name if person.erased_at is None else _("(forgotten)"),
                    "email": person.email,
                    "organisation": person.organisation,
                    "category": person.category,
                    "role": person.role,
                    "locale": person.locale,
                    "channel": person.preferred_channel,
                    "telegram": person.telegram_chat_id is not None and person.telegram_active,
                    "consented": person.consent_at is not None,
                    "email_status": person.email_status,
                }
                for person in people
            ]

    rows = run(work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        telegram = "telegram" if row["telegram"] else "-"
        typer.echo(
            f"{row['category']:<12} {row['role']:<12} {row['name'] or '':<24} "
            f"{row['email'] or '':<36} {row['locale']} {row['channel']:<8} {telegram}"
        )
    typer.echo(_("{count} participants").format(count=len(rows)))


@participants_app.command("export")
def participants_export(
    email: str = typer.Argument(..., help="The participant's email address."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Print everything Palabre holds about one person, as JSON (their right of access)."""

    async def work(database: Database) -> dict:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            person = await participants.by_email(
                session=session, consultation_id=target.id, email=email
            )
            return await privacy.export_data(session=session, participant=person)

    echo_json(run(work))


@participants_app.command("forget")
def participants_forget(
    email: str = typer.Argument(..., help="The participant's email address."),
    consultation: str | None = ConsultationOption,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Erase one person's personal data for good; their contributions stay, anonymous."""
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
            remove_files(settings().mail_dir, emailed)

    run(work)
    typer.echo(_("{email} has been forgotten.").format(email=email))


@app.command("invite-link")
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


@app.command("status")
def status(
    consultation: str | None = ConsultationOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (documented in README)."),
) -> None:
    """Show the phases with their dates and state, and participation by category."""

    async def work(database: Database) -> dict:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            phases = (
                await session.exec(
                    select(Phase).where(Phase.consultation_id == target.id).order_by(Phase.position)
                )
            ).all()
            by_category = await participation_by_category(session=session, consultation=target)
            return _status_document(target, phases, by_category)

    document = run(work)
    if as_json:
        echo_json(document)
        return
    typer.echo(f"{document['title']} ({document['slug']})")
    typer.echo(document["question"])
    typer.echo("")
    zone = ZoneInfo(document["timezone"])
    for phase in document["phases"]:
        opens = datetime.fromisoformat(phase["opens_at"]).astimezone(zone)
        closes = datetime.fromisoformat(phase["closes_at"]).astimezone(zone)
        kind, state = PHASE_WORDS[phase["kind"]], PHASE_WORDS[phase["status"]]
        typer.echo(
            f"  {phase['position']}. {_(kind):<12} {_(state):<11} "
            f"{opens:%Y-%m-%d %H:%M} → {closes:%Y-%m-%d %H:%M} ({document['timezone']})"
        )
    typer.echo("")
    columns = [
        ("invited", _("invited")),
        ("telegram", _("on Telegram")),
        ("email_only", _("by email")),
        ("consented", _("consented")),
        ("contributed", _("contributed")),
    ]
    names = {
        key: localized(label, settings().locale) for key, label in document["categories"].items()
    }
    width = max(len(names.get(key, key)) for key in document["participation"]) + 2
    typer.echo("  " + _("category").ljust(width) + "  ".join(label for _key, label in columns))
    for key, row in document["participation"].items():
        cells = "  ".join(str(row[name]).rjust(len(label)) for name, label in columns)
        typer.echo("  " + names.get(key, key).ljust(width) + cells)


# Marked for translation here, translated where printed.
PHASE_WORDS = {
    "observe": N_("observe"),
    "review": N_("review"),
    "propose": N_("propose"),
    "rank": N_("rank"),
    "evaluate": N_("evaluate"),
    "scheduled": N_("scheduled"),
    "open": N_("open"),
    "closed": N_("closed"),
}


def _status_document(target: Consultation, phases: list[Phase], by_category: dict) -> dict:
    current = now()
    return {
        "slug": target.slug,
        "title": target.title,
        "question": target.question,
        "timezone": target.timezone,
        "now": current.isoformat(),
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


# Each module adds its own commands: a group (`palabre phase open`) or a single command
# (`palabre results`). In this order they are listed by `palabre --help`.
for module in (schedule, phases, observations, findings, actions, ballots, results, serve, mail):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
