"""A running Palabre bot against the fake Bot API, and a person's phone to drive it.

`BotHarness` starts the real Application (polling over a real socket) and the Telegram sender
on a test database; `Phone` is one Telegram user: they type, tap buttons, and read what the bot
showed them. Every action waits until the bot has finished handling the update it caused, so a
test reads as a conversation, without sleeps.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr
from telegram import Update
from telegram.ext import Application

from bot.app import build_application
from bot.sender import TelegramSender
from models.db import Database
from palabre.settings import Settings
from tests.servers.botapi import FakeBotApi

TOKEN = "123456:TEST-palabre-token-0123456789abcdefghij"
WAIT = 10.0


class TrackingApplication(Application):
    """The real Application, which also says when it has finished with an update."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.processed: set[int] = set()
        self.progress = asyncio.Condition()

    async def process_update(self, update: object) -> None:
        try:
            await super().process_update(update)
        finally:
            if isinstance(update, Update):
                async with self.progress:
                    self.processed.add(update.update_id)
                    self.progress.notify_all()

    async def wait_processed(self, update_id: int, timeout: float = WAIT) -> None:
        async with self.progress:
            await asyncio.wait_for(
                self.progress.wait_for(lambda: update_id in self.processed), timeout
            )


def make_settings(api: FakeBotApi, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_token": SecretStr(TOKEN),
        "telegram_api_url": api.url,
        "database_url": "sqlite:///unused.db",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class BotHarness:
    api: FakeBotApi
    database: Database
    settings: Settings
    application: TrackingApplication = field(init=False)
    sender: TelegramSender = field(init=False)

    def __post_init__(self) -> None:
        self.application = build_application(
            self.settings.bot_config(), self.database, application_class=TrackingApplication
        )  # type: ignore[assignment]
        self.sender = TelegramSender(
            self.application.bot, self.database, self.settings.bot_config()
        )
        self.application.bot_data["sender"] = self.sender

    async def start(self) -> None:
        await self.application.initialize()
        await self.application.start()
        await self.application.updater.start_polling(poll_interval=0, timeout=1)

    async def stop(self) -> None:
        if self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    def phone(self, chat_id: int, *, name: str = "Aïcha", language: str = "fr") -> Phone:
        return Phone(self, chat_id, name, language)

    async def drain(self) -> int:
        """Send everything due in the outbox (as the running sender would)."""
        total = 0
        while handled := await self.sender.drain_once():
            total += handled
        return total


@dataclass
class Phone:
    """One Telegram user talking to the bot in their private chat."""

    harness: BotHarness
    chat_id: int
    name: str
    language: str
    seen: int = 0

    @property
    def api(self) -> FakeBotApi:
        return self.harness.api

    async def send(self, text: str, *, reply_to: int | None = None, timeout: float = WAIT) -> int:
        """Type a message (a reply to the bot's message `reply_to`, if given) and wait."""
        update_id = self.api.push_message(
            self.chat_id,
            text,
            first_name=self.name,
            language_code=self.language,
            reply_to_message_id=reply_to,
        )
        await self.harness.application.wait_processed(update_id, timeout)
        return update_id

    async def tap(self, data: str, *, message_id: int | None = None) -> int:
        """Tap the button with callback `data` (on the newest message that shows it)."""
        if message_id is None:
            message_id = self.message_with_button(data)
        update_id = self.api.push_callback(
            self.chat_id, data, message_id, first_name=self.name, language_code=self.language
        )
        await self.harness.application.wait_processed(update_id)
        return update_id

    # -- what the bot showed -------------------------------------------------------------

    def bot_message_ids(self) -> list[int]:
        ids = []
        for call in self.api.calls_to("sendMessage", chat_id=self.chat_id, ok=True):
            ids.append(call.result["message_id"])
        return ids

    def buttons(self, message_id: int) -> list[tuple[str, str]]:
        """(label, callback data) of a message's inline keyboard as it is now."""
        message = self.api.message(self.chat_id, message_id) or {}
        rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]

    def message_with_button(self, data: str) -> int:
        for message_id in reversed(self.bot_message_ids()):
            if any(d == data for _, d in self.buttons(message_id)):
                return message_id
        raise AssertionError(f"no message in chat {self.chat_id} has a button {data!r}")

    def text_of(self, message_id: int) -> str:
        return (self.api.message(self.chat_id, message_id) or {}).get("text", "")

    def shown(self) -> list[str]:
        """Every text the bot showed in this chat (sent or edited), as the person saw it."""
        texts = []
        for call in self.api.calls:
            if (
                call.ok
                and call.params.get("chat_id") == self.chat_id
                and call.method
                in {
                    "sendMessage",
                    "editMessageText",
                }
            ):
                texts.append(call.result["text"] if isinstance(call.result, dict) else "")
        return texts

    def new(self) -> list[str]:
        """What the bot showed since the last call of `new()`."""
        texts = self.shown()
        fresh, self.seen = texts[self.seen :], len(texts)
        return fresh

    def last(self) -> str:
        texts = self.shown()
        return texts[-1] if texts else ""

    def last_message_id(self) -> int:
        return self.bot_message_ids()[-1]

    def last_call(self, method: str = "sendMessage") -> Any:
        return self.api.calls_to(method, chat_id=self.chat_id)[-1]
