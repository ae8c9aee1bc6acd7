"""Evaluation questionnaires: who is asked, what an answer may be, and how results read."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from consultation import observations, questionnaires
from consultation.errors import NotFound, PermissionDenied, PhaseClosed, UserError
from models import Answer, AuditEvent, Channel, Questionnaire, QuestionnaireStatus
from templates.render import render_error
from tests.consultation.evaluation_story import messages, move_on
from tests.factories import make_consultation, make_coordinator, make_participant

TG = Channel.TELEGRAM


async def questionnaire(session, consultation, key: str) -> Questionnaire:
    return await questionnaires.get_questionnaire(
        session=session, consultation_id=consultation.id, key=key
    )


async def observe_then_evaluate(session, clock):
    """Aïcha and Bruno observe, Chloé does not; the observe phase closes."""
    consultation = await make_consultation(session, questionnaires=True)
    aicha = await make_participant(session, consultation, name="Aïcha", telegram_chat_id=101)
    bruno = await make_participant(session, consultation, name="Bruno", category="elected")
    chloe = await make_participant(session, consultation, name="Chloé", telegram_chat_id=103)
    for person in (aicha, bruno):
        await observations.submit_observation(
            session=session,
            participant=person,
            text="Les petites coopératives n'ont aucun accompagnement.",
            channel=TG,
        )
    await move_on(session, consultation, "review", clock)
    return consultation, aicha, bruno, chloe


async def test_after_a_phase_only_those_who_took_part_are_asked(db, clock):
    async with db.session() as session:
        consultation, aicha, bruno, chloe = await observe_then_evaluate(session, clock)
        step = await questionnaire(session, consultation, "after-observe")

        opened = await questionnaires.open_questionnaire(
            session=session, questionnaire_id=step.id, actor_label="scheduler"
        )

        assert opened.status == QuestionnaireStatus.OPEN
        assert opened.closes_at == clock.now() + timedelta(days=7)
        sent = await messages(session, "questionnaire_opened")
        assert sorted(m.participant_id for m in sent) == sorted([aicha.id, bruno.id])
        assert {m.channel for m in sent} == {"telegram", "email"}
        payload = sent[0].payload
        assert payload["key"] == "after-observe"
        assert payload["after_phase"] == "observe"
        assert payload["is_final"] is False
        assert payload["closes_at"] == opened.closes_at.isoformat()
        assert payload["timezone"] == "Europe/Paris"
        assert [q["kind"] for q in payload["questions"]] == ["likert", "choice", "text"]
        assert "Aïcha" not in str(payload) and "Bruno" not in str(payload)

        # Opening it again (a scheduler restart) tells nobody twice.
        await questionnaires.open_questionnaire(session=session, questionnaire_id=step.id)
        assert len(await messages(session, "questionnaire_opened")) == 2
        assert await questionnaires.open_for(session=session, participant=chloe) == []
        assert [
            q.key for q in await questionnaires.open_for(session=session, participant=aicha)
        ] == ["after-observe"]


async def test_the_final_questionnaire_goes_to_every_participant_but_not_coordinators(db, clock):
    async with db.session() as session:
        consultation, aicha, bruno, chloe = await observe_then_evaluate(session, clock)
        await make_coordinator(session, consultation, telegram_chat_id=900)
        declined = await make_participant(session, consultation, consented=False)
        final = await questionnaire(session, consultation, "final")

        await questionnaires.open_questionnaire(session=session, questionnaire_id=final.id)

        sent = await messages(session, "questionnaire_opened")
        assert sorted(m.participant_id for m in sent) == sorted([aicha.id, bruno.id, chloe.id])
        assert declined.id not in {m.participant_id for m in sent}
        assert sent[0].payload["is_final"] is True


async def test_the_scheduler_is_told_when_each_questionnaire_opens_and_closes(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session, questionnaires=True)
        assert (
            await questionnaires.due_questionnaires(
                session=session, consultation_id=consultation.id
            )
            == []
        )

        await move_on(session, consultation, "review", clock)
        due = await questionnaires.due_questionnaires(
            session=session, consultation_id=consultation.id
        )
        assert [(verb, q.key) for verb, q in due] == [("open", "after-observe")]

        step = due[0][1]
        await questionnaires.open_questionnaire(session=session, questionnaire_id=step.id)
        clock.advance(days=7)
        due = await questionnaires.due_questionnaires(
            session=session, consultation_id=consultation.id
        )
        assert [(verb, q.key) for verb, q in due] == [("close", "after-observe")]
        await questionnaires.close_questionnaire(
            session=session, questionnaire_id=step.id, actor_label="scheduler"
        )
        closed_at = step.closed_at
        # Closing twice changes nothing.
        clock.advance(hours=1)
        await questionnaires.close_questionnaire(session=session, questionnaire_id=step.id)
        assert step.closed_at == closed_at

        # The final questionnaire waits for the evaluate phase.
        for kind in ("propose", "rank"):
            await move_on(session, consultation, kind, clock)
        assert (
            await questionnaires.due_questionnaires(
                session=session, consultation_id=consultation.id
            )
            == []
        )
        await move_on(session, consultation, "evaluate", clock)
        due = await questionnaires.due_questionnaires(
            session=session, consultation_id=consultation.id
        )
        assert [(verb, q.key) for verb, q in due] == [("open", "final")]
        logged = (
            await session.exec(
                select(AuditEvent.action, AuditEvent.actor_label, AuditEvent.subject).where(
                    AuditEvent.action.startswith("questionnaire.")
                )
            )
        ).all()
        assert sorted(logged) == [
            ("questionnaire.closed", "scheduler", "after-observe"),
            ("questionnaire.opened", "system", "after-observe"),
        ]


async def test_without_an_evaluate_phase_the_final_one_follows_the_last_phase(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(
            session, phases=("observe", "review"), questionnaires=True
        )
        await move_on(session, consultation, "review", clock)
        due = await questionnaires.due_questionnaires(
            session=session, consultation_id=consultation.id
        )
        assert [(verb, q.key) for verb, q in due] == [("open", "after-observe")]
        await move_on(session, consultation, None, clock)
        due = await questionnaires.due_questionnaires(
            session=session, consultation_id=consultation.id
        )
        assert [(verb, q.key) for verb, q in due] == [("open", "after-observe"), ("open", "final")]


async def test_a_closed_questionnaire_cannot_be_opened_again(db, clock):
    async with db.session() as session:
        consultation, *_ = await observe_then_evaluate(session, clock)
        step = await questionnaire(session, consultation, "after-observe")
        await questionnaires.close_questionnaire(session=session, questionnaire_id=step.id)
        with pytest.raises(UserError) as refused:
            await questionnaires.open_questionnaire(session=session, questionnaire_id=step.id)
        assert refused.value.code == "questionnaire.already_closed"


async def test_a_participant_cannot_open_or_close_a_questionnaire(db, clock):
    async with db.session() as session:
        consultation, aicha, *_ = await observe_then_evaluate(session, clock)
        coordinator = await make_coordinator(session, consultation)
        step = await questionnaire(session, consultation, "after-observe")
        with pytest.raises(PermissionDenied):
            await questionnaires.open_questionnaire(
                session=session, questionnaire_id=step.id, by=aicha
            )
        with pytest.raises(PermissionDenied):
            await questionnaires.close_questionnaire(
                session=session, questionnaire_id=step.id, by=aicha
            )
        assert step.status == QuestionnaireStatus.SCHEDULED
        await questionnaires.open_questionnaire(
            session=session, questionnaire_id=step.id, by=coordinator
        )
        assert step.status == QuestionnaireStatus.OPEN


async def answerable(session, clock):
    consultation, aicha, bruno, chloe = await observe_then_evaluate(session, clock)
    step = await questionnaire(session, consultation, "after-observe")
    await questionnaires.open_questionnaire(session=session, questionnaire_id=step.id)
    return consultation, step, aicha, bruno, chloe


@pytest.mark.parametrize(
    ("position", "value", "code"),
    [
        (1, 0, "answer.likert_range"),
        (1, 6, "answer.likert_range"),
        (1, "beaucoup", "answer.not_a_number"),
        (1, True, "answer.not_a_number"),
        (2, 4, "answer.choice_range"),
        (2, 0, "answer.choice_range"),
        (3, "   ", "answer.empty"),
        (3, "bien\x07", "answer.control_characters"),
        (3, "x" * 1001, "answer.too_long"),
    ],
)
async def test_an_answer_outside_the_question_is_refused_with_a_reason(
    db, clock, position, value, code
):
    async with db.session() as session:
        _, step, aicha, *_ = await answerable(session, clock)
        with pytest.raises(UserError) as refused:
            await questionnaires.answer_question(
                session=session,
                participant=aicha,
                questionnaire_key=step.key,
                position=position,
                value=value,
                channel=TG,
            )
        assert refused.value.code == code
        # Every refusal has its sentence, in both languages.
        for locale in ("fr", "en"):
            assert render_error(refused.value.code, refused.value.params, locale)
        assert (await session.exec(select(Answer))).all() == []


async def test_answers_of_every_kind_are_recorded_and_can_be_changed_until_it_closes(db, clock):
    async with db.session() as session:
        _, step, aicha, *_ = await answerable(session, clock)

        async def answer(position, value, channel=TG):
            return await questionnaires.answer_question(
                session=session,
                participant=aicha,
                questionnaire_key="AFTER-OBSERVE",
                position=position,
                value=value,
                channel=channel,
            )

        assert (await answer(1, 5)).value_int == 5
        assert (await answer("2", "3")).value_int == 3  # an emailed "Q2 3"
        assert (await answer(3, "  Plus de temps entre les réunions.\r\n")).value_text == (
            "Plus de temps entre les réunions."
        )
        assert (
            await questionnaires.next_question(
                session=session, participant=aicha, questionnaire_id=step.id
            )
            is None
        )
        assert await questionnaires.open_for(session=session, participant=aicha) == []

        clock.advance(days=3)
        changed = await answer(1, 2, channel=Channel.EMAIL)
        assert (changed.value_int, changed.channel) == (2, "email")
        rows = (await session.exec(select(Answer).where(Answer.participant_id == aicha.id))).all()
        assert len(rows) == 3

        # Once the deadline passes the door closes, even before the scheduler closes it.
        clock.advance(days=4)
        with pytest.raises(PhaseClosed) as late:
            await answer(1, 4)
        assert late.value.code == "questionnaire.closed"
        await questionnaires.close_questionnaire(session=session, questionnaire_id=step.id)
        with pytest.raises(PhaseClosed):
            await answer(1, 4)
        assert changed.value_int == 2


async def test_questions_come_one_at_a_time_and_may_be_skipped(db, clock):
    async with db.session() as session:
        _, step, aicha, *_ = await answerable(session, clock)
        questions = await questionnaires.questions_of(session=session, questionnaire_id=step.id)
        assert [q.position for q in questions] == [1, 2, 3]

        first = await questionnaires.next_question(
            session=session, participant=aicha, questionnaire_id=step.id
        )
        assert first.position == 1
        await questionnaires.skip_question(
            session=session, participant=aicha, questionnaire_key=step.key, position=1, channel=TG
        )
        second = await questionnaires.next_question(
            session=session, participant=aicha, questionnaire_id=step.id
        )
        assert second.position == 2
        current = await questionnaires.current_questionnaire(session=session, participant=aicha)
        assert current.key == "after-observe"


async def test_an_unknown_questionnaire_or_question_is_explained(db, clock):
    async with db.session() as session:
        _, step, aicha, *_ = await answerable(session, clock)
        with pytest.raises(NotFound) as unknown:
            await questionnaires.answer_question(
                session=session,
                participant=aicha,
                questionnaire_key="nope",
                position=1,
                value=3,
                channel=TG,
            )
        assert unknown.value.code == "questionnaire.unknown"
        with pytest.raises(NotFound) as missing:
            await questionnaires.answer_question(
                session=session,
                participant=aicha,
                questionnaire_key=step.key,
                position=9,
                value=3,
                channel=TG,
            )
        assert missing.value.code == "questionnaire.unknown_question"
        assert missing.value.params["count"] == 3
        assert "nope" in render_error(unknown.value.code, unknown.value.params, "en")
        assert "1 to 3" in render_error(missing.value.code, missing.value.params, "en")


async def test_someone_who_has_not_consented_cannot_answer(db, clock):
    async with db.session() as session:
        consultation, step, *_ = await answerable(session, clock)
        stranger = await make_participant(session, consultation, consented=False)
        with pytest.raises(UserError) as refused:
            await questionnaires.answer_question(
                session=session,
                participant=stranger,
                questionnaire_key=step.key,
                position=1,
                value=3,
                channel=TG,
            )
        assert refused.value.code == "preferences.consent_required"


async def test_two_answers_to_one_question_at_once_leave_one_row(db, clock):
    async with db.session() as session:
        _, step, aicha, *_ = await answerable(session, clock)

    async def answer(value: int) -> None:
        async with db.session() as session:
            await questionnaires.answer_question(
                session=session,
                participant=aicha,
                questionnaire_key=step.key,
                position=1,
                value=value,
                channel=TG,
            )

    await asyncio.gather(answer(2), answer(4))
    async with db.session() as session:
        rows = (await session.exec(select(Answer).where(Answer.participant_id == aicha.id))).all()
        assert len(rows) == 1
        assert rows[0].value_int in {2, 4}


async def test_results_per_question_and_per_category_name_nobody(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session, questionnaires=True)
        people = [
            await make_participant(session, consultation, name=f"Nom{i}", category=category)
            for i, category in enumerate(["association", "association", "elected", "cooperative"])
        ]
        for person in people:
            await observations.submit_observation(
                session=session, participant=person, text="Constat de terrain.", channel=TG
            )
        await move_on(session, consultation, "review", clock)
        step = await questionnaire(session, consultation, "after-observe")
        await questionnaires.open_questionnaire(session=session, questionnaire_id=step.id)
        likert = [5, 4, 2, None]  # the cooperative skips
        choices = [1, 2, 2, 3]
        texts = ["Plus de réunions locales", "Des horaires du soir", None, "Rien à changer"]
        for person, scale, choice, text in zip(people, likert, choices, texts, strict=True):
            answer = {"session": session, "participant": person, "questionnaire_key": step.key}
            if scale is None:
                await questionnaires.skip_question(**answer, position=1, channel=TG)
            else:
                await questionnaires.answer_question(**answer, position=1, value=scale, channel=TG)
            await questionnaires.answer_question(**answer, position=2, value=choice, channel=TG)
            if text:
                await questionnaires.answer_question(**answer, position=3, value=text, channel=TG)

        results = await questionnaires.questionnaire_results(
            session=session, consultation_id=consultation.id
        )

        first = next(r for r in results if r["key"] == "after-observe")
        assert first["respondents"] == 4
        assert first["respondents_by_category"] == {
            "association": 2,
            "cooperative": 1,
            "elected": 1,
            "citizen": 0,
        }
        scale, choice, text = first["questions"]
        assert scale["answers"] == 3 and scale["skipped"] == 1
        assert scale["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
        assert scale["mean"] == pytest.approx(3.67)
        assert scale["by_category"]["association"]["mean"] == 4.5
        assert scale["by_category"]["elected"]["distribution"]["2"] == 1
        assert scale["by_category"]["cooperative"] == {
            "answers": 0,
            "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0},
            "mean": None,
        }
        assert choice["counts"] == [1, 2, 1]
        assert choice["choices"][0] == {"fr": "trop courte", "en": "too short"}
        assert choice["by_category"]["association"]["counts"] == [1, 1, 0]
        assert sorted(text["texts"]) == sorted(t for t in texts if t)
        assert text["by_category"]["association"] == {"answers": 2}
        assert "texts" not in text["by_category"]["association"]
        rendered = str(results)
        assert not any(f"Nom{i}" in rendered for i in range(4))
        final = next(r for r in results if r["key"] == "final")
        assert final["respondents"] == 0 and final["questions"][0]["mean"] is None

        # The order of the texts depends neither on who answered first nor on when.
        order = text["texts"]
        for person, answer_text in reversed(list(zip(people, texts, strict=True))):
            if answer_text:
                clock.advance(minutes=1)
                await questionnaires.answer_question(
                    session=session,
                    participant=person,
                    questionnaire_key=step.key,
                    position=3,
                    value=answer_text,
                    channel=TG,
                )
        again = await questionnaires.questionnaire_results(
            session=session, consultation_id=consultation.id
        )
        assert again[0]["questions"][2]["texts"] == order
