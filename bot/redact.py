"""Keep bot tokens out of logs: Telegram URLs carry the token (`/bot<token>/sendMessage`)."""

from __future__ import annotations

import logging
import re

# A Bot API token is "<bot id>:<35 URL-safe characters>".
TOKEN_PATTERN = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every known secret and anything shaped like a bot token replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return TOKEN_PATTERN.sub("<token>", text)


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
    """Redact on every handler of the root logger, and quiet httpx (it logs each URL)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(*secrets))
