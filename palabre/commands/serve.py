"""`palabre serve`: run the bot, the outbox senders, the IMAP poller and the scheduler."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

from palabre.commands.common import _, fail, run, settings

if TYPE_CHECKING:
    from models.db import Database
    from palabre.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    webhook_url: str | None = typer.Option(
        None,
        "--webhook-url",
        help="Receive Telegram updates at this public HTTPS URL instead of polling.",
    ),
    webhook_port: int = typer.Option(
        8443, "--webhook-port", help="The local port the webhook listens on (behind a proxy)."
    ),
) -> None:
    """Run Palabre: the Telegram bot, the email and Telegram senders, and the scheduler."""
    from palabre.service import Service, Webhook, install_signal_handlers

    config = settings()
    if webhook_url is not None and not webhook_url.startswith("https://"):
        fail(_("The webhook URL must start with https:// (Telegram only calls HTTPS)."))
    if not config.bot_enabled:
        typer.echo(
            _(
                "The Telegram bot is off: PALABRE_TELEGRAM_TOKEN is not set. Email, the "
                "scheduler and the outbox run without it. To turn the bot on, create a bot with "
                "@BotFather on Telegram (/newbot), copy the token it gives you into "
                "PALABRE_TELEGRAM_TOKEN (in the environment or in .env), and start palabre "
                "serve again."
            ),
            err=True,
        )
    webhook = Webhook(webhook_url, webhook_port) if webhook_url and config.bot_enabled else None

    class Announced(Service):
        async def start(self) -> None:
            await super().start()
            typer.echo(ready_message(config), err=True)

    async def work(database: Database) -> int:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        return await Announced(config, database, webhook=webhook, stop=stop).run()

    status = run(work, upgrade=True)
    if status:
        raise typer.Exit(code=status)


def ready_message(config: Settings) -> str:
    """What a coordinator needs once the service runs: where emails go, how to stop, what next."""
    if config.mail_backend == "file":
        mail = _("Emails are written as .eml files into {folder}.").format(
            folder=config.mail_dir.resolve()
        )
    else:
        mail = _("Emails go out through {host}:{port}.").format(
            host=config.smtp_host, port=config.smtp_port
        )
    return "\n".join(
        [
            _("Palabre is running."),
            mail,
            _("Stop it with Ctrl-C (it finishes what it is sending first)."),
            _(
                "Next step, in another terminal: palabre invite emails the invitations; "
                "palabre schedule shows what comes next."
            ),
        ]
    )
