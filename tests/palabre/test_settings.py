"""Settings: secrets stay secret, production refuses a placeholder secret."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from palabre.settings import Settings


def test_secrets_never_show_in_repr_or_logs(caplog):
    settings = Settings(
        secret_key="k" * 40,
        telegram_token="123456:SECRET-TOKEN",
        smtp_password="smtp-pass",
        imap_password="imap-pass",
    )
    shown = repr(settings) + str(settings)
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s", settings)
    for secret in ("SECRET-TOKEN", "smtp-pass", "imap-pass", "k" * 40):
        assert secret not in shown
        assert secret not in caplog.text


def test_environment_variables_are_read_with_the_prefix(monkeypatch):
    monkeypatch.setenv("PALABRE_DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    monkeypatch.setenv("PALABRE_MAIL_BACKEND", "smtp")
    monkeypatch.setenv("PALABRE_SMTP_CONCURRENCY", "2")
    settings = Settings(_env_file=None)
    assert settings.database_url == "postgresql://postgres@127.0.0.1/test"
    assert settings.mail_backend == "smtp"
    assert settings.smtp_concurrency == 2


def test_production_refuses_to_start_with_a_placeholder_secret():
    with pytest.raises(ValidationError, match="PALABRE_SECRET_KEY is a placeholder"):
        Settings(env="production", _env_file=None)
    assert Settings(env="production", secret_key="x" * 48, _env_file=None).env == "production"


def test_the_bot_is_off_without_a_token():
    assert not Settings(_env_file=None).bot_enabled
    assert Settings(telegram_token="1:abc", _env_file=None).bot_enabled
