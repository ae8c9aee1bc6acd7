"""`palabre serve` as a real process: it polls (or takes webhook calls), sends, and stops cleanly.

These tests start the command itself on a fresh SQLite file (it runs the migrations as it
starts), against the fake Bot API, and stop it with SIGTERM as a supervisor would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import select

from consultation import outbox
from models import OutboxMessage, OutboxStatus
from models.db import Database
from models.migrate import upgrade
from tests.bot.harness import TOKEN
from tests.factories import make_consultation, make_participant

ROOT = Path(__file__).resolve().parents[2]
FIRST_CHAT = 20_001


def start(tmp_path: Path, database_url: str, *args: str, **env: str) -> subprocess.Popen:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PALABRE_")
    }
    environment.update(
        PALABRE_DATABASE_URL=database_url,
        PALABRE_MAIL_BACKEND="file",
        PALABRE_MAIL_DIR=str(tmp_path / "mail"),
        PYTHONPATH=str(ROOT),
        **env,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "palabre.cli", "serve", *args],
        cwd=tmp_path,  # no .env of the repository
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen, timeout: float = 30) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


async def people_with_news(url: str, count: int) -> None:
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    try:
        async with database.session() as session:
            consultation = await make_consultation(
                session, current="observe", rules={"quiet_hours": "00:00-00:00"}
            )
            for number in range(count):
                person = await make_participant(
                    session, consultation, telegram_chat_id=FIRST_CHAT + number
                )
                await outbox.notify(
                    session=session,
                    participant=person,
                    template="broadcast",
                    payload={"text": f"Réunion jeudi ({number})", "category": None, "title": "ESS"},
                    dedupe_key=f"news:{person.id}",
                )
    finally:
        await database.dispose()


async def outbox_rows(url: str) -> list[OutboxMessage]:
    database = Database(url)
    try:
        async with database.session() as session:
            return list((await session.exec(select(OutboxMessage))).all())
    finally:
        await database.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_sigterm_finishes_the_sends_in_flight_and_exits_cleanly(tmp_path, botapi):
    """Given 40 messages to send, when serve gets SIGTERM mid-way, then it exits 0 and every
    message Telegram received is recorded as sent, the others wait for the next start."""
    url = f"sqlite:///{tmp_path / 'palabre.db'}"
    await people_with_news(url, 40)
    process = start(
        tmp_path, url, PALABRE_TELEGRAM_TOKEN=TOKEN, PALABRE_TELEGRAM_API_URL=botapi.url
    )
    try:
        await asyncio.to_thread(botapi.wait_until_polling, 30)
        botapi.push_message(7_777, "/start", first_name="Inconnu")
        await botapi.awaiting_calls("sendMessage", 12, timeout=30)
    finally:
        status, stderr = await asyncio.to_thread(stop, process)

    assert status == 0, stderr
    assert TOKEN not in stderr and TOKEN.split(":")[1] not in stderr
    answered = [call for call in botapi.calls_to("sendMessage", ok=True)]
    assert any(call.params["chat_id"] == 7_777 for call in answered)  # the bot was up
    delivered = sorted(
        call.params["chat_id"] for call in answered if call.params["chat_id"] >= FIRST_CHAT
    )
    assert len(delivered) == len(set(delivered))
    rows = await outbox_rows(url)
    assert not [row for row in rows if row.status == OutboxStatus.SENDING]
    sent = [row for row in rows if row.status == OutboxStatus.SENT]
    assert len(sent) == len(delivered)  # nothing sent without being recorded, nor the reverse
    assert len(sent) < 40  # it did stop mid-way

    # Started again, it sends the rest, each once.
    process = start(
        tmp_path, url, PALABRE_TELEGRAM_TOKEN=TOKEN, PALABRE_TELEGRAM_API_URL=botapi.url
    )
    try:
        await botapi.awaiting_calls("sendMessage", len(answered) + 40 - len(sent), timeout=30)
    finally:
        status, stderr = await asyncio.to_thread(stop, process)
    assert status == 0, stderr
    chats = [
        call.params["chat_id"]
        for call in botapi.calls_to("sendMessage", ok=True)
        if call.params["chat_id"] >= FIRST_CHAT
    ]
    assert sorted(chats) == list(range(FIRST_CHAT, FIRST_CHAT + 40))
    assert all(row.status == OutboxStatus.SENT for row in await outbox_rows(url))


async def test_without_a_token_serve_says_how_to_turn_the_bot_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'palabre.db'}"
    process = start(tmp_path, url, PALABRE_LOCALE="en")
    try:
        await asyncio.sleep(0)  # let it start; what it printed is read when it has stopped
        deadline = time.monotonic() + 30
        while not (tmp_path / "palabre.db").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
    finally:
        status, stderr = await asyncio.to_thread(stop, process)

    assert status == 0, stderr
    assert "The Telegram bot is off" in stderr
    assert "@BotFather" in stderr and "PALABRE_TELEGRAM_TOKEN" in stderr


@pytest.mark.parametrize("secret_ok", [True, False])
async def test_webhook_mode_checks_the_secret_token(tmp_path, botapi, secret_ok):
    url = f"sqlite:///{tmp_path / 'palabre.db'}"
    port = free_port()
    process = start(
        tmp_path,
        url,
        "--webhook-url",
        "https://palabre.example/telegram/hook",
        "--webhook-port",
        str(port),
        PALABRE_TELEGRAM_TOKEN=TOKEN,
        PALABRE_TELEGRAM_API_URL=botapi.url,
        PALABRE_TELEGRAM_WEBHOOK_SECRET="s3cret-Token_1",
    )
    try:
        (registered,) = await botapi.awaiting_calls("setWebhook", 1, timeout=30)
        assert registered.params["url"] == "https://palabre.example/telegram/hook"
        assert registered.params["secret_token"] == "s3cret-Token_1"
        update = {
            "update_id": 900_001,
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": 7_778, "type": "private", "first_name": "Inconnu"},
                "from": {"id": 7_778, "is_bot": False, "first_name": "Inconnu"},
                "text": "/start",
                "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            },
        }
        headers = {"Content-Type": "application/json"}
        if secret_ok:
            headers["X-Telegram-Bot-Api-Secret-Token"] = "s3cret-Token_1"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/telegram/hook",
            data=json.dumps(update).encode(),
            headers=headers,
        )

        def post() -> int:
            for _ in range(50):  # the listener may still be starting
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        return response.status
                except urllib.error.HTTPError as error:
                    return error.code
                except OSError:
                    time.sleep(0.1)
            raise AssertionError("the webhook never answered")

        code = await asyncio.to_thread(post)
        if secret_ok:
            assert code == 200
            (answer,) = await botapi.awaiting_calls("sendMessage", 1, timeout=10)
            assert answer.params["chat_id"] == 7_778
        else:
            assert code == 403
    finally:
        status, stderr = await asyncio.to_thread(stop, process)
    assert status == 0, stderr
    if not secret_ok:
        assert botapi.calls_to("sendMessage") == []


async def test_a_token_telegram_refuses_stops_serve_with_one_clear_line(tmp_path, botapi):
    url = f"sqlite:///{tmp_path / 'palabre.db'}"
    botapi.fail_next("getMe", 401, times=5)
    process = start(
        tmp_path,
        url,
        PALABRE_TELEGRAM_TOKEN=TOKEN,
        PALABRE_TELEGRAM_API_URL=botapi.url,
        PALABRE_LOCALE="en",
    )
    _, stderr = await asyncio.to_thread(process.communicate, timeout=60)

    assert process.returncode == 1
    assert "Telegram refuses the token in PALABRE_TELEGRAM_TOKEN" in stderr
    assert "Traceback" not in stderr and TOKEN not in stderr


async def test_serve_answers_unsubscribe_links_and_stops_cleanly(tmp_path):
    """With PALABRE_HTTP_PORT set, serve answers /healthz and the one-click unsubscribe link of
    a person's emails, and SIGTERM stops the web server with the rest."""
    import httpx

    from mailer.tokens import unsubscribe_token
    from models import Participant
    from palabre.settings import Settings

    url = f"sqlite:///{tmp_path / 'palabre.db'}"
    secret = "serve-test-secret-0123456789abcdef"
    await asyncio.to_thread(upgrade, url)
    database = Database(url)
    try:
        async with database.session() as session:
            person = await make_participant(session, await make_consultation(session))
    finally:
        await database.dispose()
    token = unsubscribe_token(
        Settings(_env_file=None, secret_key=secret).mail_config(), person.reply_key
    )
    port = free_port()
    process = start(
        tmp_path,
        url,
        PALABRE_HTTP_PORT=str(port),
        PALABRE_SECRET_KEY=secret,
        PALABRE_PUBLIC_URL="https://palabre.example",
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:  # the server listens once the migrations have run
                try:
                    health = await client.get("/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the web server never answered"
                    await asyncio.sleep(0.1)
            assert (health.status_code, health.text) == (200, "ok")
            answer = await client.post(
                f"/email/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}
            )
            assert answer.status_code == 200
    finally:
        status, stderr = await asyncio.to_thread(stop, process)

    assert status == 0, stderr
    assert "web server stopped" in stderr and "Traceback" not in stderr
    assert token.partition(".")[2] not in stderr
    database = Database(url)
    try:
        async with database.session() as session:
            assert (await session.get(Participant, person.id)).opted_out_at is not None
    finally:
        await database.dispose()
