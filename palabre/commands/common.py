"""What every `palabre` command shares: settings, the database, the language, clean failures.

A command that fails for a reason a person can fix prints one line naming the problem and exits
with status 1; the database is left as it was, because each command runs in one transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import typer

from consultation.errors import DefinitionError, UserError

if TYPE_CHECKING:
    from models.db import Database
    from palabre.settings import Settings

T = TypeVar("T")

# The catalog of the command line's sentences (those of palabre/ and scheduler/).
CATALOG = "cli"
# The command line acts as a coordinator; this is its name in the audit trail.
CLI = "cli"

ConsultationOption = typer.Option(
    None, "--consultation", "-c", help="Consultation slug (needed only when there are several)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON.")


def settings() -> Settings:
    from pydantic import ValidationError

    from palabre.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = "PALABRE_" + "_".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        fail(f"{field or 'settings'}: {message}")


def _(message: str) -> str:
    """Translate a command-line message into the coordinator's language (PALABRE_LOCALE)."""
    from templates.i18n import gettext_for

    return gettext_for(settings().locale, CATALOG)(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural message for `count`, as the coordinator's language has it."""
    from templates.i18n import ngettext_for

    return ngettext_for(settings().locale, CATALOG)(singular, plural, count)


# Palabre's own loggers: they narrate a running service, not a one-off command on a terminal.
PALABRE_LOGGERS = ("consultation", "mailer", "scheduler", "bot", "models", "palabre")


def configure_logging(verbose: bool, *, serving: bool) -> None:
    """Logs on stderr at PALABRE_LOG_LEVEL. A command typed on a terminal speaks in its own
    sentences: Palabre's INFO lines would cut into them, so there only warnings are logged
    (`--verbose` shows everything; `palabre serve`, a pipe or a log file get the INFO lines)."""
    level = logging.DEBUG if verbose else getattr(logging, settings().log_level.upper(), 20)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Before anything logs: tokens, signed addresses and email addresses never reach the output.
    from bot import redact

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
    if verbose:
        return
    # Alembic and APScheduler narrate every step at INFO; a coordinator needs to hear about
    # problems, and Palabre's own loggers say what happens.
    for chatty in ("alembic", "apscheduler"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    if not serving and sys.stderr.isatty():
        for name in PALABRE_LOGGERS:
            logging.getLogger(name).setLevel(max(level, logging.WARNING))


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
    from sqlalchemy.exc import DBAPIError, OperationalError

    from models.db import Database, redact

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


def _looks_unreachable(exc: Exception) -> bool:
    from sqlalchemy.exc import OperationalError

    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) or any(
        marker in text
        for marker in ("connect", "does not exist", "unable to open", "refused", "no such table")
    )


def describe(exc: BaseException, locale: str) -> str:
    if isinstance(exc, UserError):
        from templates.render import render_error

        return render_error(exc.code, exc.params, locale)
    return str(exc)


def stop_on_rejected_lines(file: Any, rejected: list[tuple[int, UserError]]) -> None:
    """An all-or-nothing import: say why each rejected line was refused, then stop (exit 1)."""
    if not rejected:
        return
    locale = settings().locale
    for line, error in rejected:
        typer.echo(
            _("{file}, line {line}: {reason}").format(
                file=file, line=line, reason=describe(error, locale)
            ),
            err=True,
        )
    typer.echo(_("Nothing imported: correct the lines above and run the import again."), err=True)
    raise typer.Exit(code=1)


def migrate(url: str) -> None:
    """Bring the schema to the latest migration (idempotent)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from models.db import redact
    from models.migrate import upgrade

    try:
        upgrade(url)
    except (OperationalError, DBAPIError, OSError) as exc:
        fail(
            _("Cannot reach the database {url}: {reason}").format(
                url=redact(url), reason=_unreachable(exc)
            )
        )


def N_(message: str) -> str:  # gettext's name for "mark for translation, translate where shown"
    return message


def echo_table(headers: list[str], rows: list[list[Any]], *, right: set[int] = frozenset()) -> None:
    """A table with its header line, each column as wide as its widest cell; the columns whose
    index is in `right` (numbers) are aligned right."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(line[index]) for line in [headers, *cells]) for index in range(len(headers))]

    def line(values: list[str]) -> str:
        return "  ".join(
            value.rjust(width) if index in right else value.ljust(width)
            for index, (value, width) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    typer.echo(line(headers))
    for row in cells:
        typer.echo(line(row))


def category_names(labels: dict[str, Any], locale: str) -> dict[str, str]:
    """Category key → its label in `locale`, from the definition's key → label mapping."""
    from templates.render import localized

    return {key: localized(label, locale) for key, label in labels.items()}
