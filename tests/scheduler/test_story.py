"""A whole consultation run by the scheduler alone, on a clock the test moves.

From the first phase to the final questionnaire, each step asserts the outbox: who was told,
who was reminded and who was not, that nothing reached Telegram in the quiet hours.
"""

from __future__ import annotations

from datetime import UTC, time, timedelta

from consultation import actions, findings, observations, questionnaires
from models import Channel, OutboxStatus
from scheduler import plan
from tests.scheduler.story import PARIS, deliver, messages, paris, phases_by_kind, set_up


async def step(clock, service, db, moment):
    """Move the clock to `moment`, let the scheduler run, and let the senders send."""
    clock.set(moment)
    report = await service.run_due()
    await deliver(db)
    return report


def who(cast, rows) -> list[str]:
    return sorted(cast.name(row.participant_id) for row in rows)


async def test_a_consultation_runs_from_its_first_phase_to_its_final_questionnaire(
    db, clock, make_service
):
    cast = await set_up(db)
    c = cast.consultation.id
    service = make_service()
    phases = await phases_by_kind(db, c)

    # Monday 2 March, 10:00: nothing is due before the observe phase opens at 11:00.
    report = await service.run_due()
    assert report.leader and report.ran == [] and report.failed == []
    assert await messages(db) == []

    # 11:00: the observe phase opens and everyone who agreed to take part is told (not Emma,
    # who has not consented yet), Bruno in his digest.
    report = await step(clock, service, db, paris("2026-03-02 11:00"))
    assert report.transitions == [f"phase-open:{c}:{phases['observe'].id}"]
    told = await messages(db, "phase_opened")
    assert who(cast, told) == ["aicha", "celine", "chloe", "farid"]

    async with db.session() as session:
        for person in (cast.aicha, cast.chloe):
            await observations.submit_observation(
                session=session,
                participant=person,
                text="Les petites coopératives n'ont aucun accompagnement dédié.",
                channel=Channel.TELEGRAM,
            )

    # Saturday 18:00, 48 h before the deadline: Bruno and Farid, who have observed nothing,
    # are reminded; Aïcha and Chloé, who have, are not; nor Denis (STOP), Emma (no consent)
    # or Céline (she coordinates).
    report = await step(clock, service, db, paris("2026-03-07 18:00"))
    assert report.failed == []
    reminded = await messages(db, "reminder", phase_kind="observe", hours=48)
    assert who(cast, reminded) == ["bruno", "farid"]
    assert all(row.payload["observation"] for row in reminded)
    by_name = {cast.name(row.participant_id): row for row in reminded}
    assert by_name["bruno"].channel == Channel.EMAIL
    assert by_name["farid"].channel == Channel.TELEGRAM

    async with db.session() as session:
        await observations.submit_observation(
            session=session,
            participant=cast.bruno,
            text="L'accès à la commande publique reste très difficile.",
            channel=Channel.EMAIL,
        )

    # Monday 12:00, 6 h before: only Farid still owes an observation.
    await step(clock, service, db, paris("2026-03-09 12:00"))
    assert who(cast, await messages(db, "reminder", phase_kind="observe", hours=6)) == ["farid"]

    # 18:00: observe closes, its questionnaire goes to those who took part, review opens.
    report = await step(clock, service, db, paris("2026-03-09 18:00"))
    assert report.transitions[0] == f"phase-close:{c}:{phases['observe'].id}"
    assert report.transitions[-1] == f"phase-open:{c}:{phases['review'].id}"
    assert any(job.startswith("questionnaire-open:") for job in report.transitions)
    invited = await messages(db, "questionnaire_opened", key="after-observe")
    assert who(cast, invited) == ["aicha", "bruno", "chloe"]

    async with db.session() as session:
        for text in ("Les coopératives manquent d'accompagnement.", "La commande publique."):
            await findings.draft_finding(
                session=session, consultation_id=c, by=cast.celine, text=text
            )
        await findings.publish_findings(session=session, consultation_id=c, by=cast.celine)
        for person, codes in ((cast.chloe, "F1 F2"), (cast.farid, "F1 F2"), (cast.aicha, "F1")):
            for code in codes.split():
                await findings.record_stance(
                    session=session,
                    participant=person,
                    code=code,
                    choice="confirm",
                    channel=Channel.TELEGRAM,
                )
        await questionnaires.answer_question(
            session=session,
            participant=cast.chloe,
            questionnaire_key="after-observe",
            position=1,
            value=4,
            channel=Channel.TELEGRAM,
        )

    # Saturday 14 March 09:00, 48 h before review closes: Aïcha owes F2 (and her
    # questionnaire), Bruno both findings; Chloé and Farid have answered everything.
    await step(clock, service, db, paris("2026-03-14 09:00"))
    reminded = await messages(db, "reminder", phase_kind="review", hours=48)
    assert who(cast, reminded) == ["aicha", "bruno"]
    by_name = {cast.name(row.participant_id): row.payload for row in reminded}
    assert by_name["aicha"]["findings"] == ["F2"]
    assert sorted(by_name["bruno"]["findings"]) == ["F1", "F2"]
    assert [q["key"] for q in by_name["aicha"]["questionnaires"]] == ["after-observe"]

    # Monday 16 March 03:00, 6 h before the 09:00 deadline, in the quiet hours: Aïcha's
    # Telegram reminder waits for 08:00; Bruno's email goes now. Nothing reaches Telegram.
    night = paris("2026-03-16 03:00")
    clock.set(night)
    await service.run_due()
    delivered = await deliver(db)
    reminded = {
        cast.name(row.participant_id): row
        for row in await messages(db, "reminder", phase_kind="review", hours=6)
    }
    assert sorted(reminded) == ["aicha", "bruno"]
    assert reminded["aicha"].next_attempt_at == paris("2026-03-16 08:00")
    assert reminded["bruno"].next_attempt_at == night
    assert [message.channel for message in delivered] == [Channel.EMAIL]

    # 09:00: review closes, propose opens. Aïcha proposes; Céline adds one and shortlists.
    report = await step(clock, service, db, paris("2026-03-16 09:00"))
    assert f"phase-open:{c}:{phases['propose'].id}" in report.transitions
    async with db.session() as session:
        await actions.propose_action(
            session=session,
            participant=cast.aicha,
            text="Un guichet unique d'accompagnement pour les coopératives.",
            channel=Channel.TELEGRAM,
        )
        await actions.add_action(
            session=session, consultation_id=c, by=cast.celine, text="Clauses sociales."
        )
        await actions.shortlist(
            session=session, consultation_id=c, by=cast.celine, codes=["A1", "A2"]
        )

    # The scheduler is down from Monday 09:00 to Friday 18:00: the propose reminders (Wednesday
    # 18:00, Friday 12:00) are past their deadline and never sent; the transitions happen at
    # once; the after-observe questionnaire (closing Monday 18:00) closes.
    report = await step(clock, service, db, paris("2026-03-20 18:05"))
    assert f"phase-close:{c}:{phases['propose'].id}" in report.transitions
    assert f"phase-open:{c}:{phases['rank'].id}" in report.transitions
    assert await messages(db, "reminder", phase_kind="propose") == []
    async with db.session() as session:
        for person in (cast.aicha, cast.chloe):
            await actions.cast_ballot(
                session=session, participant=person, codes=["A1", "A2"], channel=Channel.TELEGRAM
            )

    # Wednesday 25 March 18:00: those who have not ranked are reminded of their ranking.
    await step(clock, service, db, paris("2026-03-25 18:00"))
    reminded = await messages(db, "reminder", phase_kind="rank", hours=48)
    assert who(cast, reminded) == ["bruno", "farid"]
    assert all(row.payload["ballot"] for row in reminded)

    # Friday 27 March 18:00: rank closes; the final plan goes to every participant who agreed to
    # take part, with what became of their contributions; the evaluation opens with the final
    # questionnaire.
    report = await step(clock, service, db, paris("2026-03-27 18:00"))
    assert f"phase-close:{c}:{phases['rank'].id}" in report.transitions
    assert f"phase-open:{c}:{phases['evaluate'].id}" in report.transitions
    final_plans = await messages(db, "final_plan")
    assert who(cast, final_plans) == ["aicha", "bruno", "chloe", "farid"]
    aicha_plan = next(row for row in final_plans if row.participant_id == cast.aicha.id)
    assert aicha_plan.payload["proposal_count"] == 1
    assert [item["code"] for item in aicha_plan.payload["plan"]] == ["A1", "A2"]
    final = await messages(db, "questionnaire_opened", key="final")
    assert who(cast, final) == ["aicha", "bruno", "chloe", "farid"]  # Emma has not consented
    async with db.session() as session:
        await questionnaires.answer_question(
            session=session,
            participant=cast.chloe,
            questionnaire_key="final",
            position=1,
            value=5,
            channel=Channel.TELEGRAM,
        )

    # The final questionnaire has one reminder, two days before it closes, to those who have
    # not answered it; the evaluation phase itself sends no reminder.
    # Seven days of 24 hours: across the change to summer time, it closes at 19:00 in Paris.
    closes = paris("2026-03-27 18:00").astimezone(UTC) + timedelta(days=7)
    assert closes == paris("2026-04-03 19:00")
    for moment in (closes - timedelta(hours=48), closes - timedelta(hours=6), closes):
        report = await step(clock, service, db, moment)
        assert report.failed == []
    reminded = await messages(db, "reminder", phase_kind=None)
    assert who(cast, reminded) == ["aicha", "bruno", "farid"]
    assert [q["key"] for q in reminded[0].payload["questionnaires"]] == ["final"]
    assert await messages(db, "reminder", phase_kind="evaluate") == []

    # Friday 10 April: the evaluation closes; nothing is left to schedule.
    report = await step(clock, service, db, paris("2026-04-10 18:00"))
    assert report.transitions == [f"phase-close:{c}:{phases['evaluate'].id}"]
    async with db.session() as session:
        assert await plan.derive(session=session, now=clock.now()) == []
    # Digests went to Bruno alone, who reads Palabre by email, at most one a week.
    digests = await messages(db, "digest")
    assert digests and who(cast, digests) == ["bruno"] * len(digests)
    assert all(row.channel == Channel.EMAIL for row in digests)
    assert len({row.dedupe_key for row in digests}) == len(digests) <= 6

    # Every message went out, each once, and none to Telegram in the quiet hours.
    sent = await messages(db)
    # Except the review's 6 h reminder: held by the quiet hours, it was not yet sent when this
    # story's clock jumped past the deadline, so the sender dropped it as stale (issue 10).
    stale = [row for row in sent if row.last_error == "expired"]
    assert [(row.template, row.payload["hours"]) for row in stale] == [("reminder", 6)]
    sent = [row for row in sent if row not in stale]
    assert all(row.status == OutboxStatus.SENT for row in sent)
    assert len({row.dedupe_key for row in sent}) == len(sent)
    for row in sent:
        if row.channel == Channel.TELEGRAM:
            local = row.sent_at.astimezone(PARIS).time()
            assert time(8, 0) <= local < time(21, 0), (row.template, row.sent_at)
