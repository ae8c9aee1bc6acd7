"""What Palabre holds of me: /mine (what became of my contributions), /mydata (all of it, as a
JSON document), /forget (erasure, after a confirmation) and /stop (no more messages).

Callback data: `fg:<y|n>:<nonce>`.
"""

from __future__ import annotations

import json
import logging

from telegram import InputFile, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import dialogue
from bot.context import PalabreContext
from bot.handlers.common import ONLY_NEW, Turn, bound, participant
from bot.keyboards import button, keyboard
from bot.text import N_
from consultation import preferences, privacy, trace
from models import Channel

logger = logging.getLogger(__name__)

FORGET = N_("Yes, erase everything")
KEEP = N_("No, keep my data")


@participant
async def mine_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/mine: each of my observations and proposals, and what became of it."""
    async with turn.session() as session:
        contributions = await trace.contributions_of(
            session=session, participant=await turn.me(session)
        )
    await turn.send("mine", contributions=trace.summary(contributions)["contributions"])


@bound
async def mydata_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/mydata: everything Palabre stores about me, as a JSON document."""
    async with turn.session() as session:
        document = await privacy.export_data(session=session, participant=await turn.me(session))
    content = json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    slug = turn.consultation.slug if turn.consultation else "palabre"
    await context.bot.send_document(
        turn.chat_id,
        document=InputFile(content, filename=f"palabre-{slug}-my-data.json"),
        caption=turn.render("mydata"),
    )


@bound
async def forget_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/forget: erase my data, once I confirm."""
    async with turn.session() as session:
        state = await dialogue.begin(session, await turn.me(session), dialogue.FORGET)
    await turn.send(
        "forget_confirm",
        markup=keyboard(
            [
                [button(f"🗑 {turn.label(FORGET)}", f"fg:y:{state.nonce}")],
                [button(turn.label(KEEP), f"fg:n:{state.nonce}")],
            ]
        ),
    )


@bound
async def forget_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """The answer to "erase everything?"."""
    try:
        _, answer, nonce = turn.data
    except ValueError:
        await turn.stale()
        return
    async with turn.session() as session:
        me = await turn.me(session)
        state = await dialogue.expect(session, me, dialogue.FORGET, nonce)
        if state is not None and answer == "y":
            await privacy.forget(
                session=session, participant=me, by=me, erasure_key=context.erasure_key
            )
        elif state is not None:
            await dialogue.end(session, me, dialogue.FORGET)
    if state is None:
        await turn.stale()
        return
    if answer == "y":
        logger.info("participant %s erased their data from Telegram", me.id)
        await turn.edit("forgotten")
    else:
        await turn.edit("forget_kept")


@bound
async def stop_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/stop: no more messages from Palabre, on any channel."""
    async with turn.session() as session:
        await preferences.opt_out(
            session=session, participant=await turn.me(session), channel=Channel.TELEGRAM
        )
    await turn.send("stopped")


def handlers() -> list:
    return [
        CommandHandler("mine", mine_command, filters=ONLY_NEW),
        CommandHandler("mydata", mydata_command, filters=ONLY_NEW),
        CommandHandler("forget", forget_command, filters=ONLY_NEW),
        CommandHandler("stop", stop_command, filters=ONLY_NEW),
        CallbackQueryHandler(forget_button, pattern=r"^fg:"),
    ]
