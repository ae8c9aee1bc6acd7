"""Builds the python-telegram-bot Application: the Bot API root, defaults, and every handler.

The Bot API root comes from `BotConfig.api_url` (`<root>/bot` and `<root>/file/bot`), so the
bot runs against Telegram, a local Bot API server, or the test server alike. Every message is
HTML (user-written text is escaped by the templates). Handlers are grouped so that the
inbound guard runs first (group -1), the features next (group 0), and the bookkeeping last.
"""

from __future__ import annotations

from typing import Any

from telegram import Bot, BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
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
    privacy,
    questionnaires,
    ranking,
)
from bot.handlers import (
    settings as settings_handlers,
)
from bot.text import N_, label
from bot.updates import PerChatUpdateProcessor
from models.db import Database

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
    ("settings", N_("Language, digest, channel")),
    ("mydata", N_("My data")),
    ("help", N_("Help")),
]


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
    """Show the command menu in French and in English."""
    for locale in ("fr", "en"):
        commands = [BotCommand(name, label(text, locale)) for name, text in MENU]
        await application.bot.set_my_commands(commands, language_code=locale)
