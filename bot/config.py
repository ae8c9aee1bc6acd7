"""What the Telegram channel needs to know, and nothing more.

`palabre.service.bot_config` builds it from the service's settings at start; the bot never
reads the settings of the whole service.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True)
class BotConfig:
    """The Bot API token and root, the bot's @username if known, the send rate, the webhook
    secret, the erasure key."""

    token: SecretStr | None = None
    api_url: str = "https://api.telegram.org"
    username: str | None = None
    # Messages a second the sender allows itself overall (Telegram allows about 30).
    rate: float = 25.0
    webhook_secret: SecretStr | None = None
    # The secret key, which hashes the address of a person who asks to be forgotten.
    erasure_key: SecretStr | None = None

    @property
    def enabled(self) -> bool:
        """Whether there is a token to talk to Telegram with."""
        return self.token is not None and bool(self.token.get_secret_value())
