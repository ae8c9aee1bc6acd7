"""What every handler shares: who is writing, how to answer, and the gatekeeping decorators.

A handler stays thin (STYLE.md): the decorators answer the callback query first, make sure the
person is a consenting participant (or a coordinator), and turn a `UserError` into its sentence;
the handler parses, calls one `consultation` function in a transaction, and renders a template.
Messages are sent after the transaction has committed, never while it holds the database.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import ForceReply, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest
from telegram.ext import CommandHandler, MessageHandler, filters

from bot import dialogue
from bot.context import PalabreContext
from bot.keyboards import button, keyboard
from bot.text import N_, label, render_html
from consultation import audit
from consultation.errors import NotFound, PhaseClosed, UserError
from consultation.files import control_character
from consultation.preferences import has_consented
from models import Consultation, Participant
from templates.render import render_error

logger = logging.getLogger(__name__)

ACCEPT = N_("I agree")
DECLINE = N_("I decline")

# Commands and text count when sent, not when edited afterwards.
ONLY_NEW = filters.UpdateType.MESSAGE

HandlerFn = Callable[[Update, PalabreContext, "Turn"], Awaitable[None]]
ReplyFn = Callable[["Turn", dialogue.Dialogue], Awaitable[None]]

# Who receives the text a dialogue awaits, by dialogue kind; each feature adds its own.
_REPLIES: dict[str, ReplyFn] = {}


class Turn:
    """One update being answered: the person, their language, and ways to reply."""

    def __init__(self, update: Update, context: PalabreContext) -> None:
        self.update = update
        self.context = context
        self.query = update.callback_query
        chat = update.effective_chat
        assert chat is not None  # the inbound guard lets only private chats through
        self.chat_id = chat.id

    @property
    def participant(self) -> Participant | None:
        return self.context.participant

    @property
    def consultation(self) -> Consultation | None:
        return self.context.consultation

    @property
    def locale(self) -> str:
        return self.context.locale

    @property
    def args(self) -> list[str]:
        return list(self.context.args or [])

    @property
    def data(self) -> list[str]:
        """The callback data split on ":" (empty for a message)."""
        return (self.query.data or "").split(":") if self.query else []

    @property
    def text(self) -> str:
        message = self.update.effective_message
        return (message.text or "") if message is not None else ""

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        return self.context.database.session()

    async def me(self, session: AsyncSession) -> Participant:
        """The sender, loaded in `session` (to change them or pass them to the core).

        `participant` stays the snapshot taken when the update came in: a refusal rolls the
        session back, which would leave this copy unreadable while the refusal is explained.
        """
        assert self.context.participant_id is not None
        person = await session.get(Participant, self.context.participant_id)
        if person is None or person.erased_at is not None:
            raise NotFound("preferences.forgotten")
        return person

    def label(self, message: str) -> str:
        return label(message, self.locale)

    def render(self, template: str, /, **context: Any) -> str:
        return render_html(template, self.locale, **context)

    async def send(
        self,
        template: str,
        /,
        *,
        markup: InlineKeyboardMarkup | ForceReply | None = None,
        **context: Any,
    ) -> Message:
        """Send `templates/telegram/<name>.html` to this chat."""
        return await self.context.bot.send_message(
            self.chat_id, self.render(template, **context), reply_markup=markup
        )

    async def ask(
        self, template: str, /, placeholder: str | None = None, **context: Any
    ) -> Message:
        """Send a question whose answer the person types as a reply (ForceReply)."""
        return await self.send(
            template, markup=ForceReply(input_field_placeholder=placeholder), **context
        )

    async def edit(
        self, template: str, /, *, markup: InlineKeyboardMarkup | None = None, **context: Any
    ) -> None:
        """Replace the message whose button was pressed (or send anew if it cannot be edited)."""
        await self.edit_message(
            self.query.message.message_id if self.query and self.query.message else None,
            template,
            markup=markup,
            **context,
        )

    async def edit_message(
        self,
        message_id: int | None,
        template: str,
        /,
        *,
        markup: InlineKeyboardMarkup | None = None,
        **context: Any,
    ) -> None:
        text = self.render(template, **context)
        if message_id is None:
            await self.context.bot.send_message(self.chat_id, text, reply_markup=markup)
            return
        try:
            await self.context.bot.edit_message_text(
                text, chat_id=self.chat_id, message_id=message_id, reply_markup=markup
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return
            # Too old or deleted: the answer still reaches the person, as a new message.
            logger.info("could not edit message %s: %s", message_id, exc.message)
            await self.context.bot.send_message(self.chat_id, text, reply_markup=markup)

    async def drop_buttons(self) -> None:
        """Remove the keyboard of the pressed message (a button that no longer applies)."""
        if self.query is None or self.query.message is None:
            return
        try:
            await self.query.edit_message_reply_markup(reply_markup=None)
        except BadRequest as exc:
            logger.debug("could not remove a keyboard: %s", exc.message)

    async def error(self, error: UserError) -> None:
        """Explain a refusal, kindly, in the person's language."""
        await self.say_error(error.code, **error.params)

    async def say_error(self, code: str, **params: Any) -> None:
        try:
            text = render_error(code, params, self.locale, html=True)
        except Exception:
            logger.warning("no sentence for error %s: using the generic one", code)
            text = render_error("telegram.refused", {}, self.locale, html=True)
        await self.context.bot.send_message(self.chat_id, text)

    async def stale(self) -> None:
        """A button that no longer applies: say so and take its keyboard away."""
        await self.drop_buttons()
        await self.say_error("telegram.stale_button")


async def send_invitation_help(turn: Turn) -> None:
    """An unknown chat: how to get an invitation, and nothing else."""
    await turn.send("unknown_chat")


def consent_markup(locale: str) -> InlineKeyboardMarkup | None:
    return keyboard(
        [[button(label(ACCEPT, locale), "cs:y"), button(label(DECLINE, locale), "cs:n")]]
    )


async def send_consent(turn: Turn) -> None:
    """The consent screen: what is stored, why, for how long, the rights; Accept / Decline."""
    assert turn.consultation is not None
    await turn.send(
        "consent",
        markup=consent_markup(turn.locale),
        title=turn.consultation.title,
        declined=turn.participant is not None and turn.participant.consent_declined_at is not None,
    )


async def answer_query(update: Update) -> None:
    """Stop the button's spinner first; a query too old to answer is no reason to fail."""
    if update.callback_query is None:
        return
    try:
        await update.callback_query.answer()
    except BadRequest as exc:
        logger.info("callback query of update %s not answered: %s", update.update_id, exc.message)


def _guarded(
    fn: HandlerFn, *, needs_consent: bool, coordinator: bool
) -> Callable[[Update, PalabreContext], Awaitable[None]]:
    @functools.wraps(fn)
    async def wrapper(update: Update, context: PalabreContext) -> None:
        await answer_query(update)
        turn = Turn(update, context)
        if await refuse_controls(turn):
            return
        if turn.participant is None:
            await send_invitation_help(turn)
            return
        if needs_consent and not has_consented(turn.participant):
            await send_consent(turn)
            return
        if coordinator and not turn.participant.is_coordinator:
            await refuse(turn, fn.__name__)
            return
        try:
            await fn(update, context, turn)
        except UserError as exc:
            await refused(turn, exc)

    return wrapper


async def refuse_controls(turn: Turn) -> bool:
    """Refuse a text holding a control character (NUL...) before anything reads or stores it."""
    if control_character(turn.text) is None:
        return False
    logger.info("update %s refused: a control character in the text", turn.update.update_id)
    await turn.say_error("telegram.control_characters")
    return True


async def refused(turn: Turn, exc: UserError) -> None:
    """Explain a refusal; a button that points at something closed or gone loses its keyboard."""
    logger.info("update %s refused: %s", turn.update.update_id, exc.code)
    if turn.query is not None and isinstance(exc, PhaseClosed | NotFound):
        await turn.drop_buttons()
    await turn.error(exc)


def participant(fn: HandlerFn) -> Callable[[Update, PalabreContext], Awaitable[None]]:
    """For a participant who has consented: anyone else is told what to do first."""
    return _guarded(fn, needs_consent=True, coordinator=False)


def bound(fn: HandlerFn) -> Callable[[Update, PalabreContext], Awaitable[None]]:
    """For anyone whose chat is bound to a participant, consenting or not (consent, /mydata)."""
    return _guarded(fn, needs_consent=False, coordinator=False)


def coordinator(fn: HandlerFn) -> Callable[[Update, PalabreContext], Awaitable[None]]:
    """For the coordinators of the person's consultation; anyone else is refused and logged."""
    return _guarded(fn, needs_consent=True, coordinator=True)


def anyone(fn: HandlerFn) -> Callable[[Update, PalabreContext], Awaitable[None]]:
    """For any chat, known or not (/start, /help)."""

    @functools.wraps(fn)
    async def wrapper(update: Update, context: PalabreContext) -> None:
        await answer_query(update)
        turn = Turn(update, context)
        if await refuse_controls(turn):
            return
        try:
            await fn(update, context, turn)
        except UserError as exc:
            await refused(turn, exc)

    return wrapper


async def refuse(turn: Turn, what: str) -> None:
    """A participant tried a coordinator command: say no politely, and keep a trace of it."""
    assert turn.participant is not None
    command = turn.text.split(maxsplit=1)[0] if turn.text.startswith("/") else what
    logger.info(
        "participant %s tried the coordinator command %s: refused", turn.participant.id, command
    )
    async with turn.session() as session:
        await audit.record(
            session=session,
            consultation_id=turn.participant.consultation_id,
            action="permission.refused",
            actor=await turn.me(session),
            subject=command[:120],
            detail={"channel": "telegram"},
        )
    await turn.say_error("permission.coordinator_only")


def replies_to(kind: str) -> Callable[[ReplyFn], ReplyFn]:
    """Register `fn` as the receiver of the text a dialogue of `kind` awaits (a reason...)."""

    def register(fn: ReplyFn) -> ReplyFn:
        _REPLIES[kind] = fn
        return fn

    return register


# Refusals of the typed text itself: the person types it again, so the dialogue stays.
RETYPE = (".empty", ".too_long", ".control_characters")


async def receive_reply(turn: Turn, state: dialogue.Dialogue) -> None:
    """Give the person's text to the feature whose dialogue awaits it.

    Any other refusal (the phase cannot close yet, the finding is gone...) ends the dialogue in
    a transaction of its own: the feature's transaction was rolled back with its `dialogue.end`,
    and a dialogue left waiting would refuse every text the person sends next.
    """
    try:
        await _REPLIES[state.kind](turn, state)
    except UserError as exc:
        if not exc.code.endswith(RETYPE):
            async with turn.session() as session:
                await dialogue.end(session, await turn.me(session), state.kind)
        raise


# --- handlers every person may meet -----------------------------------------------------------


@anyone
async def help_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/help: what the bot can do for me."""
    if turn.participant is None:
        await send_invitation_help(turn)
        return
    await turn.send("help", coordinator=turn.participant.is_coordinator)


@participant
async def cancel_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/cancel: drop whatever dialogue is under way."""
    async with turn.session() as session:
        await dialogue.end(session, await turn.me(session))
    await turn.send("cancelled")


@anyone
async def unknown_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """A command the bot does not know."""
    if turn.participant is None:
        await send_invitation_help(turn)
        return
    await turn.say_error("telegram.unknown_command", command=turn.text.split(maxsplit=1)[0])


@anyone
async def stale_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """A button no handler recognises (an old keyboard from another version of the bot)."""
    await turn.stale()


@anyone
async def not_text(update: Update, context: PalabreContext, turn: Turn) -> None:
    """A photo, a sticker, a voice message: Palabre reads text only."""
    if turn.participant is None:
        await send_invitation_help(turn)
        return
    await turn.say_error("telegram.text_only")


def handlers() -> list:
    """Registered last: the fallbacks for what no feature claimed."""
    return [
        CommandHandler("help", help_command, filters=ONLY_NEW),
        CommandHandler("cancel", cancel_command, filters=ONLY_NEW),
        MessageHandler(ONLY_NEW & filters.COMMAND, unknown_command),
        MessageHandler(ONLY_NEW & ~filters.TEXT & ~filters.StatusUpdate.ALL, not_text),
    ]
