"""The fake Bot API against the real python-telegram-bot client, over a real socket.

These tests pin down what the rest of the suite relies on: PTB can talk to the server, the
server records what PTB sent, and injected failures surface as the exceptions PTB raises on
Telegram's real answers. ``test_application_answers_start`` is the pattern to copy for a test
that runs a whole ``telegram.ext.Application``.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import http.client
import json
import socket
import threading
import time
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from tests.servers.botapi import FakeBotApi, UploadedFile

TOKEN = "123456:TEST-token"
AICHA = 4242


@pytest.fixture(autouse=True)
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # Opt in to PTB 23's types (RetryAfter.retry_after is a timedelta) and silence the warning.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def bot(botapi: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=botapi.base_url, base_file_url=botapi.base_file_url) as bot:
        yield bot


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(text=d, callback_data=d) for d in data]])


@pytest.mark.asyncio
async def test_get_me_returns_the_configured_bot(bot: Bot, botapi: FakeBotApi) -> None:
    me = await bot.get_me()

    assert me.username == "palabre_test_bot"
    assert me.id == 123456  # taken from the token, as on Telegram
    assert botapi.tokens == {TOKEN}


@pytest.mark.asyncio
async def test_send_message_records_text_and_keyboard(bot: Bot, botapi: FakeBotApi) -> None:
    sent = await bot.send_message(
        AICHA, "F3 : les petites coopératives", reply_markup=keyboard("st:3:y", "st:3:n")
    )

    assert sent.text == "F3 : les petites coopératives"
    assert sent.chat.id == AICHA
    assert sent.reply_markup.inline_keyboard[0][1].callback_data == "st:3:n"
    (call,) = botapi.calls_to("sendMessage")
    assert call.params["chat_id"] == AICHA
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "st:3:y", "callback_data": "st:3:y"},
                {"text": "st:3:n", "callback_data": "st:3:n"},
            ]
        ]
    }
    assert botapi.sent_messages(AICHA) == ["F3 : les petites coopératives"]
    assert botapi.sent_messages(chat_id=1) == []


@pytest.mark.asyncio
async def test_text_that_looks_like_json_or_a_number_stays_a_string(
    bot: Bot, botapi: FakeBotApi
) -> None:
    await bot.send_message(AICHA, "123")
    await bot.send_message(AICHA, "[F3] true")

    assert botapi.sent_messages() == ["123", "[F3] true"]


@pytest.mark.asyncio
async def test_callback_then_edit_of_the_pressed_message(bot: Bot, botapi: FakeBotApi) -> None:
    sent = await bot.send_message(AICHA, "F3 ?", reply_markup=keyboard("st:3:y"))
    update_id = botapi.push_callback(AICHA, "st:3:y", sent.message_id)

    (update,) = await bot.get_updates(offset=update_id)
    query = update.callback_query
    assert query.data == "st:3:y"
    assert query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="Merci")
    edited = await bot.edit_message_text("F3 : confirmé", AICHA, sent.message_id)

    assert edited.text == "F3 : confirmé"
    assert edited.reply_markup is None  # an edit without reply_markup drops the keyboard
    (answer,) = botapi.calls_to("answerCallbackQuery")
    assert answer.params == {"callback_query_id": f"cbq-{update_id}", "text": "Merci"}
    assert botapi.message(AICHA, sent.message_id)["text"] == "F3 : confirmé"


@pytest.mark.asyncio
async def test_edit_reply_markup_and_not_modified(bot: Bot, botapi: FakeBotApi) -> None:
    sent = await bot.send_message(AICHA, "A3 ?", reply_markup=keyboard("rk:3"))

    await bot.edit_message_reply_markup(AICHA, sent.message_id, reply_markup=keyboard("rk:4"))
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(AICHA, sent.message_id, reply_markup=keyboard("rk:4"))
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("?", AICHA, 999_999)


@pytest.mark.asyncio
async def test_send_document_uploads_the_bytes(bot: Bot, botapi: FakeBotApi) -> None:
    content = b"%PDF-1.4 plan d'actions\x00\xff"

    sent = await bot.send_document(
        AICHA, document=content, filename="plan-d'actions é.pdf", caption="Le plan"
    )

    assert sent.document.file_name == "plan-d'actions é.pdf"
    assert sent.document.file_size == len(content)
    (upload,) = botapi.sent_documents(AICHA)
    assert upload == UploadedFile("document", "plan-d'actions é.pdf", content, "application/pdf")
    assert botapi.calls_to("sendDocument")[0].params["caption"] == "Le plan"
    downloaded = await (await bot.get_file(sent.document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == content


@pytest.mark.asyncio
async def test_get_updates_offset_confirms_earlier_updates(bot: Bot, botapi: FakeBotApi) -> None:
    first = botapi.push_message(AICHA, "bonjour")
    second = botapi.push_message(AICHA, "/start abc")

    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [first, second]
    assert updates[1].message.text == "/start abc"
    assert updates[1].message.from_user.language_code == "fr"

    assert [u.update_id for u in await bot.get_updates(offset=second)] == [second]
    assert await bot.get_updates(offset=second + 1) == ()
    assert botapi.pending_update_ids == []


@pytest.mark.asyncio
async def test_a_redelivered_update_keeps_its_id(bot: Bot, botapi: FakeBotApi) -> None:
    update_id = botapi.push_message(AICHA, "une observation")
    (raw,) = botapi.pushed_updates
    await bot.get_updates(offset=update_id + 1)

    botapi.push_update(raw)

    (again,) = await bot.get_updates()
    assert again.update_id == update_id


@pytest.mark.asyncio
async def test_long_poll_returns_when_an_update_is_pushed(bot: Bot, botapi: FakeBotApi) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.to_thread(botapi.wait_until_polling)
    started = time.monotonic()

    pusher = threading.Thread(target=botapi.push_message, args=(AICHA, "/start"))
    pusher.start()
    updates = await asyncio.wait_for(poll, timeout=5)
    pusher.join()

    assert [u.message.text for u in updates] == ["/start"]
    assert time.monotonic() - started < 5  # woken by the push, not by the 10 s timeout


@pytest.mark.asyncio
async def test_long_poll_does_not_block_other_requests(bot: Bot, botapi: FakeBotApi) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.to_thread(botapi.wait_until_polling)

    await bot.send_message(AICHA, "pendant le long poll")

    assert not poll.done()
    botapi.push_message(AICHA, "fin du long poll")
    assert len(await asyncio.wait_for(poll, timeout=5)) == 1


@pytest.mark.asyncio
async def test_a_new_poll_ends_the_waiting_one_with_conflict(bot: Bot, botapi: FakeBotApi) -> None:
    old = asyncio.create_task(bot.get_updates(timeout=10))
    await asyncio.to_thread(botapi.wait_until_polling)

    # A second instance of the bot, as when two processes poll with one token.
    async with Bot(TOKEN, base_url=botapi.base_url) as other:
        await other.get_updates(timeout=0)

    with pytest.raises(Conflict):
        await old


@pytest.mark.asyncio
async def test_429_raises_retry_after(bot: Bot, botapi: FakeBotApi) -> None:
    botapi.fail_next("sendMessage", 429, retry_after=3)

    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(AICHA, "trop vite")
    await bot.send_message(AICHA, "plus tard")

    assert raised.value.retry_after == dtm.timedelta(seconds=3)
    failed, sent = botapi.calls_to("sendMessage")
    assert (failed.failed, failed.status, failed.description) == (
        True,
        429,
        "Too Many Requests: retry after 3",
    )
    assert sent.ok
    assert botapi.sent_messages() == ["plus tard"]


@pytest.mark.asyncio
async def test_403_raises_forbidden(bot: Bot, botapi: FakeBotApi) -> None:
    botapi.fail_next("sendMessage", 403)

    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(AICHA, "bonjour")


@pytest.mark.asyncio
async def test_400_raises_bad_request(bot: Bot, botapi: FakeBotApi) -> None:
    botapi.fail_next("sendMessage", 400, description="Bad Request: chat not found")

    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(AICHA, "bonjour")


@pytest.mark.asyncio
async def test_500_raises_plain_network_error(bot: Bot, botapi: FakeBotApi) -> None:
    botapi.fail_next("sendMessage", 500, times=2)

    for _ in range(2):
        with pytest.raises(NetworkError) as raised:
            await bot.send_message(AICHA, "bonjour")
        # PTB raises NetworkError itself (BadRequest and TimedOut are its subclasses).
        assert type(raised.value) is NetworkError
    await bot.send_message(AICHA, "bonjour")
    assert [call.status for call in botapi.calls_to("sendMessage")] == [500, 500, 200]


@pytest.mark.asyncio
async def test_failures_can_target_one_chat(bot: Bot, botapi: FakeBotApi) -> None:
    botapi.fail_next("sendMessage", 429, chat_id=AICHA, retry_after=1)

    await bot.send_message(1, "autre chat")
    with pytest.raises(RetryAfter):
        await bot.send_message(AICHA, "bonjour")


@pytest.mark.asyncio
async def test_blocked_chat_answers_403_until_unblocked(bot: Bot, botapi: FakeBotApi) -> None:
    botapi.block_chat(AICHA)

    for _ in range(2):
        with pytest.raises(Forbidden):
            await bot.send_message(AICHA, "bonjour")
    await bot.send_message(1, "un autre chat passe")
    botapi.unblock_chat(AICHA)
    await bot.send_message(AICHA, "de retour")

    assert botapi.sent_messages() == ["un autre chat passe", "de retour"]


@pytest.mark.asyncio
async def test_refuses_what_telegram_refuses(bot: Bot, botapi: FakeBotApi) -> None:
    # PTB drops the "Bad Request: " prefix and capitalize()s the rest, hence (?i).
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(AICHA, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(AICHA, "?", reply_markup=keyboard("x" * 65))
    with pytest.raises(BadRequest, match=r'(?i)Unsupported start tag "br"'):
        await bot.send_message(AICHA, "un<br>deux", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)end tag"):
        await bot.send_message(AICHA, "<b>gras", parse_mode="HTML")

    sent = await bot.send_message(AICHA, "<b>F3</b> &amp; F4", parse_mode="HTML")
    assert sent.text == "F3 & F4"
    assert botapi.sent_messages() == ["<b>F3</b> &amp; F4"]  # as it crossed the wire


@pytest.mark.asyncio
async def test_webhook_and_commands(bot: Bot, botapi: FakeBotApi) -> None:
    from telegram import BotCommand

    await bot.set_webhook("https://palabre.example/telegram", secret_token="s3cret")
    info = await bot.get_webhook_info()
    assert info.url == "https://palabre.example/telegram"
    with pytest.raises(Conflict):
        await bot.get_updates()
    await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""

    await bot.set_my_commands([BotCommand("start", "Commencer")], language_code="fr")
    assert [c.command for c in await bot.get_my_commands(language_code="fr")] == ["start"]
    assert await bot.get_my_commands() == ()
    await bot.delete_my_commands(language_code="fr")
    assert await bot.get_my_commands(language_code="fr") == ()


@pytest.mark.asyncio
async def test_wait_for_calls_times_out_with_what_was_seen(botapi: FakeBotApi) -> None:
    with pytest.raises(TimeoutError, match="sendMessage"):
        await botapi.awaiting_calls("sendMessage", 1, timeout=0.05)


@pytest.mark.asyncio
async def test_application_answers_start(botapi: FakeBotApi) -> None:
    """The pattern for a test that runs a real Application against the fake Bot API."""

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await update.effective_message.reply_text(f"Bienvenue {context.args}")

    application = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(botapi.base_url)
        .base_file_url(botapi.base_file_url)
        .build()
    )
    application.add_handler(CommandHandler("start", start))

    async with application:  # initialize() ... shutdown()
        await application.start()
        # timeout=1 keeps each long poll short; stopping cancels the one in flight anyway.
        await application.updater.start_polling(poll_interval=0, timeout=1)
        try:
            update_id = botapi.push_message(AICHA, "/start tok3n")
            (reply,) = await botapi.awaiting_calls("sendMessage", 1)
        finally:
            await application.updater.stop()
            await application.stop()

    assert reply.params["chat_id"] == AICHA
    assert reply.params["text"] == "Bienvenue ['tok3n']"
    # On stop, the Updater confirms what it fetched: nothing is left to redeliver.
    assert update_id not in botapi.pending_update_ids


def test_stop_is_quick_and_leaves_no_thread_or_port() -> None:
    api = FakeBotApi().start()
    host, port = api.host, api.port
    # A long poll whose client never reads the answer, and an idle keep-alive connection.
    polling = http.client.HTTPConnection(host, port, timeout=5)
    polling.request(
        "POST",
        f"/bot{TOKEN}/getUpdates",
        body=json.dumps({"timeout": 30}),
        headers={"Content-Type": "application/json"},
    )
    api.wait_until_polling()
    idle = http.client.HTTPConnection(host, port, timeout=5)
    idle.request("GET", f"/bot{TOKEN}/getMe")
    assert json.loads(idle.getresponse().read())["ok"] is True

    started = time.monotonic()
    api.stop()

    assert time.monotonic() - started < 1
    leftovers = [
        thread.name
        for thread in threading.enumerate()
        if "process_request_thread" in thread.name or thread.name.startswith("FakeBotApi")
    ]
    assert leftovers == []
    with pytest.raises(ConnectionRefusedError), socket.create_connection((host, port)):
        pass
    polling.close()
    idle.close()
