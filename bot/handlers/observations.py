"""Text contributions: observations (plain text in the observe phase) and proposed actions.

Plain text is never recorded on the spot: the bot quotes it back and asks "Record this?", so a
message sent by mistake costs nothing. A text over the length limit is refused at once with the
limit shown. When a dialogue waits for a typed answer (a contest reason, a questionnaire's free
text, a coordinator's reason), the next text is that answer instead: `on_text` routes it.

Callback data: `ob:<y|n>:<nonce>` (observation), `pp:<y|n>:<nonce>` (proposal).
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot import dialogue
from bot.context import PalabreContext
from bot.handlers.common import ONLY_NEW, Turn, participant, receive_reply, replies_to
from bot.keyboards import GO_OBSERVE, GO_PROPOSE, button, keyboard
from bot.text import N_
from bot.views import phase_view
from consultation import actions, observations, phases
from consultation.common import rules
from models import Channel, Consultation, PhaseKind

RECORD = N_("Record it")
DISCARD = N_("Don't record")


def max_length(consultation: Consultation | None) -> int:
    return rules(consultation).observation_max_length


def confirm_markup(prefix: str, nonce: str, turn: Turn):
    return keyboard(
        [
            [
                button(f"✅ {turn.label(RECORD)}", f"{prefix}:y:{nonce}"),
                button(turn.label(DISCARD), f"{prefix}:n:{nonce}"),
            ]
        ]
    )


@participant
async def observe_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/observe: how to send an observation, and whether the observe phase is open."""
    async with turn.session() as session:
        phase = await phases.current_phase(
            session=session, consultation_id=turn.participant.consultation_id
        )
    await turn.send(
        "observe_help",
        phase=phase_view(phase, turn.consultation),
        open=phase is not None and phase.kind == PhaseKind.OBSERVE,
        limit=max_length(turn.consultation),
        scope_in=list(turn.consultation.scope_in or []),
        scope_out=list(turn.consultation.scope_out or []),
    )


@participant
async def on_text(update: Update, context: PalabreContext, turn: Turn) -> None:
    """Plain text: the answer a dialogue awaits, else an observation or a proposal to confirm."""
    async with turn.session() as session:
        me = await turn.me(session)
        state = await dialogue.current(session, me)
        if state is not None and state.awaits_text and state.expired:
            await dialogue.end(session, me)
        phase = await phases.current_phase(session=session, consultation_id=me.consultation_id)
    if state is not None and state.awaits_text:
        if state.expired:
            await turn.say_error("telegram.dialogue_expired")
            return
        await receive_reply(turn, state)
        return
    kind = phase.kind if phase is not None else None
    if kind == PhaseKind.OBSERVE:
        await offer(turn, dialogue.OBSERVATION, "ob", turn.text)
    elif kind == PhaseKind.PROPOSE:
        await offer(turn, dialogue.PROPOSAL, "pp", turn.text)
    else:
        await turn.say_error("telegram.nothing_to_send")


async def offer(turn: Turn, kind: str, prefix: str, text: str) -> None:
    """Quote the text back with "Record this?", or say at once that it is too long."""
    limit = max_length(turn.consultation)
    text = text.strip()
    if len(text) > limit:
        await turn.send("too_long", limit=limit, length=len(text))
        return
    async with turn.session() as session:
        state = await dialogue.begin(session, await turn.me(session), kind, text=text)
    await turn.send(
        "record_this",
        markup=confirm_markup(prefix, state.nonce, turn),
        kind=kind,
        text=text,
        limit=limit,
    )


@replies_to(dialogue.PROPOSAL)
async def receive_proposal(turn: Turn, state: dialogue.Dialogue) -> None:
    """The text typed after a bare /propose."""
    await offer(turn, dialogue.PROPOSAL, "pp", turn.text)


@participant
async def record_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """Record it / Don't record under a quoted observation or proposal."""
    try:
        prefix, answer, nonce = turn.data
    except ValueError:
        await turn.stale()
        return
    kind = dialogue.OBSERVATION if prefix == "ob" else dialogue.PROPOSAL
    async with turn.session() as session:
        me = await turn.me(session)
        state = await dialogue.expect(session, me, kind, nonce)
        if state is None or not state.data.get("text"):
            recorded = None
        elif answer != "y":
            await dialogue.end(session, me, kind)
            recorded = False
        elif kind == dialogue.OBSERVATION:
            await observations.submit_observation(
                session=session, participant=me, text=state.data["text"], channel=Channel.TELEGRAM
            )
            await dialogue.end(session, me, kind)
            recorded = True
        else:
            action = await actions.propose_action(
                session=session, participant=me, text=state.data["text"], channel=Channel.TELEGRAM
            )
            await dialogue.end(session, me, kind)
            recorded = action.code
    if recorded is None:
        await turn.stale()
        return
    await turn.edit(
        "recorded",
        kind=kind,
        text=state.data["text"],
        recorded=bool(recorded),
        code=recorded if isinstance(recorded, str) else None,
    )


@participant
async def propose_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/propose [text]: propose an action (the propose phase must be open)."""
    text = turn.text.partition(" ")[2].strip()
    async with turn.session() as session:
        await phases.require_open(
            session=session,
            consultation_id=turn.participant.consultation_id,
            kind=PhaseKind.PROPOSE,
        )
        if not text:
            await dialogue.begin(session, await turn.me(session), dialogue.PROPOSAL)
    if text:
        await offer(turn, dialogue.PROPOSAL, "pp", text)
    else:
        await turn.ask("propose_prompt", limit=max_length(turn.consultation))


@participant
async def propose_help(update: Update, context: PalabreContext, turn: Turn) -> None:
    """The "How to propose" button under the announcement of the propose phase."""
    await turn.send("propose_help", limit=max_length(turn.consultation))


def handlers() -> list:
    return [
        CommandHandler("observe", observe_command, filters=ONLY_NEW),
        CallbackQueryHandler(observe_command, pattern=f"^{GO_OBSERVE}$"),
        CommandHandler("propose", propose_command, filters=ONLY_NEW),
        CallbackQueryHandler(propose_help, pattern=f"^{GO_PROPOSE}$"),
        CallbackQueryHandler(record_button, pattern=r"^(ob|pp):"),
        MessageHandler(ONLY_NEW & filters.TEXT & ~filters.COMMAND, on_text),
    ]
