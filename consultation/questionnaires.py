"""Evaluation questionnaires: a short one after each key step, and a final one, always.

A questionnaire is scheduled, then open for `open_days`, then closed. When it opens, it is sent
to everyone who took part in the phase it follows (contributed while that phase was open), or to
every participant for the final one. Questions are Likert (1 to 5), single choice (1 to n, the
number of the choice) or free text; a person may change an answer, or skip a question, until the
questionnaire closes.

Results are given per question, overall and per actor category: a Likert distribution and its
mean, the count of each choice, and the free-text answers listed without names, in a shuffled
order that does not depend on who answered or when. Text answers are listed overall only: in a
category of two or three people a list would point at its author.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, clock, metrics, outbox
from consultation.common import (
    actor_of,
    clean_text,
    get_consultation,
    people_to_tell,
    require_coordinator,
    rules,
)
from consultation.errors import NotFound, PhaseClosed, UserError
from consultation.preferences import has_consented, require_consent
from consultation.ranking import personal_order
from models import (
    Answer,
    Participant,
    Phase,
    PhaseKind,
    PhaseStatus,
    Question,
    QuestionKind,
    Questionnaire,
    QuestionnaireStatus,
    Role,
)
from models.db import insert_for

logger = logging.getLogger(__name__)

LIKERT = range(1, 6)


async def _get(session: AsyncSession, questionnaire_id: int) -> Questionnaire:
    questionnaire = await session.get(Questionnaire, questionnaire_id)
    if questionnaire is None:
        raise NotFound("questionnaire.unknown", key=str(questionnaire_id))
    return questionnaire


async def get_questionnaire(
    *, session: AsyncSession, consultation_id: int, key: str
) -> Questionnaire:
    """The questionnaire `key` of a consultation; NotFound `questionnaire.unknown` otherwise."""
    questionnaire = (
        await session.exec(
            select(Questionnaire)
            .where(Questionnaire.consultation_id == consultation_id)
            .where(Questionnaire.key == key.strip().lower())
        )
    ).first()
    if questionnaire is None:
        raise NotFound("questionnaire.unknown", key=key)
    return questionnaire


async def questions_of(*, session: AsyncSession, questionnaire_id: int) -> list[Question]:
    """The questions, in order."""
    return list(
        (
            await session.exec(
                select(Question)
                .where(Question.questionnaire_id == questionnaire_id)
                .order_by(Question.position)
            )
        ).all()
    )


async def _followed_phase(session: AsyncSession, questionnaire: Questionnaire) -> Phase | None:
    """The (latest) phase of the kind the questionnaire follows that has actually opened."""
    if questionnaire.after_phase is None:
        return None
    return (
        await session.exec(
            select(Phase)
            .where(Phase.consultation_id == questionnaire.consultation_id)
            .where(Phase.kind == questionnaire.after_phase)
            .where(Phase.opened_at.is_not(None))  # type: ignore[union-attr]
            .order_by(Phase.position.desc())  # type: ignore[attr-defined]
        )
    ).first()


async def audience(*, session: AsyncSession, questionnaire: Questionnaire) -> list[Participant]:
    """Whom the questionnaire is for: the phase's contributors, or every participant (final).

    Only people who have consented are asked (someone who never did cannot answer yet); people
    who are forgotten or opted out are left out, and so are the coordinators from the final
    questionnaire (they run the process it evaluates).
    """
    if questionnaire.is_final:
        people = await people_to_tell(
            session=session, consultation_id=questionnaire.consultation_id, coordinators=False
        )
        return [person for person in people if has_consented(person)]
    phase = await _followed_phase(session, questionnaire)
    if phase is None:
        return []
    ids = await metrics.contributors_in_phase(session=session, phase=phase)
    people = await people_to_tell(session=session, consultation_id=questionnaire.consultation_id)
    return [person for person in people if person.id in ids and has_consented(person)]


async def concerns(
    *, session: AsyncSession, questionnaire: Questionnaire, participant: Participant
) -> bool:
    """Whether `questionnaire` is meant for `participant` (see `audience`)."""
    if participant.consultation_id != questionnaire.consultation_id:
        return False
    if participant.erased_at is not None or not has_consented(participant):
        return False
    if questionnaire.is_final:
        return participant.role == Role.PARTICIPANT
    phase = await _followed_phase(session, questionnaire)
    if phase is None:
        return False
    return bool(
        await metrics.contributors_in_phase(
            session=session, phase=phase, participant_id=participant.id
        )
    )


def _is_open(questionnaire: Questionnaire) -> bool:
    return (
        questionnaire.status == QuestionnaireStatus.OPEN
        and questionnaire.closes_at is not None
        and clock.now() < questionnaire.closes_at
    )


async def open_questionnaire(
    *,
    session: AsyncSession,
    questionnaire_id: int,
    by: Participant | None = None,
    actor_label: str | None = None,
) -> Questionnaire:
    """Open the questionnaire for `open_days` and invite its audience (template
    "questionnaire_opened"). Opening an open questionnaire changes nothing; a closed one stays
    closed (`questionnaire.already_closed`)."""
    questionnaire = await _get(session, questionnaire_id)
    require_coordinator(by, questionnaire.consultation_id)
    if questionnaire.status == QuestionnaireStatus.CLOSED:
        raise UserError("questionnaire.already_closed", key=questionnaire.key)
    if questionnaire.status == QuestionnaireStatus.SCHEDULED:
        current = clock.now()
        questionnaire.status = QuestionnaireStatus.OPEN
        questionnaire.opened_at = current
        questionnaire.closes_at = current + timedelta(days=questionnaire.open_days)
        session.add(questionnaire)
        await audit.record(
            session=session,
            consultation_id=questionnaire.consultation_id,
            action="questionnaire.opened",
            subject=questionnaire.key,
            **actor_of(by, actor_label),
        )
    await _invite(session, questionnaire)
    return questionnaire


async def _invite(session: AsyncSession, questionnaire: Questionnaire) -> int:
    consultation = await get_consultation(
        session=session, consultation_id=questionnaire.consultation_id
    )
    questions = await questions_of(session=session, questionnaire_id=questionnaire.id)
    assert questionnaire.closes_at is not None
    payload = {
        "key": questionnaire.key,
        "title": dict(questionnaire.title),
        "is_final": questionnaire.is_final,
        "after_phase": questionnaire.after_phase,
        "closes_at": questionnaire.closes_at.isoformat(),
        "timezone": consultation.timezone,
        "questions": [
            {
                "position": question.position,
                "kind": question.kind,
                "prompt": dict(question.prompt),
                "choices": [dict(choice) for choice in question.choices],
            }
            for question in questions
        ],
    }
    sent = 0
    for person in await audience(session=session, questionnaire=questionnaire):
        # Not left to the digest: a weekly reader could meet a seven-day questionnaire too late.
        sent += await outbox.notify(
            session=session,
            participant=person,
            template="questionnaire_opened",
            payload=payload,
            dedupe_key=f"questionnaire_opened:{questionnaire.id}:{person.id}",
        )
    logger.info("questionnaire %s: %d invitations written", questionnaire.key, sent)
    return sent


async def close_questionnaire(
    *,
    session: AsyncSession,
    questionnaire_id: int,
    by: Participant | None = None,
    actor_label: str | None = None,
) -> Questionnaire:
    """Close the questionnaire: answers are final. Closing twice changes nothing."""
    questionnaire = await _get(session, questionnaire_id)
    require_coordinator(by, questionnaire.consultation_id)
    if questionnaire.status == QuestionnaireStatus.CLOSED:
        return questionnaire
    questionnaire.status = QuestionnaireStatus.CLOSED
    questionnaire.closed_at = clock.now()
    session.add(questionnaire)
    await audit.record(
        session=session,
        consultation_id=questionnaire.consultation_id,
        action="questionnaire.closed",
        subject=questionnaire.key,
        **actor_of(by, actor_label),
    )
    return questionnaire


async def due_questionnaires(
    *, session: AsyncSession, consultation_id: int | None = None
) -> list[tuple[str, Questionnaire]]:
    """What the scheduler should do now: ("open", q) and ("close", q), oldest first.

    A step questionnaire opens once the (latest) phase it follows has closed. The final one
    opens when the evaluate phase opens, or, in a consultation without one, when every phase is
    closed. An open questionnaire closes at its `closes_at`.
    """
    current = clock.now()
    query = select(Questionnaire).where(Questionnaire.status != QuestionnaireStatus.CLOSED)
    if consultation_id is not None:
        query = query.where(Questionnaire.consultation_id == consultation_id)
    phases_query = select(Phase)
    if consultation_id is not None:
        phases_query = phases_query.where(Phase.consultation_id == consultation_id)
    phases: dict[int, list[Phase]] = {}
    for phase in (await session.exec(phases_query.order_by(Phase.position))).all():
        phases.setdefault(phase.consultation_id, []).append(phase)
    due: list[tuple[str, Questionnaire]] = []
    for questionnaire in (await session.exec(query.order_by(Questionnaire.id))).all():
        if questionnaire.status == QuestionnaireStatus.OPEN:
            if questionnaire.closes_at is not None and questionnaire.closes_at <= current:
                due.append(("close", questionnaire))
            continue
        timetable = phases.get(questionnaire.consultation_id, [])
        if _ready(questionnaire, timetable):
            due.append(("open", questionnaire))
    return due


def _ready(questionnaire: Questionnaire, timetable: list[Phase]) -> bool:
    if questionnaire.is_final:
        evaluate = [phase for phase in timetable if phase.kind == PhaseKind.EVALUATE]
        if evaluate:
            return any(phase.opened_at is not None for phase in evaluate)
        return bool(timetable) and all(phase.status == PhaseStatus.CLOSED for phase in timetable)
    followed = [
        phase
        for phase in timetable
        if phase.kind == questionnaire.after_phase and phase.opened_at is not None
    ]
    return bool(followed) and followed[-1].status == PhaseStatus.CLOSED


async def _answered_positions(
    session: AsyncSession, questionnaire_id: int, participant_id: int
) -> set[int]:
    rows = await session.exec(
        select(Question.position)
        .join(Answer, Answer.question_id == Question.id)
        .where(Question.questionnaire_id == questionnaire_id)
        .where(Answer.participant_id == participant_id)
    )
    return set(rows.all())


async def open_for(*, session: AsyncSession, participant: Participant) -> list[Questionnaire]:
    """The open questionnaires meant for `participant` that still have a question for them."""
    found = (
        await session.exec(
            select(Questionnaire)
            .where(Questionnaire.consultation_id == participant.consultation_id)
            .where(Questionnaire.status == QuestionnaireStatus.OPEN)
            .order_by(Questionnaire.opened_at, Questionnaire.id)
        )
    ).all()
    result = []
    for questionnaire in found:
        if not _is_open(questionnaire):
            continue
        if not await concerns(
            session=session, questionnaire=questionnaire, participant=participant
        ):
            continue
        if await next_question(
            session=session, participant=participant, questionnaire_id=questionnaire.id
        ):
            result.append(questionnaire)
    return result


async def current_questionnaire(
    *, session: AsyncSession, participant: Participant
) -> Questionnaire | None:
    """The questionnaire a bare answer ("Q2 4") refers to: the latest open one meant for them.

    It may be fully answered already: the person is then changing an answer.
    """
    found = (
        await session.exec(
            select(Questionnaire)
            .where(Questionnaire.consultation_id == participant.consultation_id)
            .where(Questionnaire.status == QuestionnaireStatus.OPEN)
            .order_by(Questionnaire.opened_at.desc(), Questionnaire.id.desc())  # type: ignore[union-attr]
        )
    ).all()
    for questionnaire in found:
        if _is_open(questionnaire) and await concerns(
            session=session, questionnaire=questionnaire, participant=participant
        ):
            return questionnaire
    return None


async def next_question(
    *, session: AsyncSession, participant: Participant, questionnaire_id: int
) -> Question | None:
    """The first question `participant` has neither answered nor skipped, or None."""
    answered = await _answered_positions(session, questionnaire_id, participant.id)
    for question in await questions_of(session=session, questionnaire_id=questionnaire_id):
        if question.position not in answered:
            return question
    return None


async def answers_of(
    *, session: AsyncSession, participant: Participant, questionnaire_id: int
) -> dict[int, Answer]:
    """position → the person's answer (a skipped question has an answer with no value)."""
    rows = await session.exec(
        select(Question.position, Answer)
        .join(Answer, Answer.question_id == Question.id)
        .where(Question.questionnaire_id == questionnaire_id)
        .where(Answer.participant_id == participant.id)
    )
    return dict(rows.all())


def _number(value: Any) -> int:
    if isinstance(value, bool):
        raise UserError("answer.not_a_number", value=str(value))
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.isdecimal():
        raise UserError("answer.not_a_number", value=text)
    return int(text)


def _value(question: Question, value: Any, text_limit: int) -> tuple[int | None, str | None]:
    if question.kind == QuestionKind.LIKERT:
        number = _number(value)
        if number not in LIKERT:
            raise UserError("answer.likert_range", value=number)
        return number, None
    if question.kind == QuestionKind.CHOICE:
        number = _number(value)
        if not 1 <= number <= len(question.choices):
            raise UserError("answer.choice_range", value=number, count=len(question.choices))
        return number, None
    return None, clean_text(str(value), area="answer", limit=text_limit)


async def _upsert(
    session: AsyncSession,
    *,
    question: Question,
    participant: Participant,
    value_int: int | None,
    value_text: str | None,
    channel: str,
) -> Answer:
    current = clock.now()
    statement = insert_for(session)(Answer).values(
        question_id=question.id,
        participant_id=participant.id,
        value_int=value_int,
        value_text=value_text,
        channel=str(channel),
        created_at=current,
        updated_at=current,
    )
    # One row per person and question even when two answers race: the later one wins.
    statement = statement.on_conflict_do_update(
        index_elements=["question_id", "participant_id"],
        set_={
            "value_int": statement.excluded.value_int,
            "value_text": statement.excluded.value_text,
            "channel": statement.excluded.channel,
            "updated_at": statement.excluded.updated_at,
        },
    )
    await session.execute(statement)
    answer = (
        await session.exec(
            select(Answer)
            .where(Answer.question_id == question.id)
            .where(Answer.participant_id == participant.id)
            .execution_options(populate_existing=True)
        )
    ).one()
    return answer


async def _open_question(
    session: AsyncSession, participant: Participant, questionnaire_key: str, position: int | str
) -> tuple[Questionnaire, Question]:
    if participant.erased_at is not None:
        raise NotFound("questionnaire.unknown", key=questionnaire_key)
    questionnaire = await get_questionnaire(
        session=session, consultation_id=participant.consultation_id, key=questionnaire_key
    )
    if not _is_open(questionnaire):
        raise PhaseClosed("questionnaire.closed", key=questionnaire.key)
    try:
        number = _number(position)
    except UserError:
        number = -1
    question = (
        await session.exec(
            select(Question)
            .where(Question.questionnaire_id == questionnaire.id)
            .where(Question.position == number)
        )
    ).first()
    if question is None:
        count = len(await questions_of(session=session, questionnaire_id=questionnaire.id))
        raise NotFound(
            "questionnaire.unknown_question", key=questionnaire.key, position=position, count=count
        )
    return questionnaire, question


async def answer_question(
    *,
    session: AsyncSession,
    participant: Participant,
    questionnaire_key: str,
    position: int | str,
    value: int | str,
    channel: str,
) -> Answer:
    """Record (or change) one answer while the questionnaire is open.

    `value`: 1–5 for a Likert question, the choice's number (1..n) for a choice, the text for a
    free-text question (same length limit as an observation).
    """
    require_consent(participant)
    _, question = await _open_question(session, participant, questionnaire_key, position)
    consultation = await get_consultation(
        session=session, consultation_id=participant.consultation_id
    )
    limit = rules(consultation).observation_max_length
    value_int, value_text = _value(question, value, limit)
    return await _upsert(
        session,
        question=question,
        participant=participant,
        value_int=value_int,
        value_text=value_text,
        channel=channel,
    )


async def skip_question(
    *,
    session: AsyncSession,
    participant: Participant,
    questionnaire_key: str,
    position: int | str,
    channel: str,
) -> Answer:
    """Pass on a question: it is no longer asked, and counts in no result. Undone by answering."""
    require_consent(participant)
    _, question = await _open_question(session, participant, questionnaire_key, position)
    return await _upsert(
        session,
        question=question,
        participant=participant,
        value_int=None,
        value_text=None,
        channel=channel,
    )


async def answer_or_skip(
    *,
    session: AsyncSession,
    participant: Participant,
    questionnaire_id: int,
    position: int,
    value: str | None,
    channel: str,
) -> tuple[Questionnaire, Question, int] | None:
    """Answer question `position` (skip it when `value` is None), as a button or a typed reply
    does: the questionnaire, the question, and how many questions it has.

    None when the button points at nothing this person can answer (another consultation's
    questionnaire, a question that is gone).
    """
    questionnaire = await session.get(Questionnaire, questionnaire_id)
    if questionnaire is None or questionnaire.consultation_id != participant.consultation_id:
        return None
    questions = await questions_of(session=session, questionnaire_id=questionnaire_id)
    question = next((q for q in questions if q.position == position), None)
    if question is None:
        return None
    if value is None:
        await skip_question(
            session=session,
            participant=participant,
            questionnaire_key=questionnaire.key,
            position=position,
            channel=channel,
        )
    else:
        await answer_question(
            session=session,
            participant=participant,
            questionnaire_key=questionnaire.key,
            position=position,
            value=value,
            channel=channel,
        )
    return questionnaire, question, len(questions)


# --- results -------------------------------------------------------------------------------


def _likert(values: list[int]) -> dict[str, Any]:
    distribution = {str(point): 0 for point in LIKERT}
    for value in values:
        distribution[str(value)] += 1
    mean = round(sum(values) / len(values), 2) if values else None
    return {"answers": len(values), "distribution": distribution, "mean": mean}


def _choices(values: list[int], count: int) -> dict[str, Any]:
    counts = [0] * count
    for value in values:
        if 1 <= value <= count:
            counts[value - 1] += 1
    return {"answers": len(values), "counts": counts}


async def questionnaire_results(
    *, session: AsyncSession, consultation_id: int
) -> list[dict[str, Any]]:
    """Every questionnaire's results, per question, overall and per actor category (plain JSON).

    Per question: `answers` (skips excluded) and `skipped`; Likert: `distribution` ("1".."5" →
    count) and `mean` (2 decimals, None without answers); choice: `choices` (the labels) and
    `counts` (aligned with them); text: `texts`, the answers without names, in a shuffled order
    fixed by the question and the set of texts. `by_category` has, for every category, the same
    figures (for text questions, only the number of answers).
    """
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    keys = [category["key"] for category in consultation.categories]
    questionnaires = (
        await session.exec(
            select(Questionnaire)
            .where(Questionnaire.consultation_id == consultation_id)
            .order_by(Questionnaire.is_final, Questionnaire.id)
        )
    ).all()
    results = []
    for questionnaire in questionnaires:
        rows = (
            await session.exec(
                select(Answer, Participant.category)
                .join(Question, Question.id == Answer.question_id)
                .join(Participant, Participant.id == Answer.participant_id)
                .where(Question.questionnaire_id == questionnaire.id)
            )
        ).all()
        by_question: dict[int, list[tuple[Answer, str]]] = {}
        respondents: dict[int, str] = {}
        for answer, category in rows:
            by_question.setdefault(answer.question_id, []).append((answer, category))
            if answer.value_int is not None or answer.value_text is not None:
                respondents[answer.participant_id] = category
        questions = []
        for question in await questions_of(session=session, questionnaire_id=questionnaire.id):
            questions.append(
                _question_result(
                    consultation_id, questionnaire, question, by_question.get(question.id, []), keys
                )
            )
        per_category = {key: 0 for key in keys}
        for category in respondents.values():
            per_category[category] = per_category.get(category, 0) + 1
        results.append(
            {
                "key": questionnaire.key,
                "title": dict(questionnaire.title),
                "after_phase": questionnaire.after_phase,
                "final": questionnaire.is_final,
                "status": questionnaire.status,
                "opened_at": _iso(questionnaire.opened_at),
                "closes_at": _iso(questionnaire.closes_at),
                "closed_at": _iso(questionnaire.closed_at),
                "respondents": len(respondents),
                "respondents_by_category": per_category,
                "questions": questions,
            }
        )
    return results


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _question_result(
    consultation_id: int,
    questionnaire: Questionnaire,
    question: Question,
    rows: list[tuple[Answer, str]],
    keys: list[str],
) -> dict[str, Any]:
    given = [(answer, category) for answer, category in rows if _has_value(answer)]
    result: dict[str, Any] = {
        "position": question.position,
        "kind": question.kind,
        "prompt": dict(question.prompt),
        "skipped": len(rows) - len(given),
    }
    categories = list(keys) + sorted({c for _, c in given if c not in keys})

    def in_category(key: str) -> list[Answer]:
        return [answer for answer, category in given if category == key]

    if question.kind == QuestionKind.LIKERT:
        result.update(_likert([answer.value_int for answer, _ in given]))  # type: ignore[misc]
        result["by_category"] = {
            key: _likert([a.value_int for a in in_category(key)])  # type: ignore[misc]
            for key in categories
        }
    elif question.kind == QuestionKind.CHOICE:
        count = len(question.choices)
        result["choices"] = [dict(choice) for choice in question.choices]
        result.update(_choices([answer.value_int for answer, _ in given], count))  # type: ignore[misc]
        result["by_category"] = {
            key: _choices([a.value_int for a in in_category(key)], count)  # type: ignore[misc]
            for key in categories
        }
    else:
        texts = sorted(answer.value_text for answer, _ in given if answer.value_text)
        seed = f"{consultation_id}:{questionnaire.key}:{question.position}:texts"
        result["answers"] = len(texts)
        result["texts"] = personal_order(texts, seed)
        result["by_category"] = {key: {"answers": len(in_category(key))} for key in categories}
    return result


def _has_value(answer: Answer) -> bool:
    return answer.value_int is not None or answer.value_text is not None
