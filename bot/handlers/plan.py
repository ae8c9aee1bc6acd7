"""/plan: the action plan after the vote, for everyone; its answers and progress, for coordinators.

Members get `/plan` read-only: every action with the local government's answer and progress.
While a follow-up questionnaire is open, it also asks them, one action at a time, whether each
action they took part in is progressing as announced (yes / partly / no / don't know as
buttons); a remark, optional, is the next message they type.

Coordinators also record the answers and the progress, in one line each:

    /plan decide A3 retained | Maison de l'ESS | 2028-06 | Local trouvé; Ouverture
    /plan decide A3 retained-with-changes | new wording | reason | lead | due
    /plan decide A9 not-retained | reason
    /plan progress A3 started | note          /plan progress A3 tick 1

Callback data: `fu:<code>:<y|p|n|u>` (an answer), `fu:next:<code>` (leave that action for the
next one), `go:followup` (start).
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import dialogue
from bot.context import PalabreContext
from bot.handlers.common import ONLY_NEW, Turn, participant, refuse, replies_to
from bot.keyboards import GO_FOLLOWUP, button, keyboard
from bot.text import N_
from consultation import followup
from consultation.errors import UserError
from models import Channel, Decision

logger = logging.getLogger(__name__)

ANSWER_FOLLOWUP = N_("Is it progressing as announced?")
NEXT = N_("Next")
VIEWS = (
    ("y", "yes", N_("yes")),
    ("p", "partly", N_("partly")),
    ("n", "no", N_("no")),
    ("u", "unknown", N_("don't know")),
)
BY_LETTER = {letter: view for letter, view, _ in VIEWS}


def _segments(text: str) -> list[str]:
    return [part.strip() for part in text.split("|")]


def question_markup(code: str, turn: Turn) -> InlineKeyboardMarkup | None:
    return keyboard(
        [
            [button(turn.label(word), f"fu:{code}:{letter}") for letter, _, word in VIEWS[:2]],
            [button(turn.label(word), f"fu:{code}:{letter}") for letter, _, word in VIEWS[2:]],
            [button(turn.label(NEXT), f"fu:next:{code}")],
        ]
    )


@participant
async def plan_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/plan: the whole plan; /plan decide … and /plan progress … for coordinators."""
    words = turn.args
    if words and words[0].lower() in ("decide", "progress", "decider", "avancement"):
        if not turn.participant.is_coordinator:
            await refuse(turn, "plan")
            return
        rest = turn.text.split(maxsplit=2)[2] if len(turn.text.split(maxsplit=2)) > 2 else ""
        if words[0].lower() in ("decide", "decider"):
            await _decide(turn, rest)
        else:
            await _progress(turn, rest)
        return
    async with turn.session() as session:
        me = await turn.me(session)
        plan = await followup.plan_of(session=session, consultation_id=me.consultation_id)
        asked = await followup.questions_for(session=session, participant=me)
    markup = None
    if asked and asked["actions"]:
        markup = keyboard([[button(f"🔎 {turn.label(ANSWER_FOLLOWUP)}", GO_FOLLOWUP)]])
    await turn.send("plan", markup=markup, plan=plan, coordinator=me.is_coordinator)


async def _decide(turn: Turn, text: str) -> None:
    """`A3 retained | lead | due | milestones`, `A3 retained-with-changes | wording | reason |
    lead | due | milestones`, `A9 not-retained | reason`."""
    head, *parts = _segments(text)
    code, _, word = head.partition(" ")
    if not code or not word.strip():
        raise UserError("telegram.plan_usage")
    decision = followup.parse_decision(word)
    fields: dict[str, Any] = {}
    if decision == Decision.NOT_RETAINED:
        fields["reason"] = parts[0] if parts else None
    else:
        names = ["lead", "due", "milestones"]
        if decision == Decision.RETAINED_WITH_CHANGES:
            names = ["wording", "reason", *names]
        fields = dict(zip(names, parts, strict=False))
        if fields.get("milestones"):
            fields["milestones"] = [m.strip() for m in fields["milestones"].split(";") if m.strip()]
        fields = {key: value for key, value in fields.items() if value}
    async with turn.session() as session:
        me = await turn.me(session)
        await followup.decide(
            session=session,
            consultation_id=me.consultation_id,
            code=code,
            decision=decision,
            by=me,
            **fields,
        )
        state = await _state(session, me.consultation_id, code)
    await turn.send("plan_recorded", action=state)


async def _progress(turn: Turn, text: str) -> None:
    """`A3 started | note`, `A3 late | note`, `A3 tick 1 2`."""
    head, *parts = _segments(text)
    code, _, rest = head.partition(" ")
    words = rest.split()
    if not code or not words:
        raise UserError("telegram.plan_usage")
    status, tick = None, []
    if words[0].lower() in ("tick", "etape", "étape"):
        if not all(word.isdecimal() for word in words[1:]) or len(words) < 2:
            raise UserError("telegram.plan_usage")
        tick = [int(word) for word in words[1:]]
    else:
        status = " ".join(words)
    async with turn.session() as session:
        me = await turn.me(session)
        await followup.record_progress(
            session=session,
            consultation_id=me.consultation_id,
            code=code,
            status=status,
            note=parts[0] if parts else None,
            tick=tick,
            by=me,
        )
        state = await _state(session, me.consultation_id, code)
    await turn.send("plan_recorded", action=state)


async def _state(session: Any, consultation_id: int, code: str) -> dict[str, Any]:
    plan = await followup.plan_of(session=session, consultation_id=consultation_id)
    wanted = code.strip().upper()
    return next(row for row in plan["actions"] if row["code"] == wanted)


async def _ask_next(turn: Turn, skip: str | None = None) -> None:
    """The next action of the open follow-up questionnaire the person has not answered."""
    async with turn.session() as session:
        me = await turn.me(session)
        asked = await followup.questions_for(session=session, participant=me)
    if asked is None:
        raise UserError("plan.no_followup")
    waiting = [a for a in asked["actions"] if a["answer"] is None and a["code"] != skip]
    if not waiting:
        await turn.send("followup_done")
        return
    action = waiting[0]
    await turn.send(
        "followup_question", markup=question_markup(action["code"], turn), action=action
    )


@participant
async def followup_start(update: Update, context: PalabreContext, turn: Turn) -> None:
    """The button under /plan and under the invitation: the first action to answer about."""
    await _ask_next(turn)


@participant
async def followup_answer(update: Update, context: PalabreContext, turn: Turn) -> None:
    """An answer button: record it, offer a remark, and ask about the next action."""
    if turn.data[1] == "next":
        # Leave this action (unanswered, or answered without a remark) for the next one.
        async with turn.session() as session:
            await dialogue.end(session, await turn.me(session), dialogue.FOLLOWUP_REMARK)
        await turn.drop_buttons()
        await _ask_next(turn, skip=turn.data[2] if len(turn.data) > 2 else None)
        return
    if len(turn.data) != 3 or turn.data[2] not in BY_LETTER:
        await turn.stale()
        return
    code, view = turn.data[1], BY_LETTER[turn.data[2]]
    async with turn.session() as session:
        me = await turn.me(session)
        answer = await followup.answer_follow_up(
            session=session, participant=me, code=code, value=view, channel=Channel.TELEGRAM
        )
        await dialogue.begin(session, me, dialogue.FOLLOWUP_REMARK, code=code)
    await turn.edit(
        "followup_recorded",
        markup=keyboard([[button(turn.label(NEXT), f"fu:next:{code}")]]),
        code=code,
        view=answer.value,
        remark=answer.remark,
    )


@replies_to(dialogue.FOLLOWUP_REMARK)
async def receive_remark(turn: Turn, state: dialogue.Dialogue) -> None:
    """The text after an answer: its remark. Then the next action."""
    code = str(state.data.get("code", ""))
    async with turn.session() as session:
        me = await turn.me(session)
        asked = await followup.questions_for(session=session, participant=me)
        current = next((a for a in (asked or {}).get("actions", []) if a["code"] == code), None)
        if current is None or current["answer"] is None:
            await dialogue.end(session, me)
            raise UserError("plan.no_followup")
        answer = await followup.answer_follow_up(
            session=session,
            participant=me,
            code=code,
            value=current["answer"],
            remark=turn.text,
            channel=Channel.TELEGRAM,
        )
        await dialogue.end(session, me)
    await turn.send("followup_recorded", code=code, view=answer.value, remark=answer.remark)
    await _ask_next(turn, skip=code)


def handlers() -> list:
    return [
        CommandHandler("plan", plan_command, filters=ONLY_NEW),
        CallbackQueryHandler(followup_start, pattern=f"^{GO_FOLLOWUP}$"),
        CallbackQueryHandler(followup_answer, pattern=r"^fu:(next:\w+|\w+:[ypnu])$"),
    ]
