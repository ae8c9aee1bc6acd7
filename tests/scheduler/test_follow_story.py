"""After the vote, a year of follow-up run by the scheduler alone, on a clock the test moves.

The story's consultation (tests/scheduler/story.py) gains a follow phase, from the end of the
evaluation (Friday 10 April 2026, 18:00) to a year later, with a follow-up questionnaire every
six months and one at the end. What each person touched:

    Aïcha (Telegram)   proposed A1 and ranked it first
    Bruno (email)      confirmed F1, which A2 answers
    Chloé (Telegram)   contested F1
    Farid (Telegram)   ranked A3 then A2
    Denis said STOP; Emma never consented; Céline coordinates.
"""

from __future__ import annotations

from sqlmodel import select

from consultation import actions, clock, definition, findings, followup
from models import Channel, FollowUpRound
from scheduler import plan
from tests.factories import make_coordinator, make_participant
from tests.scheduler.story import Cast, deliver, messages, paris, spec

TG, EMAIL = Channel.TELEGRAM, Channel.EMAIL


def follow_spec() -> definition.ConsultationSpec:
    data = spec("ess-follow").model_dump()
    data["phases"].append(
        {
            "kind": "follow",
            "opens": paris("2026-04-10 18:00"),
            "closes": paris("2027-04-10 18:00"),
            "min_days": 30,
            "max_days": 400,
        }
    )
    data["rules"] = {**data["rules"], "follow_questionnaire_months": 6}
    return definition.ConsultationSpec.model_validate(data)


async def set_up(db) -> Cast:  # as story.set_up, with a follow phase
    async with db.session() as session:
        consultation, _ = await definition.apply(session=session, spec=follow_spec())
        await session.flush()
        cast = Cast(
            consultation=consultation,
            celine=await make_coordinator(session, consultation, telegram_chat_id=900),
            aicha=await make_participant(session, consultation, telegram_chat_id=101),
            bruno=await make_participant(session, consultation, category="cooperative"),
            chloe=await make_participant(
                session, consultation, telegram_chat_id=103, category="elected"
            ),
            denis=await make_participant(
                session, consultation, telegram_chat_id=104, category="citizen"
            ),
            emma=await make_participant(
                session, consultation, telegram_chat_id=105, consented=False
            ),
            farid=await make_participant(
                session, consultation, telegram_chat_id=106, category="citizen"
            ),
        )
        cast.denis.opted_out_at = clock.now()
        session.add(cast.denis)
    return cast


async def step(clock, service, db, moment):
    clock.set(moment)
    report = await service.run_due()
    assert report.failed == []
    await deliver(db)
    return report


def told(cast, rows) -> dict[str, list[str]]:
    return {
        cast.name(row.participant_id): [action["code"] for action in row.payload["actions"]]
        for row in rows
    }


async def test_a_year_of_follow_up_tells_each_member_what_became_of_what_they_touched(
    db, clock, make_service
):
    cast = await set_up(db)
    c = cast.consultation.id
    service = make_service()

    # The consultation runs to the end of the ranking, the scheduler opening and closing phases.
    await step(clock, service, db, paris("2026-03-02 11:00"))
    await step(clock, service, db, paris("2026-03-09 18:30"))
    async with db.session() as session:
        await findings.draft_finding(
            session=session,
            consultation_id=c,
            by=cast.celine,
            text="Les petites coopératives manquent d'accompagnement.",
        )
        await findings.publish_findings(
            session=session, consultation_id=c, by=cast.celine, codes=["F1"]
        )
        await findings.record_stance(
            session=session, participant=cast.bruno, code="F1", choice="confirm", channel=EMAIL
        )
        await findings.record_stance(
            session=session,
            participant=cast.chloe,
            code="F1",
            choice="contest",
            reason="Les grandes aussi.",
            channel=TG,
        )
    await step(clock, service, db, paris("2026-03-16 09:30"))
    async with db.session() as session:
        await actions.propose_action(
            session=session, participant=cast.aicha, text="Un guichet unique.", channel=TG
        )
        await actions.add_action(
            session=session,
            consultation_id=c,
            by=cast.celine,
            text="Des prêts d'honneur pour les coopératives.",
            finding_codes=["F1"],
        )
        await actions.add_action(
            session=session, consultation_id=c, by=cast.celine, text="Une fête de l'ESS."
        )
        await actions.shortlist(
            session=session, consultation_id=c, by=cast.celine, codes=["A1", "A2", "A3"]
        )
    await step(clock, service, db, paris("2026-03-20 18:30"))
    async with db.session() as session:
        await actions.cast_ballot(session=session, participant=cast.aicha, codes=["A1"], channel=TG)
        await actions.cast_ballot(
            session=session, participant=cast.farid, codes=["A3", "A2"], channel=TG
        )
    await step(clock, service, db, paris("2026-03-27 18:30"))

    # The local government answers two actions of three.
    async with db.session() as session:
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A1",
            decision="retained",
            lead="Maison de l'ESS",
            due="2026-09",
            milestones=["Local trouvé", "Ouverture"],
            by=cast.celine,
        )
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A2",
            decision="not retained",
            reason="La Région finance déjà des prêts d'honneur.",
            by=cast.celine,
        )

    # The follow phase opens and everyone on Telegram is told (Bruno, by email, hears of it in
    # his first follow-up digest).
    await step(clock, service, db, paris("2026-04-10 18:30"))
    opened = await messages(db, "phase_opened", kind="follow")
    assert {cast.name(m.participant_id) for m in opened} == {
        "celine",
        "aicha",
        "chloe",
        "farid",
    }
    assert not await messages(db, "follow_digest")

    # The next morning, the first follow-up digest: each member hears about what they touched
    # (each action once) and about A2, not retained, with its reason. Not Denis (STOP), not
    # Emma (no consent), not Céline.
    await step(clock, service, db, paris("2026-04-11 08:00"))
    # Two weeks after the ranking closed, Céline (not the members) was reminded of A3.
    [missing] = await messages(db, "plan_missing")
    assert cast.name(missing.participant_id) == "celine"
    assert [a["code"] for a in missing.payload["actions"]] == ["A3"]
    first = await messages(db, "follow_digest")
    assert told(cast, first) == {
        "aicha": ["A1", "A2"],
        "bruno": ["A2"],
        "chloe": ["A2"],
        "farid": ["A2"],
    }
    by_name = {cast.name(row.participant_id): row for row in first}
    assert by_name["bruno"].channel == EMAIL and by_name["aicha"].channel == TG
    aicha_a1 = by_name["aicha"].payload["actions"][0]
    assert aicha_a1["touched"] == ["proposed", "ranked"]
    assert (aicha_a1["lead"], aicha_a1["due"]) == ("Maison de l'ESS", "2026-09-30")
    assert by_name["farid"].payload["actions"][0]["touched"] == ["ranked"]
    assert by_name["aicha"].payload["actions"][1]["reason"].startswith("La Région")

    # A3 is answered and A1 starts; the next month's digest tells only those concerned.
    clock.set(paris("2026-04-20 10:00"))
    async with db.session() as session:
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A3",
            decision="retained",
            due="2026-12-15",
            by=cast.celine,
        )
        await followup.record_progress(
            session=session,
            consultation_id=c,
            code="A1",
            status="started",
            tick=[1],
            by=cast.celine,
        )
    await step(clock, service, db, paris("2026-05-11 08:00"))
    second = (await messages(db, "follow_digest"))[len(first) :]
    assert told(cast, second) == {"aicha": ["A1"], "farid": ["A3"]}
    [a1] = next(r for r in second if cast.name(r.participant_id) == "aicha").payload["actions"]
    assert (a1["status"], a1["changes"], a1["ticked"]) == (
        "started",
        ["milestone", "progress"],
        [1],
    )

    # A month with no change: no digest for anyone.
    await step(clock, service, db, paris("2026-06-11 08:00"))
    assert len(await messages(db, "follow_digest")) == len(first) + len(second)

    # A1 was due at the end of September and nothing was reported since: Céline is told, once.
    await step(clock, service, db, paris("2026-10-01 08:00"))
    await step(clock, service, db, paris("2026-10-02 08:00"))
    [overdue] = await messages(db, "plan_overdue")
    assert cast.name(overdue.participant_id) == "celine"
    assert [a["code"] for a in overdue.payload["actions"]] == ["A1"]

    # Six months in, the follow-up questionnaire asks about the retained actions each touched.
    await step(clock, service, db, paris("2026-10-10 08:00"))
    asked = await messages(db, "followup_questionnaire")
    assert told(cast, asked) == {"aicha": ["A1"], "farid": ["A3"]}
    async with db.session() as session:
        await followup.answer_follow_up(
            session=session,
            participant=cast.aicha,
            code="A1",
            value="partly",
            remark="Le guichet n'ouvre que le mardi.",
            channel=TG,
        )
        await followup.answer_follow_up(
            session=session, participant=cast.farid, code="A3", value="non", channel=TG
        )
        await followup.record_progress(
            session=session,
            consultation_id=c,
            code="A1",
            status="late",
            note="Le local n'est pas encore aménagé.",
            by=cast.celine,
        )

    # A year on, the follow phase closes and the questionnaire at the end goes out; the
    # periodic one that would have fallen on the same day does not.
    await step(clock, service, db, paris("2027-04-10 18:30"))
    asked = await messages(db, "followup_questionnaire")
    assert [row.payload["number"] for row in asked] == [1, 1, 2, 2]
    assert all(row.payload["final"] for row in asked[2:])
    # A last digest tells what changed since the previous one: A1 is late.
    [last] = [row for row in await messages(db, "follow_digest") if row.created_at >= clock.now()]
    assert told(cast, [last]) == {"aicha": ["A1"]}
    assert last.payload["actions"][0]["note"] == "Le local n'est pas encore aménagé."
    async with db.session() as session:
        rounds = (await session.exec(select(FollowUpRound).order_by(FollowUpRound.number))).all()
        assert [(r.number, r.final) for r in rounds] == [(1, False), (2, True)]
        results = await followup.followup_results(session=session, consultation_id=c)
        [a1, a3] = results[0]["actions"]
        assert a1["by_category"]["association"]["partly"] == 1
        assert a3["by_category"]["citizen"]["no"] == 1
        state = await followup.plan_of(session=session, consultation_id=c)
        assert state["missing"] == []
        assert {row["code"]: row["status"] for row in state["actions"]} == {
            "A1": "late",
            "A2": None,
            "A3": "planned",
        }
        leftover = [
            job
            for job in await plan.derive(session=session, now=clock.now(), consultation_id=c)
            if job.kind in (plan.FOLLOW_DIGEST, plan.FOLLOW_QUESTIONNAIRE, plan.PLAN_MISSING)
        ]
        assert leftover == []
    # Nothing ever went to Denis, who said STOP, or to Emma, who never consented.
    for row in await messages(db):
        assert cast.name(row.participant_id) not in ("denis", "emma") or row.template in (
            "invitation",
        )
