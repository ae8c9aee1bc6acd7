"""The GDPR rights: everything about me as JSON, and being forgotten for good."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from consultation import (
    actions,
    findings,
    metrics,
    outbox,
    participants,
    privacy,
    questionnaires,
)
from consultation.errors import NotFound, PermissionDenied
from models import (
    AuditEvent,
    Channel,
    DialogueState,
    InboundRecord,
    Invitation,
    Observation,
    OutboxMessage,
    OutboxStatus,
    Participant,
)
from templates.render import render_error
from tests.consultation.evaluation_story import a_whole_process
from tests.factories import make_consultation, make_coordinator, make_participant

TG = Channel.TELEGRAM

KEY = "test-secret-key"


async def with_traces_everywhere(session, clock):
    """The whole process, plus what a person leaves behind besides contributions."""
    consultation, coordinator, aicha, bruno, chloe = await a_whole_process(
        session, clock, questionnaires=True
    )
    final = await questionnaires.get_questionnaire(
        session=session, consultation_id=consultation.id, key="final"
    )
    await questionnaires.open_questionnaire(session=session, questionnaire_id=final.id)
    await questionnaires.answer_question(
        session=session,
        participant=aicha,
        questionnaire_key="final",
        position=1,
        value=4,
        channel=TG,
    )
    await participants.create_invitation(session=session, participant=aicha)
    session.add(
        DialogueState(
            participant_id=aicha.id,
            channel=TG,
            kind="contest_reason",
            data={"code": "F1"},
            updated_at=clock.now(),
        )
    )
    session.add(
        InboundRecord(
            channel="email",
            external_id="<abc@example.org>",
            participant_id=aicha.id,
            detail={"from": aicha.email, "subject": "F1 confirm"},
            received_at=clock.now(),
        )
    )
    await outbox.enqueue(
        session=session,
        channel="email",
        template="receipt",
        payload={"recorded": ["F1 confirm"], "address": aicha.email},
        dedupe_key="receipt:1",
        participant_id=aicha.id,
        address=aicha.email,
    )
    await session.flush()
    return consultation, coordinator, aicha, bruno, chloe


async def test_a_person_gets_all_their_data_and_nobody_elses(db, clock):
    async with db.session() as session:
        _, _, aicha, _, _ = await with_traces_everywhere(session, clock)

        data = await privacy.export_data(session=session, participant=aicha)

        assert json.loads(json.dumps(data)) == data
        assert data["profile"]["name"] == "Aïcha Benali"
        assert data["profile"]["email"] == aicha.email
        assert data["profile"]["telegram_chat_id"] == 11
        assert data["profile"]["category"] == "association"
        assert data["consent"]["given_at"] == aicha.consent_at.isoformat()
        assert [o["scope_status"] for o in data["observations"]] == [
            "pending",
            "out_of_scope",
            "pending",
        ]
        assert [p["code"] for p in data["proposals"]] == ["A1"]
        assert data["ballot"]["ranking"] == ["A3", "A2"]
        [answer] = data["answers"]
        assert (answer["questionnaire"], answer["kind"], answer["value"]) == ("final", "likert", 4)
        [invitation] = data["invitations"]
        assert set(invitation) == {"created_at", "expires_at", "used_at"}
        templates = {m["template"] for m in data["messages"]}
        assert {"phase_opened", "receipt"} <= templates
        assert all(
            set(m) == {"template", "channel", "status", "created_at", "sent_at"}
            for m in data["messages"]
        )
        text = json.dumps(data, ensure_ascii=False)
        assert "Bruno" not in text
        assert "Aucun accompagnement pour les petites" not in text  # Bruno's observation


async def test_stances_are_in_the_export(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session, current="review")
        coordinator = await make_coordinator(session, consultation)
        person = await make_participant(session, consultation)
        await findings.draft_finding(
            session=session, consultation_id=consultation.id, by=coordinator, text="Un constat."
        )
        await findings.publish_findings(
            session=session, consultation_id=consultation.id, by=coordinator
        )
        await findings.record_stance(
            session=session,
            participant=person,
            code="F1",
            choice="contest",
            reason="Pas vrai chez nous.",
            channel=TG,
        )
        data = await privacy.export_data(session=session, participant=person)
        [stance] = data["stances"]
        assert (stance["finding"], stance["version"], stance["choice"], stance["reason"]) == (
            "F1",
            1,
            "contest",
            "Pas vrai chez nous.",
        )
        assert data["ballot"] is None


async def test_forgetting_erases_the_person_but_keeps_the_material_and_the_counts(db, clock):
    async with db.session() as session:
        consultation, coordinator, aicha, _, _ = await with_traces_everywhere(session, clock)
        email, old_key, chat = aicha.email, aicha.reply_key, aicha.telegram_chat_id
        texts = sorted(
            o.text
            for o in (
                await session.exec(select(Observation).where(Observation.author_id == aicha.id))
            ).all()
        )
        counts_before = await metrics.participation_by_category(
            session=session, consultation=consultation
        )
        ranking_before = await actions.ranking_results(
            session=session, consultation_id=consultation.id
        )
        results_before = await questionnaires.questionnaire_results(
            session=session, consultation_id=consultation.id
        )

        await privacy.forget(session=session, participant=aicha, by=coordinator, erasure_key=KEY)
        await session.flush()

        marker = await session.get(Participant, aicha.id)
        assert (marker.name, marker.organisation, marker.email, marker.telegram_chat_id) == (
            None,
            None,
            None,
            None,
        )
        assert marker.category == "association"
        assert marker.erased_at == clock.now()
        assert marker.reply_key != old_key and not marker.telegram_active
        assert marker.consent_at is None and not marker.reachable
        # Nothing finds the person any more.
        with pytest.raises(NotFound):
            await participants.by_email(
                session=session, consultation_id=consultation.id, email=email
            )
        assert await participants.by_chat(session=session, chat_id=chat) is None
        assert await participants.by_reply_key(session=session, reply_key=old_key) is None
        for model in (Invitation, DialogueState):
            rows = (await session.exec(select(model).where(model.participant_id == aicha.id))).all()
            assert rows == []
        inbound = (await session.exec(select(InboundRecord))).one()
        assert (inbound.participant_id, inbound.detail, inbound.external_id) == (
            None,
            {},
            "<abc@example.org>",
        )
        for message in (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.participant_id == aicha.id)
            )
        ).all():
            assert message.payload == {} and message.address is None
            assert message.status in {OutboxStatus.CANCELLED, OutboxStatus.SENT}
        receipt = (
            await session.exec(select(OutboxMessage).where(OutboxMessage.template == "receipt"))
        ).one()
        assert receipt.status == OutboxStatus.CANCELLED
        [event] = (
            await session.exec(
                select(AuditEvent).where(AuditEvent.action == "participant.forgotten")
            )
        ).all()
        assert event.actor_id == coordinator.id and event.subject == f"participant:{aicha.id}"
        assert email not in json.dumps(event.detail)
        audit_text = " ".join(
            f"{e.subject} {e.reason} {json.dumps(e.detail)}"
            for e in (await session.exec(select(AuditEvent))).all()
        )
        assert email not in audit_text and "Aïcha" not in audit_text

        # Her words stay, as the consultation's material, and every count stays right.
        kept = sorted(
            o.text
            for o in (
                await session.exec(select(Observation).where(Observation.author_id == aicha.id))
            ).all()
        )
        assert kept == texts
        assert (
            await metrics.participation_by_category(session=session, consultation=consultation)
        )["association"]["contributed"] == counts_before["association"]["contributed"]
        assert (
            await metrics.participation_by_category(session=session, consultation=consultation)
        )["association"]["invited"] == counts_before["association"]["invited"]
        assert (
            await actions.ranking_results(session=session, consultation_id=consultation.id)
        ) == ranking_before
        assert (
            await questionnaires.questionnaire_results(
                session=session, consultation_id=consultation.id
            )
        ) == results_before

        # Nothing more is sent, and there is nothing left to export.
        assert not await outbox.notify(
            session=session,
            participant=marker,
            template="phase_opened",
            payload={},
            dedupe_key="after-forget",
        )
        with pytest.raises(NotFound) as gone:
            await privacy.export_data(session=session, participant=marker)
        assert gone.value.code == "privacy.forgotten"
        assert render_error("privacy.forgotten", {}, "fr")

        # Forgetting twice changes nothing.
        await privacy.forget(session=session, participant=marker, by=coordinator, erasure_key=KEY)
        assert (
            len(
                (
                    await session.exec(
                        select(AuditEvent).where(AuditEvent.action == "participant.forgotten")
                    )
                ).all()
            )
            == 1
        )


async def test_a_person_may_forget_themself_but_not_someone_else(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        aicha = await make_participant(session, consultation, name="Aïcha")
        bruno = await make_participant(session, consultation, name="Bruno")

        with pytest.raises(PermissionDenied):
            await privacy.forget(session=session, participant=bruno, by=aicha, erasure_key=KEY)
        assert bruno.name == "Bruno"

        await privacy.forget(session=session, participant=aicha, by=aicha, erasure_key=KEY)
        assert aicha.erased_at is not None
        event = (
            await session.exec(
                select(AuditEvent).where(AuditEvent.action == "participant.forgotten")
            )
        ).one()
        assert (event.actor_id, event.actor_label) == (None, "self")

        other = await make_consultation(session)
        stranger = await make_coordinator(session, other)
        with pytest.raises(PermissionDenied):
            await privacy.forget(session=session, participant=bruno, by=stranger, erasure_key=KEY)
