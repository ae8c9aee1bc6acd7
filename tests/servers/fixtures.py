"""Pytest fixtures for the test servers, one fresh server per test.

``tests/conftest.py`` makes them available everywhere with
``from tests.servers.fixtures import *``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.botapi import FakeBotApi
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer

__all__ = ["botapi", "dovecot", "smtp_server"]


@pytest.fixture
def botapi() -> Iterator[FakeBotApi]:
    """A fake Telegram Bot API on 127.0.0.1, fresh for each test."""
    with FakeBotApi() as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 that records what it receives, fresh for each test."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    """A real Dovecot IMAP server with one user (``.user``/``.password``), fresh for each test.

    Fails, never skips, when Dovecot is not installed.
    """
    with Dovecot(tmp_path) as server:
        yield server
