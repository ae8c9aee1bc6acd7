"""Every setting Palabre reads, from `PALABRE_*` environment variables and an optional `.env`.

One `Settings` object is built at start-up and passed down; nothing else reads the environment.
Secrets are `SecretStr`, so they never show in `repr`, logs or tracebacks.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.config import BotConfig
from mailer.config import MailConfig

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "dev-secret-change-me"}
DEFAULT_SECRET = "dev-secret-change-me"  # noqa: S105  (refused in production)


class Settings(BaseSettings):
    """Palabre's configuration. Each field is `PALABRE_<NAME>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="PALABRE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///palabre.db"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    # The language of the command line's own messages (the bot and emails follow each person).
    locale: Literal["fr", "en"] = "fr"
    log_level: str = "INFO"

    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_bot_username: str | None = None
    telegram_rate: float = Field(25.0, gt=0, le=30)
    telegram_webhook_secret: SecretStr | None = None

    mail_backend: Literal["smtp", "file"] = "file"
    mail_dir: Path = Path("outbox-mail")
    mail_from: str = "Palabre <palabre@example.org>"
    reply_address: str = "reply@example.org"
    public_url: str | None = None

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_timeout: float = 30.0
    smtp_concurrency: int = Field(4, ge=1, le=64)
    bounce_limit: int = Field(3, ge=1)
    # The authserv-id our own MX writes in Authentication-Results (RFC 8601), e.g.
    # "mx.mairie.example": a reply whose SPF/DKIM/DMARC it records as failed for the From
    # domain is not applied. Empty: no such header is believed (any sender can write one).
    trusted_authserv_id: str | None = None

    imap_host: str | None = None
    imap_port: int = 993
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_security: Literal["none", "starttls", "tls"] = "tls"
    imap_mailbox: str = "INBOX"
    imap_poll_seconds: float = Field(60.0, gt=0)

    # The small web server (one-click unsubscribe, health check), off unless a port is given.
    http_port: int | None = Field(None, ge=1, le=65535)
    http_host: str = "127.0.0.1"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError(
                f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH or "
                "postgresql://USER@HOST/DB"
            )
        return value

    @field_validator("http_port", mode="before")
    @classmethod
    def _empty_port_is_none(cls, value: object) -> object:
        # `PALABRE_HTTP_PORT=` (empty, as in .env.example) means "no web server".
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _no_placeholder_secret_in_production(self) -> Settings:
        if self.env == "production" and self.secret_key.get_secret_value() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "PALABRE_SECRET_KEY is a placeholder: set a long random value before running "
                "in production (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self

    @property
    def bot_enabled(self) -> bool:
        return self.telegram_token is not None and bool(self.telegram_token.get_secret_value())

    @property
    def imap_enabled(self) -> bool:
        return bool(self.imap_host and self.imap_username)

    def mail_config(self) -> MailConfig:
        """The part of these settings the email channel reads."""
        return MailConfig(**{name: getattr(self, name) for name in MailConfig.__dataclass_fields__})

    def webhook_secret(self) -> str:
        """The secret Telegram sends back with every webhook call, so nobody else can post fake
        updates: `PALABRE_TELEGRAM_WEBHOOK_SECRET`, else derived from `PALABRE_SECRET_KEY`."""
        if self.telegram_webhook_secret is not None:
            secret = self.telegram_webhook_secret.get_secret_value()
            if secret:
                return secret
        key = self.secret_key.get_secret_value().encode("utf-8")
        return hmac.new(key, b"palabre telegram webhook", hashlib.sha256).hexdigest()

    def bot_config(self) -> BotConfig:
        """The part of these settings the Telegram channel reads."""
        return BotConfig(
            token=self.telegram_token,
            api_url=self.telegram_api_url,
            username=self.telegram_bot_username,
            rate=self.telegram_rate,
            webhook_secret=SecretStr(self.webhook_secret()),
            erasure_key=self.secret_key,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
