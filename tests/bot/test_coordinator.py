"""Coordinator commands from the bot, and the refusal every participant gets for them."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from consultation import findings, observations
from models import AuditEvent, Channel, Finding, FindingStatus, Observation, OutboxMessage, Phase
from tests.factories import make_consultation, make_coordinator, make_participant

CELINE, AICHA, BRUNO, CHLOE = 9000, 5001, 5002, 5003


async def setup(db, *, current="review", **kwargs):
    async with db.session() as session:
        consultation = await make_consultation(session, current=current, **kwargs)
        await make_coordinator(session, consultation, telegram_chat_id=CELINE)
        aicha = await make_participant(
            session, consultation, name="Aïcha", telegram_chat_id=AICHA, category="cooperative"
        )
        bruno = await make_participant(
            session, consultation, name="Bruno", telegram_chat_id=BRUNO, category="association"
        )
        chloe = await make_participant(  # reads Palabre by email only
            session, consultation, name="Chloé", category="cooperative", locale="en"
        )
    return consultation, aicha, bruno, chloe


async def test_a_participant_is_refused_every_coordinator_command(harness, db, botapi):
    consultation, aicha, *_ = await setup(db)
    async with db.session() as session:
        await findings.draft_finding(
            session=session, consultation_id=consultation.id, by=None, text="Un constat."
        )
    phone = harness.phone(AICHA)
    attempts = [
        "/publish",
        "/broadcast Bonjour à tous",
        "/phase close",
        "/stats",
        "/moderate",
        "/report",
    ]

    for command in attempts:
        await phone.send(command)
    for data in ("pb:y", "bc:y:abcdef", "ph:1:close", "md:1:out"):
        await phone.tap(data, message_id=phone.last_message_id())

    texts = phone.new()
    assert len(texts) == 10
    assert all("Seuls les coordinateurs" in text for text in texts)
    async with db.session() as session:
        refused = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "permission.refused"))
        ).all()
        draft = (await session.exec(select(Finding))).one()
        assert draft.status == FindingStatus.DRAFT
        assert (await session.exec(select(OutboxMessage))).all() == []
    assert len(refused) == 10
    assert {event.actor_id for event in refused} == {aicha.id}
    assert [event.subject for event in refused[:6]] == [a.split()[0] for a in attempts]
    assert botapi.sent_documents(AICHA) == []


async def test_broadcast_to_one_category_reaches_it_on_each_channel(harness, db, botapi):
    _consultation, aicha, _bruno, chloe = await setup(db)
    coordinator = harness.phone(CELINE, name="Céline")

    await coordinator.send("/broadcast @nobody Bonjour")
    assert "Il n’existe pas de catégorie « nobody »" in coordinator.last()
    await coordinator.send("/broadcast @cooperative Réunion <jeudi> à 18 h, salle des fêtes.")
    assert "2 personnes de la catégorie" in coordinator.last()
    preview = coordinator.last_message_id()
    send = next(d for _, d in coordinator.buttons(preview) if d.startswith("bc:y"))
    await coordinator.tap(send, message_id=preview)
    await coordinator.tap(send, message_id=preview)  # a double tap sends nothing more
    await harness.drain()

    assert "Envoyé à 2 personnes" in coordinator.shown()[-2]
    (message,) = botapi.sent_messages(AICHA)
    assert "&lt;jeudi&gt;" in message  # escaped on the wire
    assert botapi.sent_messages(BRUNO) == []
    async with db.session() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    assert sorted((row.participant_id, row.channel) for row in rows) == sorted(
        [(aicha.id, Channel.TELEGRAM), (chloe.id, Channel.EMAIL)]
    )


async def test_the_coordinator_extends_then_closes_the_phase_with_reasons(harness, db, clock):
    _consultation, *_ = await setup(db, current="observe", min_days=3, max_days=30)
    coordinator = harness.phone(CELINE, name="Céline")

    await coordinator.send("/phase")
    assert "ne peut pas être close avant" in coordinator.last()
    buttons = [d for _, d in coordinator.buttons(coordinator.last_message_id())]
    # Within the minimum duration, closing could only fail: it is not offered.
    assert not [d for d in buttons if d.endswith(":close")]
    assert buttons[0].endswith(":ext:3")
    await coordinator.tap(buttons[1])  # extend by 7 days
    assert "Pourquoi prolonger la phase de 7 jours" in coordinator.last()
    await coordinator.send("Les vacances scolaires.", reply_to=coordinator.last_message_id())
    assert "se termine désormais le lundi 23 mars" in coordinator.last()

    await coordinator.send("/phase close")  # too early: within the minimum duration
    await coordinator.send("On a assez d'observations.", reply_to=coordinator.last_message_id())
    async with db.session() as session:
        phase = (await session.exec(select(Phase).where(Phase.kind == "observe"))).one()
    assert phase.status == "open"
    assert phase.closes_at == clock.now() + timedelta(days=21)

    clock.advance(days=4)
    await coordinator.send("/phase")
    offered = [d for _, d in coordinator.buttons(coordinator.last_message_id())]
    assert offered[0].endswith(":close")  # past the minimum, closing is offered
    await coordinator.send("/phase close On a assez d'observations.")
    assert "est close" in coordinator.last()
    async with db.session() as session:
        phase = (await session.exec(select(Phase).where(Phase.kind == "observe"))).one()
        events = (
            await session.exec(
                select(AuditEvent).where(AuditEvent.action.in_(["phase.extended", "phase.closed"]))
            )
        ).all()
    assert phase.status == "closed"
    assert [(e.action, e.reason) for e in events] == [
        ("phase.extended", "Les vacances scolaires."),
        ("phase.closed", "On a assez d'observations."),
    ]


async def test_out_of_scope_asks_the_reason_that_the_author_receives(harness, db, botapi):
    _consultation, aicha, *_ = await setup(db, current="observe")
    async with db.session() as session:
        person = await session.get(type(aicha), aicha.id)
        observation = await observations.submit_observation(
            session=session,
            participant=person,
            text="Subventionnez mon association !",
            channel="telegram",
        )
    coordinator = harness.phone(CELINE, name="Céline")

    await coordinator.send("/moderate")
    assert "1 observation attend une décision" in coordinator.shown()[-2]
    await coordinator.tap(f"md:{observation.id}:out")
    assert "Pourquoi l’observation n°" in coordinator.last()
    await coordinator.send(
        "Les demandes de subvention individuelles sont hors du champ.",
        reply_to=coordinator.last_message_id(),
    )
    await harness.drain()

    async with db.session() as session:
        decided = await session.get(Observation, observation.id)
    assert decided.scope_status == "out_of_scope"
    (told,) = botapi.sent_messages(AICHA)
    assert "Les demandes de subvention individuelles sont hors du champ." in told
    assert "Subventionnez mon association" in told


async def test_stats_show_participation_by_category(harness, db):
    _consultation, aicha, *_ = await setup(db, current="observe")
    async with db.session() as session:
        person = await session.get(type(aicha), aicha.id)
        await observations.submit_observation(
            session=session, participant=person, text="Une observation.", channel="telegram"
        )
    coordinator = harness.phone(CELINE, name="Céline")

    await coordinator.send("/stats")

    stats = coordinator.last()
    assert "Participation par catégorie" in stats
    assert "Coopérative" in stats
    assert "invités\u00a0: 2 · ont consenti\u00a0: 2 · ont contribué\u00a0: 1" in stats


async def test_report_sends_the_meeting_brief_as_a_pdf_in_the_coordinator_s_language(
    harness, db, botapi
):
    consultation, aicha, *_ = await setup(db, current="review")
    async with db.session() as session:
        await findings.draft_finding(
            session=session, consultation_id=consultation.id, by=None, text="Un constat."
        )
        await findings.publish_findings(session=session, consultation_id=consultation.id, by=None)
        person = await session.get(type(aicha), aicha.id)
        await findings.record_stance(
            session=session, participant=person, code="F1", choice="confirm", channel="telegram"
        )
    coordinator = harness.phone(CELINE, name="Céline")

    # Drawing the charts and the pages takes a while on a busy test machine.
    await coordinator.send("/report", timeout=120)

    assert "Préparation de la note de synthèse" in coordinator.new()[0]
    (document,) = botapi.sent_documents(CELINE)
    assert document.filename.startswith(f"palabre-{consultation.slug}-brief-")
    assert document.filename.endswith(".pdf")
    assert document.content.startswith(b"%PDF-")
    (call,) = botapi.calls_to("sendDocument", chat_id=CELINE, ok=True)
    assert "Note de synthèse" in call.params["caption"]
