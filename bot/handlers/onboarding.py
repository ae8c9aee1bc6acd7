"""Onboarding: `/start <token>` binds the chat, then consent, then language, then a welcome.

`/start` without a token from an unknown chat explains how to get an invitation and nothing
else. From a known chat it picks the person up where they are (consent not given yet, or the
welcome again), and counts as coming back after /stop or after blocking the bot.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.context import PalabreContext
from bot.handlers.common import (
    ONLY_NEW,
    Turn,
    anyone,
    bound,
    participant,
    send_consent,
    send_invitation_help,
)
from bot.keyboards import GO_STATUS, button, keyboard
from bot.text import N_, render_html
from bot.views import consultation_view, phase_view
from consultation import participants, phases, preferences, status
from consultation.common import get_consultation, rules
from models import Channel

LANGUAGES = (("fr", "Français"), ("en", "English"))
MOVE_HERE = N_("Use this chat")
KEEP_THERE = N_("Keep the other chat")

logger = logging.getLogger(__name__)


def language_markup():
    return keyboard([[button(name, f"lg:{code}") for code, name in LANGUAGES]])


@anyone
async def start(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/start [token]: bind the chat to an invitation, or greet a known person again."""
    token = turn.args[0] if turn.args else None
    if token is None and turn.participant is None:
        await send_invitation_help(turn)
        return
    if token is not None:
        async with turn.session() as session:
            elsewhere = await participants.bound_elsewhere(
                session=session, token=token, chat_id=turn.chat_id
            )
        if elsewhere is not None:
            await ask_to_move(turn, token, elsewhere)
            return
    await bind(turn, token, move=False)


async def ask_to_move(turn: Turn, token: str, old_chat_id: int) -> None:
    """The account is used from another chat: confirm here, and tell the other chat."""
    await turn.send(
        "invitation_move",
        markup=keyboard(
            [
                [
                    button(turn.label(MOVE_HERE), f"iv:y:{token}"),
                    button(turn.label(KEEP_THERE), "iv:n"),
                ]
            ]
        ),
    )
    await tell_old_chat(turn, token, old_chat_id, moved=False)


async def tell_old_chat(turn: Turn, token: str, old_chat_id: int, *, moved: bool) -> None:
    """The chat the account is used from hears that another chat opened its invitation."""
    async with turn.session() as session:
        owner = await participants.by_chat(session=session, chat_id=old_chat_id)
    locale = owner.locale if owner is not None else turn.locale
    try:
        await turn.context.bot.send_message(
            old_chat_id, render_html("invitation_elsewhere", locale, moved=moved)
        )
    except TelegramError as exc:
        logger.info("the other chat of an invitation could not be told: %s", exc.message)


async def bind(turn: Turn, token: str | None, *, move: bool) -> None:
    """Bind the chat (or pick the person up again), then consent, or the welcome."""
    async with turn.session() as session:
        old_chat_id = (
            await participants.bound_elsewhere(session=session, token=token, chat_id=turn.chat_id)
            if move and token is not None
            else None
        )
        person = await participants.start_on_telegram(
            session=session,
            chat_id=turn.chat_id,
            token=token,
            participant_id=turn.context.participant_id,
            move=move,
        )
        consultation = await get_consultation(
            session=session, consultation_id=person.consultation_id
        )
    turn.context.participant, turn.context.consultation = person, consultation
    if old_chat_id is not None:
        await tell_old_chat(turn, token or "", old_chat_id, moved=True)
    # Consent is given in the chat it is read in: a chat taking an account over asks again.
    if move or not preferences.has_consented(person):
        await send_consent(turn)
        return
    await send_welcome(turn)


@anyone
async def move_answer(update: Update, context: PalabreContext, turn: Turn) -> None:
    """Use this chat from now on / Keep the other chat, under an invitation already in use."""
    if turn.data[1:2] != ["y"] or len(turn.data) < 3:
        await turn.drop_buttons()
        await turn.send("invitation_move_cancelled")
        return
    await turn.drop_buttons()
    await bind(turn, turn.data[2], move=True)


async def send_welcome(turn: Turn) -> None:
    """The question, its scope, the current phase and its deadline, and what to do now."""
    assert turn.consultation is not None and turn.participant is not None
    async with turn.session() as session:
        phase = await phases.current_phase(session=session, consultation_id=turn.consultation.id)
    await turn.send(
        "welcome",
        consultation=consultation_view(turn.consultation),
        phase=phase_view(phase, turn.consultation),
        name=turn.participant.name or "",
        coordinator=turn.participant.is_coordinator,
    )


@bound
async def consent_answer(update: Update, context: PalabreContext, turn: Turn) -> None:
    """Accept / Decline on the consent screen."""
    accepted = turn.data[1:2] == ["y"]
    async with turn.session() as session:
        me = await turn.me(session)
        if accepted:
            await preferences.give_consent(
                session=session, participant=me, channel=Channel.TELEGRAM
            )
        else:
            await preferences.decline_consent(
                session=session, participant=me, channel=Channel.TELEGRAM
            )
    if accepted:
        await turn.edit("consent_given", markup=language_markup())
    else:
        await turn.edit("consent_declined")


@bound
async def language_answer(update: Update, context: PalabreContext, turn: Turn) -> None:
    """Français / English, during onboarding."""
    locale = turn.data[1] if len(turn.data) > 1 else ""
    async with turn.session() as session:
        me = await preferences.set_locale(
            session=session, participant=await turn.me(session), locale=locale
        )
    context.participant = me
    await turn.drop_buttons()
    if not preferences.has_consented(me):
        await send_consent(turn)
        return
    await send_welcome(turn)


@participant
async def status_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/status: the current phase, the time left, and what awaits my answer."""
    async with turn.session() as session:
        waiting = await status.awaiting(session=session, participant=await turn.me(session))
        phase = await phases.current_phase(session=session, consultation_id=turn.consultation.id)
    await turn.send(
        "status",
        waiting=waiting.summary(),
        phase=phase_view(phase, turn.consultation),
        coordinator=turn.participant.is_coordinator,
        limit=rules(turn.consultation).observation_max_length,
    )


def handlers() -> list:
    return [
        CommandHandler("start", start, filters=ONLY_NEW),
        CommandHandler("status", status_command, filters=ONLY_NEW),
        CallbackQueryHandler(status_command, pattern=f"^{GO_STATUS}$"),
        CallbackQueryHandler(consent_answer, pattern=r"^cs:[yn]$"),
        CallbackQueryHandler(move_answer, pattern=r"^iv:"),
        CallbackQueryHandler(language_answer, pattern=r"^lg:\w+$"),
    ]
