"""Builds the python-telegram-bot Application: the Bot API root, defaults, and every handler.

The Bot API root comes from `BotConfig.api_url` (`<root>/bot` and `<root>/file/bot`), so the
bot runs against Telegram, a local Bot API server, or the test server alike. Every message is
HTML (user-written text is escaped by the templates). Handlers are grouped so that the
inbound guard runs first (group -1), the features next (group 0), and the bookkeeping last.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlmodel import select
from telegram import Bot, BotCommand, BotCommandScopeChat, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    Defaults,
    TypeHandler,
)

from bot import inbound
from bot.config import BotConfig
from bot.context import PalabreContext
from bot.handlers import (
    common,
    coordinator,
    findings,
    observations,
    onboarding,
    plan,
    privacy,
    questionnaires,
    ranking,
)
from bot.handlers import (
    settings as settings_handlers,
)
from bot.text import N_, label
from bot.updates import PerChatUpdateProcessor
from models import Participant, Role
from models.db import Database
from templates.i18n import DEFAULT_LOCALE, LOCALES

logger = logging.getLogger(__name__)

GUARD_GROUP = -1
FEATURE_GROUP = 0
FINISH_GROUP = 1
# Updates of different people handled at once (those of one person always in order).
CONCURRENT_UPDATES = 32

# The menu Telegram shows next to the text field, in each language.
MENU = [
    ("status", N_("What awaits me")),
    ("findings", N_("Confirm or contest the findings")),
    ("rank", N_("Rank the actions")),
    ("questionnaire", N_("Answer a questionnaire")),
    ("observe", N_("How to send an observation")),
    ("propose", N_("Propose an action")),
    ("mine", N_("What became of my contributions")),
    ("plan", N_("The action plan and its progress")),
    ("settings", N_("Language, digest, channel")),
    ("mydata", N_("My data")),
    ("help", N_("Help")),
]
# In a coordinator's chat, the same menu and the coordinator's commands.
COORDINATOR_MENU = [
    *MENU,
    ("phase", N_("Open, close or extend a phase")),
    ("moderate", N_("Moderate the observations")),
    ("publish", N_("Publish the findings")),
    ("broadcast", N_("Write to every participant")),
    ("stats", N_("Participation by category")),
]
# What Telegram shows of the bot before the first message (description) and on its profile.
DESCRIPTION = N_(
    "Palabre collects your observations, the findings you confirm or contest, the actions you "
    "propose and rank, for a shared diagnosis between meetings. Open the personal link of your "
    "invitation to join."
)
SHORT_DESCRIPTION = N_("A shared diagnosis between meetings: observe, confirm, propose, rank.")


def api_urls(config: BotConfig) -> tuple[str, str]:
    root = config.api_url.rstrip("/")
    return f"{root}/bot", f"{root}/file/bot"


async def bot_username(config: BotConfig) -> str:
    """The bot's @username: the configured one, else Telegram's answer to getMe."""
    if config.username:
        return config.username
    if not config.enabled:
        raise ValueError("PALABRE_TELEGRAM_TOKEN is not set")
    assert config.token is not None
    base_url, base_file_url = api_urls(config)
    bot = Bot(config.token.get_secret_value(), base_url=base_url, base_file_url=base_file_url)
    async with bot:  # initialising the bot asks getMe once
        return bot.username


def build_application(
    config: BotConfig,
    database: Database,
    *,
    application_class: type[Application] | None = None,
    **builder_options: Any,
) -> Application:
    """The Application for `config.token`, its handlers registered."""
    if not config.enabled:
        raise ValueError("PALABRE_TELEGRAM_TOKEN is not set")
    assert config.token is not None
    base_url, base_file_url = api_urls(config)
    builder = (
        ApplicationBuilder()
        .token(config.token.get_secret_value())
        .base_url(base_url)
        .base_file_url(base_file_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .context_types(ContextTypes(context=PalabreContext))
        .concurrent_updates(PerChatUpdateProcessor(CONCURRENT_UPDATES))
        .post_init(_post_init)
    )
    if application_class is not None:
        builder = builder.application_class(application_class)
    for name, value in builder_options.items():
        builder = getattr(builder, name)(value)
    application = builder.build()
    application.bot_data["database"] = database
    application.bot_data["config"] = config
    application.bot_data["flood"] = inbound.FloodGate()
    register(application)
    return application


def register(application: Application) -> None:
    """Every handler, in the order they are tried."""
    application.add_handler(TypeHandler(Update, inbound.guard), group=GUARD_GROUP)
    features = [
        *onboarding.handlers(),
        *findings.handlers(),
        *ranking.handlers(),
        *questionnaires.handlers(),
        *coordinator.handlers(),
        *plan.handlers(),
        *settings_handlers.handlers(),
        *privacy.handlers(),
        # Plain text comes last: it is an observation, a proposal, or the answer awaited.
        *observations.handlers(),
        *common.handlers(),
        CallbackQueryHandler(common.stale_button),
    ]
    for handler in features:
        application.add_handler(handler, group=FEATURE_GROUP)
    application.add_handler(TypeHandler(Update, inbound.finish), group=FINISH_GROUP)
    application.add_error_handler(inbound.on_error)


async def _post_init(application: Application) -> None:
    # The bot's face is a convenience: Telegram refusing it must not keep the service down.
    try:
        await set_face(application.bot, application.bot_data["database"])
    except TelegramError as exc:
        logger.warning("could not set the bot's menu and description: %s", exc)


async def set_face(bot: Bot, database: Database) -> None:
    """The command menu (everyone's, and in each coordinator's chat theirs), the description
    and the short description, in each language (Telegram picks by the app's language; without
    one it shows the default language). Set when the service starts: a coordinator who joins
    later gets their menu at the next start."""
    for locale in (None, *LOCALES):
        text = locale or DEFAULT_LOCALE
        await bot.set_my_commands(_menu(MENU, text), language_code=locale)
        await bot.set_my_description(label(DESCRIPTION, text), language_code=locale)
        await bot.set_my_short_description(label(SHORT_DESCRIPTION, text), language_code=locale)
    async with database.session() as session:
        chats = (
            await session.exec(
                select(Participant.telegram_chat_id, Participant.locale)
                .where(Participant.role == Role.COORDINATOR)
                .where(Participant.telegram_chat_id.is_not(None))  # type: ignore[union-attr]
                .where(Participant.telegram_active)
                .where(Participant.erased_at.is_(None))  # type: ignore[union-attr]
            )
        ).all()
    for chat_id, locale in sorted(set(chats), key=lambda chat: chat[0] or 0):
        scope = BotCommandScopeChat(chat_id)
        await bot.set_my_commands(_menu(COORDINATOR_MENU, locale or DEFAULT_LOCALE), scope=scope)
        for language in LOCALES:
            await bot.set_my_commands(
                _menu(COORDINATOR_MENU, language), scope=scope, language_code=language
            )


def _menu(entries: list[tuple[str, str]], locale: str) -> list[BotCommand]:
    return [BotCommand(name, label(text, locale)) for name, text in entries]
