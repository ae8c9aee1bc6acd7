"""`palabre serve`: the whole running service in one process.

It runs the Telegram bot (polling, or a webhook behind a reverse proxy), the Telegram and email
outbox senders, the IMAP poller when a mailbox is configured, the scheduler, and the web server
of one-click unsubscribe links when `PALABRE_HTTP_PORT` is set. SIGTERM or
SIGINT stops it cleanly: no new update is taken, the sends in flight finish and are recorded,
the messages claimed but not sent are given back, and the scheduler lets its transaction end.
A component that crashes stops the others, and the process exits with status 1, so that a
supervisor (systemd, Docker) restarts it rather than let it run half-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from consultation.errors import UserError
from models.db import Database
from palabre.settings import Settings

logger = logging.getLogger(__name__)

# How long the components get to finish what they are doing once told to stop.
GRACE_SECONDS = 30.0
UPDATE_TYPES = ["message", "edited_message", "callback_query"]


@dataclass
class Webhook:
    """Where Telegram posts updates (`url`, public) and where we listen for them (`port`)."""

    url: str
    port: int
    listen: str = "0.0.0.0"  # noqa: S104  (behind a reverse proxy, in a container)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path.strip("/")


class Service:
    """The running components; `run()` until `stop` is set or one of them fails."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        webhook: Webhook | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.webhook = webhook
        self.stop = stop or asyncio.Event()
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.application: Any = None
        self.scheduler: Any = None
        self.web: Any = None
        self.failed: list[str] = []

    def _spawn(self, name: str, work: Coroutine[Any, Any, Any]) -> None:
        self.tasks[name] = asyncio.create_task(work, name=name)

    async def start(self) -> None:
        from mailer.receiver import ImapPoller
        from mailer.sender import EmailSender
        from scheduler.service import SchedulerService

        settings, database = self.settings, self.database
        if settings.http_port is not None:
            from palabre.web import WebServer

            # Listening first: a port already taken stops the service before anything runs.
            self.web = WebServer(settings, database)
            await self.web.start()
            self._spawn("web server", self.web.run(self.stop))
        elif settings.public_url:
            logger.warning(
                "PALABRE_PUBLIC_URL is set without PALABRE_HTTP_PORT: the unsubscribe links in "
                "emails lead nowhere"
            )
        if settings.bot_enabled:
            await self._start_bot()
        self._spawn("email sender", EmailSender(settings.mail_config(), database).run(self.stop))
        if settings.imap_enabled:
            self._spawn("IMAP poller", ImapPoller(settings.mail_config(), database).run(self.stop))
        elif settings.imap_host:
            logger.warning("PALABRE_IMAP_HOST is set without PALABRE_IMAP_USERNAME: not polling")
        self.scheduler = SchedulerService(database)
        await self.scheduler.start()

    async def _start_bot(self) -> None:
        from telegram.error import InvalidToken, NetworkError

        from bot.app import build_application
        from bot.redact import install
        from bot.sender import TelegramSender

        config = self.settings.bot_config()
        assert config.token is not None and config.webhook_secret is not None
        secret = config.webhook_secret.get_secret_value()
        install(config.token.get_secret_value(), secret)
        self.application = build_application(config, self.database)
        try:
            await self.application.initialize()
        except InvalidToken as exc:
            raise UserError("telegram.bad_token") from exc
        except NetworkError as exc:
            raise UserError(
                "telegram.unreachable", url=self.settings.telegram_api_url, reason=exc.message
            ) from exc
        # PTB calls post_init only from run_polling/run_webhook, which Palabre does not use.
        if self.application.post_init is not None:
            await self.application.post_init(self.application)
        sender = TelegramSender(self.application.bot, self.database, config)
        self.application.bot_data["sender"] = sender
        await self.application.start()
        updater = self.application.updater
        if self.webhook is not None:
            await updater.start_webhook(
                listen=self.webhook.listen,
                port=self.webhook.port,
                url_path=self.webhook.path,
                webhook_url=self.webhook.url,
                secret_token=secret,
                allowed_updates=UPDATE_TYPES,
            )
            logger.info("Telegram bot listening for webhook calls on port %s", self.webhook.port)
        else:
            # A webhook left behind by an earlier run would make every poll fail.
            await self.application.bot.delete_webhook()
            await updater.start_polling(allowed_updates=UPDATE_TYPES)
            logger.info("Telegram bot polling for updates")
        self._spawn("telegram sender", sender.run(self.stop))

    async def run(self) -> int:
        """Start everything, wait for a stop or a failure, stop everything; the exit status."""
        try:
            await self.start()
            waiting = asyncio.create_task(self.stop.wait())
            done, _ = await asyncio.wait(
                [waiting, *self.tasks.values()], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is waiting:
                    continue
                self.failed.append(task.get_name())
                error = task.exception() if not task.cancelled() else None
                logger.error(
                    "%s stopped unexpectedly%s: stopping the service",
                    task.get_name(),
                    f" ({type(error).__name__}: {error})" if error else "",
                    exc_info=error,
                )
            waiting.cancel()
        finally:
            await self.shutdown()
        return 1 if self.failed else 0

    async def shutdown(self) -> None:
        """Take no new work, let the work in flight end, release everything."""
        self.stop.set()
        application = self.application
        if application is not None:
            with contextlib.suppress(Exception):
                if application.updater is not None and application.updater.running:
                    await application.updater.stop()
            with contextlib.suppress(Exception):
                if application.running:
                    await application.stop()
        if self.scheduler is not None:
            await self.scheduler.shutdown()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks.values(), timeout=GRACE_SECONDS)
            for task in late:
                logger.warning(
                    "%s did not stop within %.0f s: cancelled", task.get_name(), GRACE_SECONDS
                )
                task.cancel()
            for task in self.tasks.values():
                crashed = task.done() and not task.cancelled() and task.exception() is not None
                if crashed and task.get_name() not in self.failed:
                    self.failed.append(task.get_name())
        if application is not None:
            with contextlib.suppress(Exception):
                await application.shutdown()
        logger.info("Palabre stopped")


def install_signal_handlers(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set `stop` (a second Ctrl-C still interrupts at once)."""
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(number, _on_signal, number, stop, loop)


def _on_signal(number: int, stop: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
    logger.info("%s received: finishing what is in flight", signal.Signals(number).name)
    stop.set()
    # The next one is not waited for.
    loop.remove_signal_handler(number)


async def serve(settings: Settings, database: Database, *, webhook: Webhook | None = None) -> int:
    """Run the service until SIGTERM/SIGINT; returns the exit status."""
    stop = asyncio.Event()
    install_signal_handlers(stop)
    return await Service(settings, database, webhook=webhook, stop=stop).run()
