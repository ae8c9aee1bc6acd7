"""Stories and the mail config shared by the email channel's tests.

The mail config is built for each test: SMTP to the test's aiosmtpd, IMAP to its Dovecot, a fixed
secret, so the reply addresses the tests forge or copy are stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock, findings
from mailer.config import MailConfig
from models import Consultation, Participant
from palabre.settings import Settings
from tests.factories import make_consultation, make_coordinator, make_participant

SECRET = "test-secret-for-the-mailer-0123456789"
DATA = Path(__file__).resolve().parent.parent / "data" / "replies"


def mail_config(tmp_path: Path, **overrides) -> MailConfig:
    values = {
        "secret_key": SECRET,
        "mail_backend": "file",
        "mail_dir": tmp_path / "mail",
        "mail_from": "Plan ESS <palabre@mairie.example>",
        "reply_address": "reply@mairie.example",
        "smtp_host": "127.0.0.1",
        "smtp_security": "none",
        "smtp_timeout": 5.0,
        "imap_security": "none",
        "imap_poll_seconds": 1.0,
        "public_url": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values).mail_config()


@pytest.fixture
def config(tmp_path: Path) -> MailConfig:
    return mail_config(tmp_path)


@dataclass
class Review:
    """A consultation in review: F1–F3 published, Aïcha reads Palabre by email."""

    consultation: Consultation
    coordinator: Participant
    aicha: Participant
    bruno: Participant


async def review_story(session: AsyncSession, *, aicha_locale: str = "fr") -> Review:
    consultation = await make_consultation(session, current="review")
    coordinator = await make_coordinator(session, consultation, email="celine@mairie.example")
    aicha = await make_participant(
        session,
        consultation,
        name="Aïcha Benali",
        email="aicha@asso.example",
        locale=aicha_locale,
        cadence="daily",
    )
    bruno = await make_participant(
        session, consultation, name="Bruno Martin", email="bruno@coop.example", locale="en"
    )
    for text in (
        "Les petites coopératives ne reçoivent aucun soutien spécifique.",
        "Les tiers-lieux manquent de financement de fonctionnement.",
        "L'accès à la commande publique est trop complexe pour les associations.",
    ):
        await findings.draft_finding(
            session=session, consultation_id=consultation.id, by=coordinator, text=text
        )
    await findings.publish_findings(
        session=session, consultation_id=consultation.id, by=coordinator
    )
    await session.flush()
    return Review(consultation, coordinator, aicha, bruno)


def reply_message(
    *,
    to: str,
    body: str,
    sender: str = "Aïcha Benali <aicha@asso.example>",
    subject: str = "Re: Plan ESS de test",
    message_id: str | None = None,
    extra: dict[str, str] | None = None,
) -> bytes:
    """A plain reply as a mail client would send it."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = message_id or make_msgid(domain="asso.example")
    for name, value in (extra or {}).items():
        message[name] = value
    message.set_content(body)
    return bytes(message)
