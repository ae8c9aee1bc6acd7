"""/plan in the bot: coordinators answer each action and report progress; members read the plan
and say, action by action, whether it progresses as announced."""

from __future__ import annotations

from sqlmodel import select

from consultation import followup
from models import AuditEvent, FollowUpAnswer, PlanEvent
from tests.consultation.evaluation_story import a_whole_process
from tests.factories import ALL_PHASES

CELINE, AICHA, CHLOE = 9000, 11, 13


def plain(text: str) -> str:
    """French as typed on a keyboard: plain spaces before colons, plain apostrophes."""
    return text.replace("\u00a0", " ").replace("’", "'")


async def after_the_vote(db, clock):
    """The whole process of evaluation_story with a follow phase; Céline coordinates on Telegram."""
    async with db.session() as session:
        consultation, celine, _aicha, _bruno, chloe = await a_whole_process(
            session, clock, phases=(*ALL_PHASES, "follow"), stance=True
        )
        celine.telegram_chat_id, celine.telegram_active = CELINE, True
        chloe.locale = "en"
        session.add_all([celine, chloe])
    return consultation


async def test_a_coordinator_answers_and_follows_an_action_from_the_bot(harness, db, clock):
    await after_the_vote(db, clock)
    celine = harness.phone(CELINE, name="Céline")
    aicha = harness.phone(AICHA)

    await aicha.send("/plan decide A3 retained")
    assert "Seuls les coordinateurs" in aicha.last()

    await celine.send("/plan decide A4 non-retenue")
    assert "Indiquez le motif de cette décision sur A4" in celine.last()
    await celine.send("/plan decide A4 non-retenue | Une fête existe déjà au printemps.")
    assert "C'est noté pour A4 : non retenue." in plain(celine.last())
    await celine.send(
        "/plan decide A3 retenue | Maison de l'ESS | 2028-06 | Local trouvé; Ouverture au public"
    )
    assert "retenue · pas encore engagée · échéance : 30 juin 2028" in plain(celine.last())
    await celine.send("/plan progress A3 en retard")
    assert "Ajoutez une note" in celine.last()
    await celine.send("/plan progress A3 tick 1")
    await celine.send("/plan progress A3 engagée | Le local est signé.")
    assert "retenue · engagée" in celine.last()
    await celine.send("/plan decide")
    assert "/plan decide A3" in celine.last()

    await celine.send("/plan")
    shown = plain(celine.last())
    assert "Le plan d'actions" in shown
    assert "1 action attend encore la réponse de la collectivité." in shown
    assert "Motif : Une fête existe déjà au printemps." in shown
    assert "✅ 1. Local trouvé" in shown and "Pilote : Maison de l'ESS" in shown
    assert "/plan decide A3 retenue" in shown  # the coordinator's help

    async with db.session() as session:
        events = (await session.exec(select(PlanEvent).order_by(PlanEvent.id))).all()
        refused = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "permission.refused"))
        ).all()
    assert [(e.kind, e.value) for e in events] == [
        ("decision", "not_retained"),
        ("decision", "retained"),
        ("milestone", "1"),
        ("progress", "started"),
    ]
    assert all(event.actor_id is not None for event in events)
    assert [event.subject for event in refused] == ["/plan"]

    # A member reads the same plan, without the coordinator's help.
    await aicha.send("/plan")
    assert "Motif : Une fête existe déjà au printemps." in plain(aicha.last())
    assert "/plan decide" not in aicha.last()


async def test_members_answer_the_follow_up_questionnaire_with_buttons_and_a_remark(
    harness, db, clock
):
    consultation = await after_the_vote(db, clock)
    async with db.session() as session:
        for code in ("A2", "A3"):
            await followup.decide(
                session=session,
                consultation_id=consultation.id,
                code=code,
                decision="retained",
                actor_label="test",
            )
        await followup.open_round(session=session, consultation_id=consultation.id, number=1)
    await harness.drain()
    phone = harness.phone(CHLOE, name="Chloé", language="en")
    invitation = phone.message_with_button("go:followup")
    assert "Is the plan progressing as announced?" in phone.text_of(invitation)

    await phone.tap("go:followup", message_id=invitation)
    question = phone.last_message_id()
    assert "A3" in phone.text_of(question) or "A2" in phone.text_of(question)
    labels = [label for label, _ in phone.buttons(question)]
    assert labels == ["yes", "partly", "no", "don't know", "Next"]
    code = phone.buttons(question)[0][1].split(":")[1]

    await phone.tap(f"fu:{code}:p", message_id=question)
    assert f"Recorded for {code}: partly." in phone.text_of(question)
    await phone.send("Only on Tuesdays so far.")
    assert "Your remark is kept too." in phone.shown()[-2]
    other = phone.last_message_id()
    second = phone.buttons(other)[0][1].split(":")[1]
    assert second != code
    await phone.tap(f"fu:{second}:u", message_id=other)
    await phone.tap(f"fu:next:{second}", message_id=other)
    assert "you have answered about every action" in phone.last()

    # A stale answer button after the questionnaire closed is answered politely.
    clock.advance(days=15)
    await phone.tap(f"fu:{code}:y", message_id=question)
    assert "No follow-up questionnaire is open" in phone.last()

    async with db.session() as session:
        answers = (await session.exec(select(FollowUpAnswer).order_by(FollowUpAnswer.id))).all()
    assert [(a.value, a.remark, a.channel) for a in answers] == [
        ("partly", "Only on Tuesdays so far.", "telegram"),
        ("unknown", None, "telegram"),
    ]
