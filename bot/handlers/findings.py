"""/findings: confirm, contest (with a reason) or abstain on each published finding.

Each finding awaiting my answer comes as its own message with three buttons. Contest asks for
the reason as a reply; nothing is recorded until the reason comes. Once answered, the message
shows my answer and a Change button, until the review phase closes. Buttons carry the finding's
version: a button pressed under an older wording shows the new wording instead of answering it.

Callback data: `st:<code>:<c|x|a|ch>:<version>`.
"""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import dialogue
from bot.context import PalabreContext
from bot.handlers.common import ONLY_NEW, Turn, participant, replies_to
from bot.keyboards import GO_FINDINGS, button, keyboard
from bot.text import N_
from bot.views import phase_view
from consultation import findings, phases
from consultation.findings import FindingView
from models import Channel, PhaseKind, StanceChoice

CONFIRM = N_("Confirm")
CONTEST = N_("Contest")
ABSTAIN = N_("Abstain")
CHANGE = N_("Change my answer")
# Confirm and Abstain answer at once; Contest asks for the reason first; Change shows the choices.
CHOICES = {"c": StanceChoice.CONFIRM, "a": StanceChoice.ABSTAIN}
ACTIONS = {"c", "x", "a", "ch"}


def choice_markup(view: FindingView, turn: Turn) -> InlineKeyboardMarkup | None:
    data = f"st:{view.code}:{{}}:{view.version}"
    return keyboard(
        [
            [
                button(f"✅ {turn.label(CONFIRM)}", data.format("c")),
                button(f"✖️ {turn.label(CONTEST)}", data.format("x")),
            ],
            [button(f"➖ {turn.label(ABSTAIN)}", data.format("a"))],
        ]
    )


def change_markup(view: FindingView, turn: Turn) -> InlineKeyboardMarkup | None:
    return keyboard([[button(turn.label(CHANGE), f"st:{view.code}:ch:{view.version}")]])


@participant
async def findings_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/findings [all]: one message per published finding awaiting my answer."""
    show_all = turn.args[:1] == ["all"] or turn.args[:1] == ["tout"]
    async with turn.session() as session:
        views = await findings.findings_for(
            session=session, participant=await turn.me(session), awaiting_only=not show_all
        )
        phase = await phases.current_phase(
            session=session, consultation_id=turn.participant.consultation_id
        )
    review = phase if phase is not None and phase.kind == PhaseKind.REVIEW else None
    await turn.send(
        "findings_intro",
        count=len(views),
        all=show_all,
        phase=phase_view(review, turn.consultation),
    )
    for view in views:
        answered = view.choice is not None
        await turn.send(
            "finding",
            markup=(change_markup if answered else choice_markup)(view, turn) if review else None,
            finding=view.as_dict(),
            revised=False,
        )


@participant
async def stance_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """Confirm / Contest / Abstain / Change under a finding."""
    try:
        _, code, action, version_text = turn.data
        version = int(version_text)
    except ValueError:
        await turn.stale()
        return
    if action not in ACTIONS:
        await turn.stale()
        return
    async with turn.session() as session:
        me = await turn.me(session)
        view = await findings.answer(
            session=session,
            participant=me,
            code=code,
            version=version,
            choice=CHOICES.get(action),
            channel=Channel.TELEGRAM,
        )
        revised = view is not None and view.version != version
        if view is not None and action == "x" and not revised:
            message = turn.query.message
            await dialogue.begin(
                session,
                me,
                dialogue.CONTEST,
                code=code,
                version=version,
                message_id=message.message_id if message else None,
            )
        elif view is not None and (revised or action in CHOICES):
            await dialogue.end(session, me, dialogue.CONTEST)
    if view is None:
        await turn.stale()
    elif action == "x" and not revised:
        await turn.ask("contest_reason", placeholder=code, code=code)
    else:
        answered = action in CHOICES and not revised
        markup = (change_markup if answered else choice_markup)(view, turn)
        await turn.edit("finding", markup=markup, finding=view.as_dict(), revised=revised)


@replies_to(dialogue.CONTEST)
async def receive_reason(turn: Turn, state: dialogue.Dialogue) -> None:
    """The reply to "why do you contest?": the contest is recorded with it."""
    code = str(state.data.get("code"))
    async with turn.session() as session:
        me = await turn.me(session)
        view = await findings.answer(
            session=session,
            participant=me,
            code=code,
            version=None,
            choice=StanceChoice.CONTEST,
            reason=turn.text,
            channel=Channel.TELEGRAM,
        )
        await dialogue.end(session, me, dialogue.CONTEST)
    if view is None:
        await turn.stale()
        return
    if state.data.get("message_id"):
        await turn.edit_message(
            state.data["message_id"],
            "finding",
            markup=change_markup(view, turn),
            finding=view.as_dict(),
            revised=False,
        )
    await turn.send("stance_recorded", finding=view.as_dict())


def handlers() -> list:
    return [
        CommandHandler("findings", findings_command, filters=ONLY_NEW),
        CallbackQueryHandler(findings_command, pattern=f"^{GO_FINDINGS}$"),
        CallbackQueryHandler(stance_button, pattern=r"^st:"),
    ]
