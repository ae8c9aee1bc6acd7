"""Fixtures for the bot's tests: a running bot on the test database, against the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from consultation.clock import ManualClock
from models.db import Database
from tests.bot.harness import BotHarness, make_settings
from tests.servers.botapi import FakeBotApi


@pytest.fixture(autouse=True)
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # Opt in to PTB 23's types (RetryAfter.retry_after as a timedelta), silencing the warning.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def harness(
    db: Database, clock: ManualClock, botapi: FakeBotApi
) -> AsyncIterator[BotHarness]:
    """The bot running (polling) against `botapi`, on `db`, at the test clock's time."""
    running = BotHarness(botapi, db, make_settings(botapi, telegram_rate=30))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
