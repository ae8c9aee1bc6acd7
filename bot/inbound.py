"""Inbound safety: every update is recorded before it is handled, floods are cut, faults apologised.

`guard` runs first for every update (a TypeHandler in group -1):

- it records the update by `update_id` in `InboundRecord`; an update already recorded (Telegram
  redelivers after a crash or a timeout) stops there, so it never acts twice;
- it identifies the sender (the participant bound to the chat) for the handlers;
- it counts each person's messages: past 20 in a minute, they are asked once to slow down and
  the excess is not processed.

`finish` (the last group) marks the record processed; `on_error` logs a fault with the update id,
tokens redacted, marks the record failed, and sends the person a short apology, never a trace.
"""

from __future__ import annotations

import logging
import traceback
from collections import deque
from datetime import datetime, timedelta

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.context import PalabreContext
from bot.redact import redact
from consultation import clock, inbound, participants
from consultation.common import get_consultation
from models import Channel
from templates.i18n import normalize_locale
from templates.render import render_error

logger = logging.getLogger(__name__)

FLOOD_LIMIT = 20
FLOOD_WINDOW = timedelta(minutes=1)


class FloodGate:
    """Counts each person's messages over the last minute (per process, on the Palabre clock)."""

    def __init__(self, limit: int = FLOOD_LIMIT, window: timedelta = FLOOD_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[int, deque[datetime]] = {}
        self._warned: set[int] = set()

    def admit(self, user_id: int) -> tuple[bool, bool]:
        """(processed?, warn now?) for one more message from `user_id`."""
        current = clock.now()
        if len(self._seen) > 10_000:
            self.forget_idle()
        seen = self._seen.setdefault(user_id, deque())
        while seen and seen[0] <= current - self.window:
            seen.popleft()
        seen.append(current)
        if len(seen) <= self.limit:
            self._warned.discard(user_id)
            return True, False
        if user_id in self._warned:
            return False, False
        self._warned.add(user_id)
        return False, True

    def forget_idle(self) -> None:
        current = clock.now()
        for user_id in [
            u for u, seen in self._seen.items() if not seen or seen[-1] <= current - self.window
        ]:
            self._seen.pop(user_id, None)
            self._warned.discard(user_id)


def _kind(update: Update) -> str:
    if update.callback_query is not None:
        return "callback"
    if update.message is not None:
        return "command" if (update.message.text or "").startswith("/") else "message"
    if update.edited_message is not None:
        return "edited"
    return "other"


async def _record(context: PalabreContext, update: Update) -> bool:
    """Insert the InboundRecord; False when this update_id was seen before."""
    chat = update.effective_chat
    async with context.database.session() as session:
        participant = await participants.by_chat(session=session, chat_id=chat.id) if chat else None
        recorded = await inbound.record(
            session=session,
            channel=Channel.TELEGRAM,
            external_id=str(update.update_id),
            participant_id=participant.id if participant else None,
            detail={"kind": _kind(update)},
        )
        consultation = (
            await get_consultation(session=session, consultation_id=participant.consultation_id)
            if participant
            else None
        )
    context.participant = participant
    context.consultation = consultation
    return recorded is not None


async def mark(context: PalabreContext, update_id: int, status: str, **detail: str) -> None:
    """Set the record's outcome ("processed", "failed", "flood")."""
    async with context.database.session() as session:
        await inbound.mark(
            session=session,
            channel=Channel.TELEGRAM,
            external_id=str(update_id),
            status=status,
            **detail,
        )


async def guard(update: Update, context: PalabreContext) -> None:
    """Record the update (a redelivery stops here), identify the sender, hold back floods."""
    chat = update.effective_chat
    if chat is None or chat.type != ChatType.PRIVATE:
        # Palabre talks to people one to one; a group it was added to gets no answer.
        raise ApplicationHandlerStop
    user = update.effective_user
    context.user_language = user.language_code if user else None
    if not await _record(context, update):
        logger.info("update %s was already handled: ignored", update.update_id)
        raise ApplicationHandlerStop
    if update.message is None or user is None:
        return
    gate: FloodGate = context.application.bot_data["flood"]
    processed, warn = gate.admit(user.id)
    if processed:
        return
    logger.info("update %s held back: more than %s messages a minute", update.update_id, gate.limit)
    await mark(context, update.update_id, "flood")
    if warn:
        text = render_error("telegram.slow_down", {"limit": gate.limit}, context.locale, html=True)
        await context.bot.send_message(chat.id, text)
    raise ApplicationHandlerStop


async def finish(update: Update, context: PalabreContext) -> None:
    """Mark the update processed (the last group: it ran through its handler)."""
    await mark(context, update.update_id, "processed")


async def on_error(update: object, context: PalabreContext) -> None:
    """Log a fault with its update id, tokens redacted; apologise to the person, briefly."""
    error = context.error
    token = context.bot.token
    update_id = update.update_id if isinstance(update, Update) else None
    if update_id is None:
        # A fault outside any update (polling lost its connection...): PTB retries by itself.
        logger.warning("Telegram: %s", redact(f"{type(error).__name__}: {error}", token))
        return
    trace = "".join(traceback.format_exception(error)) if error else ""
    logger.error("update %s failed: %s", update_id, redact(trace, token))
    try:
        await mark(context, update_id, "failed", error=type(error).__name__)
    except Exception:  # the database may be what failed
        logger.warning("update %s: could not mark the failure", update_id)
    chat = update.effective_chat if isinstance(update, Update) else None
    if chat is None or chat.type != ChatType.PRIVATE:
        return
    locale = context.locale
    if context.participant is None and isinstance(update, Update):
        locale = await _locale_of(context, chat.id, update)
    text = render_error("telegram.internal_error", {}, locale, html=True)
    try:
        await context.bot.send_message(chat.id, text)
    except TelegramError as exc:
        logger.warning(
            "update %s: the apology could not be sent: %s", update_id, redact(str(exc), token)
        )


async def _locale_of(context: PalabreContext, chat_id: int, update: Update) -> str:
    user = update.effective_user
    fallback = normalize_locale(user.language_code if user else None)
    try:
        async with context.database.session() as session:
            person = await participants.by_chat(session=session, chat_id=chat_id)
    except Exception:
        return fallback
    return normalize_locale(person.locale) if person else fallback
