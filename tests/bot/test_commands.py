"""Every command and shortcut button, in every phase, answers something sensible (never the
apology for a fault), for a participant and for a coordinator."""

from __future__ import annotations

import pytest

from tests.factories import make_consultation, make_coordinator, make_participant

AICHA, CELINE = 5001, 9000
PARTICIPANT = [
    "/start",
    "/help",
    "/status",
    "/observe",
    "/findings",
    "/findings all",
    "/propose",
    "/propose Un guichet unique",
    "/rank",
    "/questionnaire",
    "/skip",
    "/mine",
    "/settings",
    "/cancel",
    "/nonsense",
    "Un texte libre.",
]
COORDINATOR = [
    "/publish",
    "/broadcast",
    "/broadcast Bonjour",
    "/phase",
    "/phase extend",
    "/stats",
    "/moderate",
]
SHORTCUTS = ["go:findings", "go:rank", "go:questionnaire", "go:status", "go:observe", "go:propose"]


@pytest.mark.parametrize("kind", ["observe", "review", "propose", "rank", "evaluate", None])
async def test_every_command_in_every_phase(harness, db, clock, kind):
    async with db.session() as session:
        consultation = await make_consultation(session, current=kind, questionnaires=True)
        await make_participant(session, consultation, telegram_chat_id=AICHA, locale="en")
        await make_coordinator(session, consultation, telegram_chat_id=CELINE)
    phone = harness.phone(AICHA, language="en")
    coordinator = harness.phone(CELINE, name="Céline")

    for text in PARTICIPANT:
        await phone.send(text)
    for data in SHORTCUTS:
        await phone.tap(data, message_id=phone.last_message_id())
    for text in PARTICIPANT:
        await coordinator.send(text)
    clock.advance(minutes=1)  # past the flood limit's minute
    for text in COORDINATOR:
        await coordinator.send(text)

    for shown in phone.shown() + coordinator.shown():
        assert shown.strip()
        assert "Sorry, something went wrong" not in shown
        assert "Désolé, un problème" not in shown
    assert len(phone.shown()) >= len(PARTICIPANT) + len(SHORTCUTS) - 1
    assert not any("ralentir" in shown for shown in coordinator.shown())
