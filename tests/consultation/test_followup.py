"""After the vote: the official answer to every action, its progress, and who is told what.

The story: Aïcha proposed A1 (merged into A3) and ranked A3, A2; Bruno confirmed F1 (which A2
and A3 answer) and ranked A3; Chloé ranked A2, A3. Nobody touched A4.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from consultation import followup, privacy
from consultation.errors import PermissionDenied, PhaseClosed, UserError
from models import AuditEvent, Channel, PlanEvent
from tests.consultation.evaluation_story import a_whole_process, messages
from tests.factories import ALL_PHASES, make_participant

TG = Channel.TELEGRAM
WITH_FOLLOW = (*ALL_PHASES, "follow")


async def story(session, clock, **kwargs):
    return await a_whole_process(session, clock, phases=WITH_FOLLOW, stance=True, **kwargs)


async def test_a_decision_waits_for_the_ranking_and_a_refusal_needs_a_reason(db, clock):
    async with db.session() as session:
        consultation, celine, aicha, *_ = await story(session, clock, finish=False)
        c = consultation.id
        with pytest.raises(UserError) as early:
            await followup.decide(
                session=session, consultation_id=c, code="A3", decision="retained", by=celine
            )
        assert early.value.code == "plan.ranking_not_over"

    async with db.session() as session:
        consultation, celine, aicha, *_ = await story(session, clock)
        c = consultation.id
        with pytest.raises(PermissionDenied):
            await followup.decide(
                session=session, consultation_id=c, code="A3", decision="retained", by=aicha
            )
        with pytest.raises(UserError) as no_reason:
            await followup.decide(
                session=session, consultation_id=c, code="A4", decision="not-retained", by=celine
            )
        assert no_reason.value.code == "plan.reason_required"
        with pytest.raises(UserError) as no_wording:
            await followup.decide(
                session=session,
                consultation_id=c,
                code="A2",
                decision="retained with changes",
                reason="Le budget ne permet que des prêts plus petits.",
                by=celine,
            )
        assert no_wording.value.code == "plan.wording_required"
        with pytest.raises(UserError) as merged:
            await followup.decide(
                session=session, consultation_id=c, code="A1", decision="retained", by=celine
            )
        assert merged.value.code == "action.merged"

        decided = await followup.decide(
            session=session,
            consultation_id=c,
            code="a3",
            decision="retained",
            lead="Maison de l'ESS",
            due="2028-06",
            milestones=["Local trouvé", "Ouverture au public"],
            by=celine,
        )
        assert (decided.decision, decided.lead, decided.due_on) == (
            "retained",
            "Maison de l'ESS",
            date(2028, 6, 30),
        )
        # The same answer again is no new event.
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A3",
            decision="retained",
            lead="Maison de l'ESS",
            due="2028-06",
            milestones=["Local trouvé", "Ouverture au public"],
            by=celine,
        )
        events = (await session.exec(select(PlanEvent))).all()
        assert [(e.kind, e.value) for e in events] == [("decision", "retained")]
        audit = (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "plan.decided"))
        ).all()
        assert [(a.subject, a.actor_id) for a in audit] == [("A3", celine.id)]

        plan = await followup.plan_of(session=session, consultation_id=c)
        assert [row["code"] for row in plan["actions"]] == ["A3", "A2", "A4"]
        assert plan["missing"] == ["A2", "A4"]
        a3 = plan["actions"][0]
        assert a3["rank"] == 1 and a3["status"] == "planned"
        assert [m["text"] for m in a3["milestones"]] == ["Local trouvé", "Ouverture au public"]


async def test_progress_is_dated_and_late_or_abandoned_needs_a_note(db, clock):
    async with db.session() as session:
        consultation, celine, *_ = await story(session, clock)
        c = consultation.id
        with pytest.raises(UserError) as undecided:
            await followup.record_progress(
                session=session, consultation_id=c, code="A3", status="started", by=celine
            )
        assert undecided.value.code == "plan.not_decided"
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A3",
            decision="retained",
            milestones=["Local trouvé", "Ouverture"],
            by=celine,
        )
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A4",
            decision="not retained",
            reason="Une fête existe déjà au printemps.",
            by=celine,
        )
        with pytest.raises(UserError) as refused:
            await followup.record_progress(
                session=session, consultation_id=c, code="A4", status="started", by=celine
            )
        assert refused.value.code == "plan.not_retained"
        for status in ("late", "abandoned"):
            with pytest.raises(UserError) as no_note:
                await followup.record_progress(
                    session=session, consultation_id=c, code="A3", status=status, by=celine
                )
            assert no_note.value.code == "plan.note_required"
        with pytest.raises(UserError) as bad:
            await followup.record_progress(
                session=session, consultation_id=c, code="A3", tick=[3], by=celine
            )
        assert bad.value.code == "plan.unknown_milestone"

        clock.advance(days=10)
        await followup.record_progress(
            session=session, consultation_id=c, code="A3", status="started", tick=[1], by=celine
        )
        clock.advance(days=30)
        row = await followup.record_progress(
            session=session,
            consultation_id=c,
            code="A3",
            status="en retard",
            note="Le local n'est pas encore aménagé.",
            actor_label="cli",
        )
        assert (row.status, row.status_note) == ("late", "Le local n'est pas encore aménagé.")
        assert row.status_at == clock.now()
        events = (await session.exec(select(PlanEvent).where(PlanEvent.kind != "decision"))).all()
        assert [(e.kind, e.value, e.at) for e in events] == [
            ("progress", "started", clock.now() - timedelta(days=30)),
            ("milestone", "1", clock.now() - timedelta(days=30)),
            ("progress", "late", clock.now()),
        ]
        plan = await followup.plan_of(session=session, consultation_id=c)
        a3 = plan["actions"][0]
        assert [m["done"] for m in a3["milestones"]] == [True, False]
        assert plan["statuses"] == {"late": 1}


async def test_members_hear_only_about_what_they_touched_and_every_refusal_once(db, clock):
    async with db.session() as session:
        consultation, celine, aicha, bruno, chloe = await story(session, clock)
        c = consultation.id
        denis = await make_participant(session, consultation, telegram_chat_id=14)
        start = clock.now()
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A3",
            decision="retained",
            lead="Maison de l'ESS",
            due="2028-06",
            by=celine,
        )
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A4",
            decision="not-retained",
            reason="Une fête existe déjà au printemps.",
            by=celine,
        )
        # Someone who said STOP, and someone forgotten, hear nothing.
        chloe.opted_out_at = clock.now()
        session.add(chloe)
        await privacy.forget(
            session=session, participant=denis, actor_label="cli", erasure_key="test-key"
        )
        clock.advance(hours=1)

        written = await followup.send_follow_digest(
            session=session, consultation_id=c, since=None, until=clock.now()
        )
        sent = await messages(session, "follow_digest")
        assert written == 2
        by_person = {m.participant_id: m.payload for m in sent}
        assert set(by_person) == {aicha.id, bruno.id}
        # Aïcha proposed A1 (now A3) and ranked A3: A3 once, with both reasons; A4 refused.
        mine = by_person[aicha.id]["actions"]
        assert [(a["code"], a["touched"]) for a in mine] == [
            ("A3", ["proposed", "ranked"]),
            ("A4", []),
        ]
        assert mine[1]["reason"] == "Une fête existe déjà au printemps."
        assert mine[0]["lead"] == "Maison de l'ESS" and mine[0]["due"] == "2028-06-30"
        assert [(a["code"], a["touched"]) for a in by_person[bruno.id]["actions"]] == [
            ("A3", ["finding", "ranked"]),
            ("A4", []),
        ]
        assert "Aïcha" not in str(sent) and "Bruno" not in str(sent)

        # The same digest again writes nothing; a period without change sends nothing.
        assert (
            await followup.send_follow_digest(
                session=session, consultation_id=c, since=None, until=clock.now()
            )
            == 0
        )
        later = clock.advance(days=30)
        assert (
            await followup.send_follow_digest(
                session=session, consultation_id=c, since=start + timedelta(hours=1), until=later
            )
            == 0
        )
        # A progress update reaches only those who touched A3, and only about A3.
        clock.advance(days=1)
        await followup.record_progress(
            session=session, consultation_id=c, code="A3", status="started", by=celine
        )
        clock.advance(days=30)
        assert (
            await followup.send_follow_digest(
                session=session, consultation_id=c, since=later, until=clock.now()
            )
            == 2
        )
        news = [m for m in await messages(session, "follow_digest") if m.payload["since"]]
        assert {m.participant_id for m in news} == {aicha.id, bruno.id}
        for message in news:
            [item] = message.payload["actions"]
            assert (item["code"], item["status"], item["changes"]) == (
                "A3",
                "started",
                ["progress"],
            )


async def test_the_follow_up_questionnaire_asks_about_touched_actions_and_tallies_by_category(
    db, clock
):
    async with db.session() as session:
        consultation, celine, aicha, bruno, chloe = await story(session, clock)
        c = consultation.id
        for code in ("A2", "A3"):
            await followup.decide(
                session=session, consultation_id=c, code=code, decision="retained", by=celine
            )
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A4",
            decision="not retained",
            reason="Hors budget.",
            by=celine,
        )
        with pytest.raises(PhaseClosed):
            await followup.answer_follow_up(
                session=session, participant=aicha, code="A3", value="yes", channel=TG
            )

        found = await followup.open_round(session=session, consultation_id=c, number=1)
        again = await followup.open_round(session=session, consultation_id=c, number=1)
        assert again.id == found.id
        invited = await messages(session, "followup_questionnaire")
        assert {m.participant_id: [a["code"] for a in m.payload["actions"]] for m in invited} == {
            aicha.id: ["A2", "A3"],
            bruno.id: ["A2", "A3"],
            chloe.id: ["A2", "A3"],
        }

        await followup.answer_follow_up(
            session=session, participant=aicha, code="A3", value="oui", channel=TG
        )
        await followup.answer_follow_up(
            session=session,
            participant=bruno,
            code="A3",
            value="partly",
            remark="Le guichet n'ouvre que le mardi.",
            channel=Channel.EMAIL,
        )
        # Changing one's answer keeps the earlier remark.
        await followup.answer_follow_up(
            session=session, participant=bruno, code="A3", value="no", channel=Channel.EMAIL
        )
        with pytest.raises(UserError) as not_asked:
            await followup.answer_follow_up(
                session=session, participant=aicha, code="A4", value="yes", channel=TG
            )
        assert not_asked.value.code == "plan.not_asked"
        with pytest.raises(UserError) as bad:
            await followup.answer_follow_up(
                session=session, participant=aicha, code="A3", value="bof", channel=TG
            )
        assert bad.value.code == "plan.unknown_view"

        asked = await followup.questions_for(session=session, participant=aicha)
        assert [(a["code"], a["answer"]) for a in asked["actions"]] == [("A2", None), ("A3", "yes")]

        [result] = await followup.followup_results(session=session, consultation_id=c)
        assert result["respondents"] == 2
        [a3] = result["actions"]
        assert a3["counts"] == {"yes": 1, "partly": 0, "no": 1, "unknown": 0}
        assert a3["by_category"]["association"]["yes"] == 1
        assert a3["by_category"]["elected"]["no"] == 1
        assert a3["remarks"] == ["Le guichet n'ouvre que le mardi."]
        plan = await followup.plan_of(session=session, consultation_id=c)
        assert plan["actions"][0]["members"] == {"yes": 1, "partly": 0, "no": 1, "unknown": 0}

        clock.advance(days=15)
        with pytest.raises(PhaseClosed):
            await followup.answer_follow_up(
                session=session, participant=aicha, code="A2", value="yes", channel=TG
            )


async def test_coordinators_are_reminded_of_missing_decisions_and_overdue_actions(db, clock):
    async with db.session() as session:
        consultation, celine, aicha, *_ = await story(session, clock)
        c = consultation.id
        assert await followup.remind_missing_decisions(session=session, consultation_id=c, key="1")
        [missing] = await messages(session, "plan_missing")
        assert missing.participant_id == celine.id
        assert [a["code"] for a in missing.payload["actions"]] == ["A3", "A2", "A4"]

        await followup.decide(
            session=session,
            consultation_id=c,
            code="A3",
            decision="retained",
            due=(clock.now() + timedelta(days=20)).date(),
            by=celine,
        )
        assert await followup.remind_overdue(session=session, consultation_id=c, key="d1") == 0
        clock.advance(days=22)
        assert await followup.remind_overdue(session=session, consultation_id=c, key="d2") == 1
        # Told once per due date.
        assert await followup.remind_overdue(session=session, consultation_id=c, key="d3") == 0
        [late] = await messages(session, "plan_overdue")
        assert late.participant_id == celine.id
        assert [a["code"] for a in late.payload["actions"]] == ["A3"]
        assert not await messages(session, "plan_overdue", aicha.id)


async def test_a_persons_follow_up_answers_are_in_their_data_export(db, clock):
    async with db.session() as session:
        consultation, celine, aicha, bruno, _ = await story(session, clock)
        await followup.decide(
            session=session,
            consultation_id=consultation.id,
            code="A3",
            decision="retained",
            by=celine,
        )
        await followup.open_round(session=session, consultation_id=consultation.id, number=1)
        for person, view in ((aicha, "yes"), (bruno, "no")):
            await followup.answer_follow_up(
                session=session, participant=person, code="A3", value=view, channel=TG
            )
        data = await privacy.export_data(session=session, participant=aicha)
        assert [
            (a["questionnaire"], a["action"], a["answer"]) for a in data["followup_answers"]
        ] == [(1, "A3", "yes")]


async def test_the_follow_up_digest_waits_for_the_end_of_the_quiet_hours_on_telegram(db, clock):
    async with db.session() as session:
        consultation, celine, aicha, bruno, _ = await story(session, clock)
        await followup.decide(
            session=session,
            consultation_id=consultation.id,
            code="A3",
            decision="retained",
            by=celine,
        )
        # 06:30 in Paris, inside the quiet hours (21:00-08:00).
        clock.set(datetime(2026, 4, 1, 4, 30, tzinfo=UTC))
        await followup.send_follow_digest(
            session=session, consultation_id=consultation.id, since=None, until=clock.now()
        )
        sent = {m.participant_id: m for m in await messages(session, "follow_digest")}
        assert sent[aicha.id].channel == Channel.TELEGRAM
        assert sent[aicha.id].next_attempt_at == datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
        # Email is not a push in the night: it goes at once.
        assert sent[bruno.id].channel == Channel.EMAIL
        assert sent[bruno.id].next_attempt_at == clock.now()
