"""`palabre serve` sets up the bot's face as it starts, and says it runs and what comes next.

Checked on the local Bot API server: what Telegram was asked to show is what it recorded.
"""

from __future__ import annotations

import asyncio
import json

from models.db import Database
from models.migrate import upgrade
from tests.bot.harness import TOKEN
from tests.bot.test_serve import start, stop
from tests.factories import make_consultation, make_participant

COORDINATOR_CHAT = 31_001


async def a_coordinator_on_telegram(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    try:
        async with database.session() as session:
            consultation = await make_consultation(session, current="observe")
            await make_participant(
                session, consultation, role="coordinator", telegram_chat_id=COORDINATOR_CHAT
            )
            await make_participant(session, consultation, telegram_chat_id=COORDINATOR_CHAT + 1)
    finally:
        await database.dispose()


def menu(botapi, *, chat: int | None = None, language: str = "") -> dict[str, str]:
    scope = {"type": "chat", "chat_id": chat} if chat else {"type": "default"}
    key = json.dumps([scope, language], sort_keys=True)
    return {command["command"]: command["description"] for command in botapi.commands[key]}


async def test_on_start_the_menu_and_descriptions_are_set_in_both_languages(tmp_path, botapi):
    """Given a coordinator bound to Telegram, when serve starts, then everyone's menu is set in
    French (also the default) and English, the coordinator's chat has the coordinator's menu,
    and the bot has its description and short description in both languages."""
    url = f"sqlite:///{tmp_path / 'palabre.db'}"
    await a_coordinator_on_telegram(url)
    process = start(
        tmp_path,
        url,
        PALABRE_TELEGRAM_TOKEN=TOKEN,
        PALABRE_TELEGRAM_API_URL=botapi.url,
        PALABRE_LOCALE="en",
    )
    try:
        await asyncio.to_thread(botapi.wait_until_polling, 30)
    finally:
        status, stderr = await asyncio.to_thread(stop, process)
    assert status == 0, stderr

    french, english, default = (
        menu(botapi, language="fr"),
        menu(botapi, language="en"),
        menu(botapi),
    )
    assert french["findings"] == "Confirmer ou contester les constats"
    assert english["findings"] == "Confirm or contest the findings"
    assert default == french
    assert "phase" not in french  # a participant is not offered what only coordinators can do
    coordinator = menu(botapi, chat=COORDINATOR_CHAT, language="fr")
    assert {"phase", "publish", "moderate", "broadcast", "stats"} <= set(coordinator)
    assert set(french) <= set(coordinator)
    assert "phase" in menu(botapi, chat=COORDINATOR_CHAT, language="en")
    assert not [
        call
        for call in botapi.calls_to("setMyCommands")
        if (call.params.get("scope") or {}).get("chat_id") == COORDINATOR_CHAT + 1
    ]
    for method in ("setMyDescription", "setMyShortDescription"):
        languages = {call.params.get("language_code") for call in botapi.calls_to(method)}
        assert {"fr", "en"} <= languages, method
    (short_fr,) = [
        call.params["short_description"]
        for call in botapi.calls_to("setMyShortDescription")
        if call.params.get("language_code") == "fr"
    ]
    assert "constat" in short_fr

    # Once running, serve says so, where the emails go, how to stop it and what comes next.
    assert "Palabre is running." in stderr
    assert str(tmp_path / "mail") in stderr
    assert "Ctrl-C" in stderr
    assert "palabre invite" in stderr
