"""Logs never carry a bot token, an invitation token, a signed reply address or an email
address: not at DEBUG, and not from third-party loggers (PTB, aioimaplib, aiosqlite, httpx)."""

from __future__ import annotations

import io
import logging

import pytest

from bot import redact

TOKEN = "123456:TEST-palabre-token-0123456789abcdefghij"
INVITATION = "q3Vw9xYkP2mN8rT5sL1cH7dF4gJ6bZ0a"
SIGNED = "reply+3f2a9c1e7b4d.abcdefghijklmnop@palabre.example.org"
ADDRESS = "aicha.benali@example.org"
LOGGERS = ["telegram.ext.Updater", "aioimaplib.aioimaplib", "aiosqlite", "httpx", "palabre"]


@pytest.fixture
def output():
    """The root logger at DEBUG, writing to a buffer, as `palabre -v serve` does."""
    root = logging.getLogger()
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.mark.parametrize("name", LOGGERS)
def test_every_logger_is_redacted_at_every_level(output, name):
    redact.install(TOKEN)
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)

    logger.debug("POST https://api.telegram.org/bot%s/getUpdates", TOKEN)
    logger.debug("update: {'text': '/start %s'}", INVITATION)
    logger.info("link https://t.me/palabre_bot?start=%s", INVITATION)
    logger.debug("Delivered-To: %s From: %s", SIGNED, ADDRESS)
    logger.warning("parameters ('%s', '%s')", ADDRESS, INVITATION)
    try:
        raise ValueError(f"cannot reach {ADDRESS}")
    except ValueError:
        logger.exception("fault")

    written = output.getvalue()
    assert "fault" in written and "POST" in written
    for secret in (TOKEN, INVITATION, SIGNED, ADDRESS, "3f2a9c1e7b4d.abcdefghijklmnop"):
        assert secret not in written
