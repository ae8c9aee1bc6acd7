"""What every `palabre` command shares: settings, the database, the language, clean failures.

A command that fails for a reason a person can fix prints one line naming the problem and exits
with status 1; the database is left as it was, because each command runs in one transaction.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError

from consultation.errors import DefinitionError, UserError
from models.db import Database, redact
from palabre.settings import Settings, get_settings
from templates.i18n import gettext_for
from templates.render import render_error

T = TypeVar("T")

# The command line acts as a coordinator; this is its name in the audit trail.
CLI = "cli"

ConsultationOption = typer.Option(
    None, "--consultation", "-c", help="Consultation slug (needed only when there are several)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON.")


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = "PALABRE_" + "_".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        fail(f"{field or 'settings'}: {message}")


def _(message: str) -> str:
    """Translate a command-line message into the coordinator's language (PALABRE_LOCALE)."""
    return gettext_for(settings().locale)(message)


def fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code=1)


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def when(value: str | None, timezone: str) -> str:
    """An ISO time from a command's result, shown in the consultation's time zone."""
    if not value:
        return "-"
    return f"{datetime.fromisoformat(value).astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}"


def _unreachable(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    reason = (
        str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    )
    return reason


def run(work: Callable[[Database], Awaitable[T]], *, upgrade: bool = False) -> T:
    """Run `work(database)` on the configured database, turning known failures into one line."""
    config = settings()
    if upgrade:
        migrate(config.database_url)

    async def main() -> T:
        database = Database(config.database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(main())
    except (DefinitionError, UserError) as exc:
        fail(describe(exc, config.locale))
    except (OperationalError, DBAPIError, OSError) as exc:
        if isinstance(exc, DBAPIError) and not _looks_unreachable(exc):
            raise
        fail(
            _("Cannot reach the database {url}: {reason}").format(
                url=redact(config.database_url), reason=_unreachable(exc)
            )
        )


def _looks_unreachable(exc: DBAPIError) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) or any(
        marker in text
        for marker in ("connect", "does not exist", "unable to open", "refused", "no such table")
    )


def describe(exc: BaseException, locale: str) -> str:
    if isinstance(exc, UserError):
        return render_error(exc.code, exc.params, locale)
    return str(exc)


def migrate(url: str) -> None:
    """Bring the schema to the latest migration (idempotent)."""
    from models.migrate import upgrade

    try:
        upgrade(url)
    except (OperationalError, DBAPIError, OSError) as exc:
        fail(
            _("Cannot reach the database {url}: {reason}").format(
                url=redact(url), reason=_unreachable(exc)
            )
        )
