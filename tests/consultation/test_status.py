"""What awaits one person now: the answer behind /status, the digests and the reminders."""

from __future__ import annotations

import json

from sqlmodel import select

from consultation import actions, findings, observations, questionnaires, status
from models import Channel, Questionnaire
from tests.factories import make_consultation, make_coordinator, make_participant


async def _awaiting(db, person):
    async with db.session() as session:
        return await status.awaiting(session=session, participant=person)


async def test_in_the_observe_phase_observations_are_welcome_until_the_days_cap(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe", rules={"daily_cap": 2})
        aicha = await make_participant(session, c, telegram_chat_id=101)
    waiting = await _awaiting(db, aicha)
    assert waiting.phase.kind == "observe"
    assert (waiting.observations_welcome, waiting.remaining_today) == (True, 2)
    assert not waiting.is_empty
    for text in ("Une", "Deux"):
        async with db.session() as session:
            await observations.submit_observation(
                session=session, participant=aicha, text=text, channel=Channel.TELEGRAM
            )
    waiting = await _awaiting(db, aicha)
    assert (waiting.observations_welcome, waiting.remaining_today) == (False, 0)
    assert waiting.contributed_in_phase == 2
    assert waiting.is_empty
    clock.advance(days=1)
    assert (await _awaiting(db, aicha)).observations_welcome


async def test_in_review_the_findings_not_yet_answered_await_in_the_persons_order(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="review")
        aicha = await make_participant(session, c, telegram_chat_id=101)
        celine = await make_coordinator(session, c)
        for n in range(1, 6):
            await findings.draft_finding(
                session=session, consultation_id=c.id, by=celine, text=f"Constat {n}"
            )
        await findings.publish_findings(session=session, consultation_id=c.id, by=celine)
    waiting = await _awaiting(db, aicha)
    async with db.session() as session:
        order = [v.code for v in await findings.findings_for(session=session, participant=aicha)]
    assert waiting.findings == order and sorted(order) == ["F1", "F2", "F3", "F4", "F5"]
    async with db.session() as session:
        await findings.record_stance(
            session=session, participant=aicha, code="F2", choice="confirm", channel="telegram"
        )
    assert "F2" not in (await _awaiting(db, aicha)).findings
    async with db.session() as session:
        f2 = await findings.get_finding(session=session, consultation_id=c.id, code="F2")
        await findings.edit_finding(session=session, finding_id=f2.id, by=celine, text="Nouveau")
    assert "F2" in (await _awaiting(db, aicha)).findings
    summary = (await _awaiting(db, aicha)).summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["findings_count"] == 5 and summary["phase"]["kind"] == "review"


async def test_in_the_rank_phase_a_ballot_is_needed_once_there_is_a_shortlist(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="rank")
        aicha = await make_participant(session, c, telegram_chat_id=101)
    assert not (await _awaiting(db, aicha)).ballot_needed
    async with db.session() as session:
        await actions.add_action(session=session, consultation_id=c.id, by=None, text="Guichet")
        await actions.shortlist(session=session, consultation_id=c.id, by=None, codes=["A1"])
    assert (await _awaiting(db, aicha)).ballot_needed
    async with db.session() as session:
        await actions.cast_ballot(session=session, participant=aicha, codes=["A1"], channel="email")
    waiting = await _awaiting(db, aicha)
    assert not waiting.ballot_needed and waiting.is_empty


async def test_an_open_questionnaire_with_questions_left_awaits_too(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="evaluate", questionnaires=True)
        aicha = await make_participant(session, c, telegram_chat_id=101)
        final = (
            await session.exec(
                select(Questionnaire)
                .where(Questionnaire.consultation_id == c.id)
                .where(Questionnaire.key == "final")
            )
        ).one()
        await questionnaires.open_questionnaire(
            session=session, questionnaire_id=final.id, actor_label="cli"
        )
    waiting = await _awaiting(db, aicha)
    assert waiting.questionnaires == ["final"] and not waiting.is_empty


async def test_nothing_awaits_a_coordinator_nor_anyone_between_phases(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        celine = await make_coordinator(session, c)
        after = await make_consultation(session, current=None)
        aicha = await make_participant(session, after, telegram_chat_id=101)
    waiting = await _awaiting(db, celine)
    assert waiting.phase.kind == "observe" and waiting.is_empty
    waiting = await _awaiting(db, aicha)
    assert waiting.phase is None and waiting.is_empty
    assert waiting.summary()["phase"] is None
