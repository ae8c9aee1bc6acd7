"""What the email channel needs to know, and nothing more.

`palabre` builds one `MailConfig` from its settings at start (`Settings.mail_config()`) and hands
it down: nothing in `mailer/` reads the environment or knows the rest of Palabre's settings.
Secrets stay `SecretStr`, so they never show in `repr`, logs or tracebacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class MailConfig:
    """Addresses, the signing key, and how to reach the SMTP and IMAP servers.

    No defaults: `Settings` holds them, so that there is one place to read them.
    """

    secret_key: SecretStr
    mail_from: str
    reply_address: str
    # Where the one-click unsubscribe link points; None leaves the link out.
    public_url: str | None
    mail_backend: Literal["smtp", "file"]
    mail_dir: Path
    bounce_limit: int
    # The authserv-id of our own MX: only its Authentication-Results headers are believed.
    trusted_authserv_id: str | None

    smtp_host: str
    smtp_port: int
    smtp_username: str | None
    smtp_password: SecretStr | None
    smtp_security: Security
    smtp_timeout: float
    smtp_concurrency: int

    imap_host: str | None
    imap_port: int
    imap_username: str | None
    imap_password: SecretStr | None
    imap_security: Security
    imap_mailbox: str
    imap_poll_seconds: float
