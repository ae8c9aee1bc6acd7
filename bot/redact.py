"""Keep secrets and addresses out of logs, whoever logs them and at whatever level.

Telegram URLs carry the bot token (`/bot<token>/sendMessage`); at DEBUG, python-telegram-bot
logs whole updates (an invitation's `/start <token>`), aioimaplib whole messages (addresses,
signed reply addresses), aiosqlite the parameters of every statement. `install` puts a filter
on every handler of the root logger, so third-party loggers go through it too.
"""

from __future__ import annotations

import logging
import re

# A Bot API token is "<bot id>:<35 URL-safe characters>".
TOKEN_PATTERN = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")
# An invitation link or its /start payload (a 32-character URL-safe token).
INVITATION_PATTERN = re.compile(r"(start[= ]+|start%20)[A-Za-z0-9_-]{8,64}", re.IGNORECASE)
INVITATION_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{32}(?![A-Za-z0-9_-])")
# Any email address, a signed reply address (`reply+<key>.<signature>@...`) included.
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
# A signed reply key without its domain (`<key>.<signature>`, as in a log of the local part).
SIGNED_PATTERN = re.compile(r"(verp-)?[0-9a-f]{8,40}[.+][a-z2-7]{16}\b")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every known secret and anything shaped like a bot token replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    text = TOKEN_PATTERN.sub("<token>", text)
    text = EMAIL_PATTERN.sub("<email>", text)
    text = SIGNED_PATTERN.sub("<signed>", text)
    text = INVITATION_PATTERN.sub(r"\1<invitation>", text)
    return INVITATION_TOKEN.sub("<invitation>", text)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the message and the traceback of every record."""

    def __init__(self, *secrets: str | None) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, *self.secrets)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            record.exc_text = redact(
                self._formatter.formatException(record.exc_info), *self.secrets
            )
            record.exc_info = None
        return True


def install(*secrets: str | None) -> None:
    """Redact on every handler of the root logger (every logger's records reach them, at every
    level), and quiet httpx (it logs each URL)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(*secrets))
