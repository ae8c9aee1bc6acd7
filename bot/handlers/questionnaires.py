"""/questionnaire: one question at a time, Likert as buttons 1–5, choices as buttons, free text
as a reply.

Each answer is recorded at once (a questionnaire left halfway keeps what was answered) and the
next question follows. A free-text question waits for a reply (a `question` dialogue); /skip
passes on it. Buttons carry the questionnaire id and the question's position, so a button
pressed after the questionnaire closed gets a polite answer.

Callback data: `qn:<id>` (start), `qa:<id>:<position>:<value|s>` (answer, s = skip).
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import dialogue
from bot.context import PalabreContext
from bot.handlers.common import ONLY_NEW, Turn, participant, replies_to
from bot.keyboards import GO_QUESTIONNAIRE, button, keyboard
from bot.text import N_
from consultation import questionnaires
from consultation.errors import NotFound
from models import Channel, Question, QuestionKind, Questionnaire
from templates.render import localized

SKIP = N_("Skip")


def question_markup(
    questionnaire: Questionnaire, question: Question, turn: Turn
) -> InlineKeyboardMarkup | None:
    prefix = f"qa:{questionnaire.id}:{question.position}"
    if question.kind == QuestionKind.LIKERT:
        rows = [[button(str(value), f"{prefix}:{value}") for value in range(1, 6)]]
    elif question.kind == QuestionKind.CHOICE:
        rows = [
            [button(localized(choice, turn.locale), f"{prefix}:{number}")]
            for number, choice in enumerate(question.choices, start=1)
        ]
    else:
        return None
    rows.append([button(turn.label(SKIP), f"{prefix}:s")])
    return keyboard(rows)


def question_view(
    questionnaire: Questionnaire, question: Question, count: int, turn: Turn
) -> dict[str, Any]:
    return {
        "title": localized(questionnaire.title, turn.locale),
        "position": question.position,
        "count": count,
        "kind": question.kind,
        "prompt": localized(question.prompt, turn.locale),
        "choices": [localized(choice, turn.locale) for choice in question.choices],
    }


async def ask_next(turn: Turn, questionnaire_id: int) -> None:
    """Send the next unanswered question of the questionnaire, or the thanks at the end."""
    async with turn.session() as session:
        me = await turn.me(session)
        questionnaire = await session.get(Questionnaire, questionnaire_id)
        if questionnaire is None:
            raise NotFound("questionnaire.unknown", key=str(questionnaire_id))
        question = await questionnaires.next_question(
            session=session, participant=me, questionnaire_id=questionnaire_id
        )
        count = len(
            await questionnaires.questions_of(session=session, questionnaire_id=questionnaire_id)
        )
        if question is not None and question.kind == QuestionKind.TEXT:
            await dialogue.begin(
                session,
                me,
                dialogue.QUESTION,
                questionnaire_id=questionnaire.id,
                key=questionnaire.key,
                position=question.position,
            )
        others = (
            []
            if question is not None
            else await questionnaires.open_for(session=session, participant=me)
        )
    if question is None:
        await turn.send(
            "questionnaire_done",
            title=localized(questionnaire.title, turn.locale),
            more=len(others),
        )
        return
    view = question_view(questionnaire, question, count, turn)
    if question.kind == QuestionKind.TEXT:
        await turn.ask("question", placeholder=turn.label(SKIP) + ": /skip", **view)
    else:
        await turn.send("question", markup=question_markup(questionnaire, question, turn), **view)


@participant
async def questionnaire_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/questionnaire: the open questionnaire that awaits me (a choice if there are several)."""
    async with turn.session() as session:
        waiting = await questionnaires.open_for(session=session, participant=await turn.me(session))
    if not waiting:
        await turn.send("questionnaire_none")
        return
    if len(waiting) == 1:
        await ask_next(turn, waiting[0].id)
        return
    await turn.send(
        "questionnaire_pick",
        markup=keyboard([[button(localized(q.title, turn.locale), f"qn:{q.id}")] for q in waiting]),
        titles=[localized(q.title, turn.locale) for q in waiting],
    )


@participant
async def start_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """A questionnaire picked from the list."""
    try:
        questionnaire_id = int(turn.data[1])
    except (IndexError, ValueError):
        await turn.stale()
        return
    await turn.drop_buttons()
    await ask_next(turn, questionnaire_id)


@participant
async def answer_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """1–5, a choice, or Skip under a question."""
    try:
        _, questionnaire_id, position, value = turn.data
        questionnaire_id, position = int(questionnaire_id), int(position)
    except ValueError:
        await turn.stale()
        return
    shown = await _record(turn, questionnaire_id, position, None if value == "s" else value)
    if shown is None:
        await turn.stale()
        return
    await turn.edit("question_answered", **shown)
    await ask_next(turn, questionnaire_id)


async def _record(
    turn: Turn, questionnaire_id: int, position: int, value: str | None
) -> dict[str, Any] | None:
    """Record (or skip) one answer; returns what the answered question shows, None if gone."""
    async with turn.session() as session:
        me = await turn.me(session)
        answered = await questionnaires.answer_or_skip(
            session=session,
            participant=me,
            questionnaire_id=questionnaire_id,
            position=position,
            value=value,
            channel=Channel.TELEGRAM,
        )
        if answered is None:
            return None
        await dialogue.end(session, me, dialogue.QUESTION)
    questionnaire, question, count = answered
    view = question_view(questionnaire, question, count, turn)
    if value is None:
        answer = None
    elif question.kind == QuestionKind.CHOICE:
        answer = view["choices"][int(value) - 1]
    else:
        answer = value
    return {**view, "answer": answer}


@replies_to(dialogue.QUESTION)
async def receive_text(turn: Turn, state: dialogue.Dialogue) -> None:
    """The typed answer to a free-text question."""
    questionnaire_id = int(state.data["questionnaire_id"])
    shown = await _record(turn, questionnaire_id, int(state.data["position"]), turn.text)
    if shown is None:
        await turn.stale()
        return
    await turn.send("question_answered", **shown)
    await ask_next(turn, questionnaire_id)


@participant
async def skip_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/skip: pass on the free-text question awaiting an answer."""
    async with turn.session() as session:
        state = await dialogue.expect(session, await turn.me(session), dialogue.QUESTION)
    if state is None:
        await turn.say_error("telegram.nothing_to_skip")
        return
    questionnaire_id = int(state.data["questionnaire_id"])
    shown = await _record(turn, questionnaire_id, int(state.data["position"]), None)
    if shown is None:
        await turn.stale()
        return
    await turn.send("question_answered", **shown)
    await ask_next(turn, questionnaire_id)


def handlers() -> list:
    return [
        CommandHandler("questionnaire", questionnaire_command, filters=ONLY_NEW),
        CommandHandler("skip", skip_command, filters=ONLY_NEW),
        CallbackQueryHandler(questionnaire_command, pattern=f"^{GO_QUESTIONNAIRE}$"),
        CallbackQueryHandler(start_button, pattern=r"^qn:\d+$"),
        CallbackQueryHandler(answer_button, pattern=r"^qa:"),
    ]
