"""Real servers on 127.0.0.1 for the test suite: Telegram Bot API, SMTP, IMAP (Dovecot).

Each module says what its server is for; ``fixtures`` wraps them as pytest fixtures.
"""

from tests.servers.botapi import FakeBotApi
from tests.servers.dovecot import Dovecot, DovecotNotInstalled
from tests.servers.smtp import SmtpServer

__all__ = ["Dovecot", "DovecotNotInstalled", "FakeBotApi", "SmtpServer"]
