"""The bot's own configuration: built from the service's settings, and all the bot reads of them."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic import SecretStr

from palabre.settings import Settings

BOT = Path(__file__).resolve().parents[2] / "bot"


def test_the_bot_gets_its_config_from_the_settings():
    settings = Settings(
        _env_file=None,
        telegram_token=SecretStr("123456:TOKEN"),
        telegram_api_url="http://127.0.0.1:8081/",
        telegram_bot_username="ess_bot",
        telegram_rate=12,
    )  # type: ignore[call-arg]

    config = settings.bot_config()

    assert config.enabled and config.token.get_secret_value() == "123456:TOKEN"
    assert (config.api_url, config.username, config.rate) == (
        "http://127.0.0.1:8081/",
        "ess_bot",
        12,
    )
    assert config.webhook_secret.get_secret_value() == settings.webhook_secret()
    assert not Settings(_env_file=None).bot_config().enabled  # type: ignore[call-arg]


def test_nothing_in_the_bot_reads_the_service_settings():
    importers = []
    for path in sorted(BOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(name == "palabre.settings" for name in names):
                importers.append(path.name)
    assert importers == []
