"""What a coordinator can do on the bot, from the command line: broadcast a message, read the
audit trail, open, close or remind a questionnaire by hand.

Each calls the same `consultation` function as the bot, with the actor "cli" in the audit trail.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer

from palabre.commands.common import (
    CLI,
    ConsultationOption,
    JsonOption,
    _,
    echo_json,
    echo_table,
    fail,
    ngettext,
    run,
    settings,
    when,
)
from palabre.commands.words import status_name

if TYPE_CHECKING:
    from models.db import Database

questionnaire_app = typer.Typer(
    help="The questionnaires: list, open, close, remind.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.command("broadcast")(broadcast)
    root.command("audit")(audit)
    root.add_typer(questionnaire_app, name="questionnaire")


def broadcast(
    text: str = typer.Argument(..., help="The message, as participants will read it."),
    category: str | None = typer.Option(
        None, "--category", help="Only the participants of this category (its key)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Write a message to every participant (or one category), on the channel that reaches them."""
    from consultation import broadcasts
    from consultation.common import get_consultation
    from consultation.errors import UserError

    text = text.strip()
    if not text:
        fail(_("The message is empty."))

    async def audience(database: Database) -> int:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            known = [item["key"] for item in target.categories]
            if category is not None and category not in known:
                raise UserError(
                    "telegram.unknown_category", category=category, known=", ".join(known)
                )
            if len(text) > broadcasts.MAX_LENGTH:
                raise UserError("telegram.broadcast_too_long", limit=broadcasts.MAX_LENGTH)
            people = await broadcasts.audience(
                session=session, consultation_id=target.id, category=category, sender=None
            )
            return len(people)

    count = run(audience)
    if not count:
        fail(
            _("Nobody to write to: nobody has consented yet.")
            if category is None
            else _("Nobody to write to in this category: nobody in it has consented yet.")
        )
    if not yes:
        typer.confirm(
            ngettext(
                "Send this message to {count} person?",
                "Send this message to {count} people?",
                count,
            ).format(count=count),
            abort=True,
        )
    key = secrets.token_urlsafe(8)

    async def send(database: Database) -> int:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            return await broadcasts.broadcast(
                session=session,
                consultation=target,
                by=None,
                actor_label=CLI,
                text=text,
                key=key,
                category=category,
            )

    written = run(send)
    typer.echo(
        ngettext(
            "{count} message written to the outbox; palabre serve sends it.",
            "{count} messages written to the outbox; palabre serve sends them.",
            written,
        ).format(count=written)
    )


def audit(
    since: str | None = typer.Option(
        None, "--since", help="Only from this date on, e.g. 2027-02-01 (consultation's time)."
    ),
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """The audit trail: forced phase changes, refusals, erasures, broadcasts, with their reason."""
    from consultation import audit as trail
    from consultation.clock import as_utc
    from consultation.common import get_consultation

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            start = None
            if since is not None:
                start = as_utc(_parse_date(since).replace(tzinfo=ZoneInfo(target.timezone)))
            events = await trail.events(session=session, consultation_id=target.id, since=start)
            return {
                "timezone": target.timezone,
                "events": [
                    {
                        "at": event.at.isoformat(),
                        "actor": _actor_name(actor, event.actor_label),
                        "action": event.action,
                        "subject": event.subject,
                        "reason": event.reason,
                        "detail": event.detail,
                    }
                    for event, actor in events
                ],
            }

    document = run(work)
    if as_json:
        echo_json(document)
        return
    events = document["events"]
    if events:
        echo_table(
            [_("when"), _("who"), _("action"), _("subject"), _("reason")],
            [
                [
                    when(event["at"], document["timezone"]),
                    event["actor"],
                    event["action"],
                    event["subject"] or "-",
                    event["reason"] or "-",
                ]
                for event in events
            ],
        )
    typer.echo(ngettext("{count} event", "{count} events", len(events)).format(count=len(events)))


def _parse_date(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        fail(_("--since: {value!r} is not a date; write it as 2027-02-01.").format(value=value))


def _actor_name(actor: Any, label: str | None) -> str:
    if actor is None:
        return {"cli": _("command line"), "scheduler": _("scheduler")}.get(
            label or "", label or "-"
        )
    if actor.erased_at is not None:
        return _("(forgotten)")
    return actor.name or "-"


def _questionnaire_command(verb: str, key: str, consultation: str | None) -> dict[str, Any]:
    from consultation import questionnaires, reminders
    from consultation.common import get_consultation
    from templates.render import localized

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            step = await questionnaires.get_questionnaire(
                session=session, consultation_id=target.id, key=key
            )
            written = None
            if verb == "open":
                step = await questionnaires.open_questionnaire(
                    session=session, questionnaire_id=step.id, actor_label=CLI
                )
            elif verb == "close":
                step = await questionnaires.close_questionnaire(
                    session=session, questionnaire_id=step.id, actor_label=CLI
                )
            else:
                written = await reminders.remind_questionnaire(
                    session=session, questionnaire_id=step.id
                )
            return {
                "title": localized(step.title, settings().locale),
                "status": step.status,
                "closes_at": step.closes_at.isoformat() if step.closes_at else None,
                "timezone": target.timezone,
                "written": written,
            }

    return run(work)


@questionnaire_app.command("list")
def questionnaire_list(
    consultation: str | None = ConsultationOption, as_json: bool = JsonOption
) -> None:
    """The questionnaires with their state and closing date."""
    from sqlmodel import select

    from consultation.common import get_consultation
    from models import Questionnaire
    from templates.render import localized

    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            target = await get_consultation(session=session, slug=consultation)
            steps = (
                await session.exec(
                    select(Questionnaire)
                    .where(Questionnaire.consultation_id == target.id)
                    .order_by(Questionnaire.id)  # type: ignore[arg-type]
                )
            ).all()
            return {
                "timezone": target.timezone,
                "questionnaires": [
                    {
                        "key": step.key,
                        "title": localized(step.title, settings().locale),
                        "status": step.status,
                        "closes_at": step.closes_at.isoformat() if step.closes_at else None,
                    }
                    for step in steps
                ],
            }

    document = run(work)
    if as_json:
        echo_json(document)
        return
    echo_table(
        [_("key"), _("title"), _("state"), _("until")],
        [
            [
                row["key"],
                row["title"],
                status_name(row["status"]),
                when(row["closes_at"], document["timezone"]),
            ]
            for row in document["questionnaires"]
        ],
    )


KeyArgument = typer.Argument(..., help="The questionnaire's key (palabre questionnaire list).")


@questionnaire_app.command("open")
def questionnaire_open(
    key: str = KeyArgument, consultation: str | None = ConsultationOption
) -> None:
    """Open a questionnaire now and invite those it concerns (logged as done by hand)."""
    done = _questionnaire_command("open", key, consultation)
    typer.echo(
        _("The questionnaire “{title}” is open until {closes} ({timezone}).").format(
            title=done["title"],
            closes=when(done["closes_at"], done["timezone"]),
            timezone=done["timezone"],
        )
    )


@questionnaire_app.command("close")
def questionnaire_close(
    key: str = KeyArgument, consultation: str | None = ConsultationOption
) -> None:
    """Close a questionnaire now: its answers are final (logged as done by hand)."""
    done = _questionnaire_command("close", key, consultation)
    typer.echo(_("The questionnaire “{title}” is closed.").format(title=done["title"]))


@questionnaire_app.command("remind")
def questionnaire_remind(
    key: str = KeyArgument, consultation: str | None = ConsultationOption
) -> None:
    """Remind those who have not finished the questionnaire (once: it is the one reminder)."""
    done = _questionnaire_command("remind", key, consultation)
    typer.echo(
        ngettext(
            "{count} reminder written to the outbox.",
            "{count} reminders written to the outbox.",
            done["written"],
        ).format(count=done["written"])
    )
