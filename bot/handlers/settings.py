"""/settings: my language, my email digest (off, daily, weekly), and my preferred channel.

One message shows the current choices with a button for each alternative; a tap changes one
setting and the message is redrawn (in the new language, if that was the change).

Callback data: `se:lg:<fr|en>`, `se:cd:<off|daily|weekly>`, `se:ch:<telegram|email>`.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.context import PalabreContext
from bot.handlers.common import ONLY_NEW, Turn, participant
from bot.keyboards import button, keyboard
from bot.text import N_
from consultation import preferences
from models import Cadence, Channel, Participant

LANGUAGE_NAMES = {"fr": "Français", "en": "English"}
CADENCE_LABELS = {
    Cadence.OFF: N_("No digest"),
    Cadence.DAILY: N_("Daily digest"),
    Cadence.WEEKLY: N_("Weekly digest"),
}
CHANNEL_LABELS = {
    Channel.TELEGRAM: N_("Reach me on Telegram"),
    Channel.EMAIL: N_("Reach me by email"),
}


def settings_markup(person: Participant, turn: Turn) -> InlineKeyboardMarkup | None:
    rows = [
        [
            button(name, f"se:lg:{code}")
            for code, name in LANGUAGE_NAMES.items()
            if code != person.locale
        ],
        [
            button(turn.label(text), f"se:cd:{cadence.value}")
            for cadence, text in CADENCE_LABELS.items()
            if cadence != person.digest_cadence
        ],
    ]
    if person.email:
        rows.append(
            [
                button(turn.label(text), f"se:ch:{channel.value}")
                for channel, text in CHANNEL_LABELS.items()
                if channel != person.preferred_channel
            ]
        )
    return keyboard(rows)


def settings_view(person: Participant) -> dict[str, Any]:
    return {
        "language": LANGUAGE_NAMES.get(person.locale, person.locale),
        "cadence": person.digest_cadence,
        "channel": person.preferred_channel,
        "email": person.email or "",
    }


@participant
async def settings_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/settings: my current choices, with buttons to change them."""
    person = turn.participant
    await turn.send(
        "settings", markup=settings_markup(person, turn), saved=False, **settings_view(person)
    )


@participant
async def settings_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """Change one setting."""
    try:
        _, what, value = turn.data
    except ValueError:
        await turn.stale()
        return
    change = {
        "lg": lambda s, p: preferences.set_locale(session=s, participant=p, locale=value),
        "cd": lambda s, p: preferences.set_cadence(session=s, participant=p, cadence=value),
        "ch": lambda s, p: preferences.set_channel(session=s, participant=p, channel=value),
    }.get(what)
    if change is None:
        await turn.stale()
        return
    async with turn.session() as session:
        person = await change(session, await turn.me(session))
    context.participant = person
    await turn.edit(
        "settings", markup=settings_markup(person, turn), saved=True, **settings_view(person)
    )


def handlers() -> list:
    return [
        CommandHandler("settings", settings_command, filters=ONLY_NEW),
        CallbackQueryHandler(settings_button, pattern=r"^se:"),
    ]
