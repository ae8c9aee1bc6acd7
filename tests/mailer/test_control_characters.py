"""Bad bytes by email: a reply holding NUL or another control character is answered with the
sentence that names the problem, and nothing of it is stored, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlmodel import select

from mailer import replies, tokens
from models import OutboxMessage, Stance
from tests.mailer.conftest import mail_config, reply_message, review_story


async def test_a_nul_byte_in_a_reply_is_refused_with_its_sentence(db, clock, tmp_path):
    """Given Aïcha contests F1 with a reason holding a NUL byte, her receipt explains it, and
    no stance is recorded."""
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    raw = reply_message(
        to=tokens.reply_address(config, story.aicha.reply_key),
        body="F1 contester : ce n'est pas\x00 le cas chez nous",
    )

    outcome = await replies.handle(config=config, database=db, raw=raw)

    assert outcome.status == "processed", outcome
    async with db.session() as session:
        assert (await session.exec(select(Stance))).all() == []
        receipt = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.template == "email_receipt")
            )
        ).one()
    [refused] = receipt.payload["refused"]
    assert refused["line"] == "F1 contester : ce n'est pas\ufffd le cas chez nous"
    assert refused["reason"].startswith("Votre raison contient des caractères de contrôle")
    assert "\x00" not in json.dumps(receipt.payload, ensure_ascii=False)
