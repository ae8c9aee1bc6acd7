"""`palabre serve`: run the bot, the outbox senders, the IMAP poller and the scheduler."""

from __future__ import annotations

import typer

from models.db import Database
from palabre.commands.common import _, fail, run, settings


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
    from palabre.service import Webhook
    from palabre.service import serve as run_service

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

    async def work(database: Database) -> int:
        return await run_service(config, database, webhook=webhook)

    status = run(work, upgrade=True)
    if status:
        raise typer.Exit(code=status)
