"""A local Telegram Bot API server for tests.

The real python-telegram-bot client talks to it over HTTP on 127.0.0.1, so a test exercises the
same serialisation, error mapping and long polling as production, and asserts on what crossed the
wire (``calls``) rather than on mocks. Point PTB at it with::

    Bot(token, base_url=f"{api.url}/bot", base_file_url=f"{api.url}/file/bot")

It keeps just enough state to answer like Telegram: a queue of updates that tests push and the
bot fetches with ``getUpdates`` (offset confirms, long polling with ``timeout``), the messages the
bot sent (so that a callback query can point at one and an edit can change it), uploaded files,
the webhook and the command list. It also refuses what Telegram refuses and Palabre must cope
with: texts over 4,096 characters, ``callback_data`` over 64 bytes, HTML that Telegram cannot
parse (``<br>``, unclosed tags), edits that change nothing ("message is not modified"). Tests can
make it answer 429/403/400/500 on demand (``fail_next``) or act as a user who blocked the bot
(``block_chat``).

Only the standard library is used, so the server has no opinion about the client under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import html.parser
import itertools
import json
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["ApiError", "Call", "FakeBotApi", "UploadedFile"]

DEFAULT_USERNAME = "palabre_test_bot"
DEFAULT_BOT_ID = 7_000_000_001

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64

# Descriptions copied from what Telegram answers, so that code matching on them is tested too.
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot "
    "instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
BLOCKED_DESCRIPTION = DEFAULT_DESCRIPTIONS[403]

# Form values arrive as strings: PTB JSON-encodes every non-string parameter. These names are
# decoded back to numbers or booleans; free text (``text``, ``caption``, ``data``...) never is,
# so that a user who types "123" or "true" keeps a string.
_INT_PARAMS = frozenset(
    [
        "chat_id",
        "from_chat_id",
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "user_id",
        "offset",
        "limit",
        "timeout",
        "cache_time",
        "max_connections",
        "width",
        "height",
        "duration",
    ]
)
_TEXT_PARAMS = frozenset(
    [
        "text",
        "caption",
        "data",
        "query",
        "url",
        "callback_query_id",
        "inline_message_id",
        "file_id",
        "parse_mode",
        "secret_token",
        "ip_address",
        "language_code",
        "description",
        "short_description",
        "name",
        "business_connection_id",
    ]
)
_BOOL_WORDS = {"true": True, "false": False}

# Tags Telegram accepts with parse_mode=HTML (https://core.telegram.org/bots/api#html-style).
_TELEGRAM_HTML_TAGS = frozenset(
    [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    ]
)


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request (e.g. the ``document`` of ``sendDocument``)."""

    field: str
    filename: str
    content: bytes
    content_type: str


@dataclass
class Call:
    """One request the bot made, as it crossed the wire, and how the server answered it.

    ``params`` holds the decoded parameters: JSON strings such as ``reply_markup`` are parsed,
    ids and numbers are ints, uploaded files are :class:`UploadedFile`. ``timestamp`` is the
    ``time.monotonic()`` at which the request arrived.
    """

    method: str
    params: dict[str, Any]
    token: str
    timestamp: float
    status: int = 200
    description: str | None = None
    result: Any = None
    files: dict[str, UploadedFile] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == HTTPStatus.OK

    @property
    def failed(self) -> bool:
        return not self.ok

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")


class ApiError(Exception):
    """Raised inside a method handler to answer with the Bot API error shape."""

    def __init__(
        self, status: int, description: str | None = None, *, retry_after: int | None = None
    ):
        super().__init__(description)
        self.status = status
        self.description = description or DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            payload["parameters"] = {"retry_after": self.retry_after}
        return payload


@dataclass
class _Failure:
    method: str
    status: int
    remaining: int
    retry_after: int | None
    description: str | None
    chat_id: Any

    def matches(self, method: str, params: Mapping[str, Any]) -> bool:
        if self.method not in ("*", method):
            return False
        return self.chat_id is None or params.get("chat_id") == self.chat_id

    def error(self) -> ApiError:
        if self.status == HTTPStatus.TOO_MANY_REQUESTS:
            retry_after = 1 if self.retry_after is None else self.retry_after
            description = self.description or f"Too Many Requests: retry after {retry_after}"
            return ApiError(self.status, description, retry_after=retry_after)
        return ApiError(self.status, self.description, retry_after=self.retry_after)


class FakeBotApi:
    """A Telegram Bot API server on 127.0.0.1 for tests (thread-safe).

    Use it as a context manager or call ``start()`` / ``stop()``. Any token is accepted and
    recorded. Pushed updates get increasing ``update_id``; every message, pushed or sent by the
    bot, gets an increasing ``message_id`` (one counter for the whole server, so ids never
    collide across chats). A pushed callback query has the id ``f"cbq-{update_id}"``.
    """

    def __init__(
        self,
        *,
        username: str = DEFAULT_USERNAME,
        first_name: str = "Palabre (test)",
        host: str = "127.0.0.1",
        strict: bool = True,
    ) -> None:
        self.username = username
        self.first_name = first_name
        self.host = host
        # strict=False turns off the content checks (length, HTML, not modified, unknown ids)
        # for a test that wants to send something Telegram would refuse.
        self.strict = strict
        self._cond = threading.Condition()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._stopping = False
        self._reset_state()

    def _reset_state(self) -> None:
        self._calls: list[Call] = []
        self._updates: list[dict[str, Any]] = []  # not yet confirmed by an offset
        self._pushed: list[dict[str, Any]] = []
        self._update_ids = itertools.count(100_001)
        self._message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._messages: dict[tuple[Any, int], dict[str, Any]] = {}
        self._message_sources: dict[tuple[Any, int], tuple[Any, ...]] = {}
        self._files: dict[str, UploadedFile] = {}
        self._callback_ids: set[str] = set()
        self._users: dict[int, dict[str, Any]] = {}
        self._failures: list[_Failure] = []
        self._blocked: set[Any] = set()
        self._poll_generation = 0
        self._waiting_polls = 0
        self.webhook: dict[str, Any] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.tokens: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeBotApi:
        if self._httpd is not None:
            raise RuntimeError("FakeBotApi is already running")
        self._stopping = False
        self._httpd = _HttpServer((self.host, 0), _Handler, api=self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeBotApi:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake long polls, close client connections and join every thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        httpd.shutdown()
        # A keep-alive connection parks its handler thread in readline(); shutting the socket
        # down wakes it, so that server_close() can join every handler thread without hanging.
        with self._cond:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeBotApi is not running")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; PTB wants ``f"{url}/bot"`` and ``f"{url}/file/bot"``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    # -- what crossed the wire -------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str, *, chat_id: Any = None, ok: bool | None = None) -> list[Call]:
        """The calls of one method, oldest first; ``ok=True`` keeps only the answered ones."""
        with self._cond:
            return [
                call
                for call in self._calls
                if call.method == method
                and (chat_id is None or call.params.get("chat_id") == chat_id)
                and (ok is None or call.ok == ok)
            ]

    def sent_messages(self, chat_id: Any = None) -> list[str]:
        """Texts of the ``sendMessage`` calls that succeeded, as the bot sent them."""
        return [
            call.params.get("text", "")
            for call in self.calls_to("sendMessage", chat_id=chat_id, ok=True)
        ]

    def sent_documents(self, chat_id: Any = None) -> list[UploadedFile]:
        """Files uploaded by successful ``sendDocument`` calls."""
        return [
            call.params["document"]
            for call in self.calls_to("sendDocument", chat_id=chat_id, ok=True)
            if isinstance(call.params.get("document"), UploadedFile)
        ]

    def message(self, chat_id: Any, message_id: int) -> dict[str, Any] | None:
        """The current state of a message (after edits), or None if deleted or unknown."""
        with self._cond:
            found = self._messages.get((chat_id, message_id))
            return json.loads(json.dumps(found)) if found is not None else None

    @property
    def pushed_updates(self) -> list[dict[str, Any]]:
        """Every update pushed by the test, confirmed or not."""
        with self._cond:
            return list(self._pushed)

    @property
    def pending_update_ids(self) -> list[int]:
        """Updates not yet confirmed by a ``getUpdates`` offset."""
        with self._cond:
            return [update["update_id"] for update in self._updates]

    def clear(self) -> None:
        """Forget the recorded calls (state such as queued updates and messages is kept)."""
        with self._cond:
            self._calls.clear()

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until at least ``count`` calls of ``method`` were recorded; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [call for call in self._calls if call.method == method]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [call.method for call in self._calls]
                    raise TimeoutError(
                        f"waited {timeout}s for {count} {method} call(s), got {len(found)}; "
                        f"calls recorded: {seen}"
                    )
                self._cond.wait(remaining)

    def wait_until_polling(self, timeout: float = 5.0) -> None:
        """Block until a ``getUpdates`` long poll is waiting for updates.

        A test that must push *while* the bot polls (not before) waits for this first.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._waiting_polls == 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no getUpdates long poll started within {timeout}s")
                self._cond.wait(remaining)

    async def awaiting_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """``wait_for_calls`` for async tests: waits in a thread, never blocking the loop."""
        return await asyncio.to_thread(self.wait_for_calls, method, count, timeout)

    # -- what the test injects -------------------------------------------------------------

    def push_update(self, update: Mapping[str, Any]) -> int:
        """Queue a raw update as given (e.g. to redeliver one with the same ``update_id``)."""
        with self._cond:
            raw = json.loads(json.dumps(update))  # a snapshot, taken under the lock
            if "update_id" not in raw:
                raw["update_id"] = next(self._update_ids)
            query = raw.get("callback_query")
            if isinstance(query, dict) and "id" in query:
                self._callback_ids.add(str(query["id"]))
            self._updates.append(raw)
            self._updates.sort(key=lambda queued: queued["update_id"])
            self._pushed.append(raw)
            self._cond.notify_all()
            return raw["update_id"]

    def push_message(
        self,
        chat_id: int,
        text: str,
        user_id: int | None = None,
        first_name: str = "Aïcha",
        language_code: str | None = "fr",
        reply_to_message_id: int | None = None,
    ) -> int:
        """Queue a text message from a user; a leading ``/command`` gets its entity."""
        with self._cond:
            user = self._user(chat_id if user_id is None else user_id, first_name, language_code)
            message: dict[str, Any] = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": self._chat(chat_id),
                "from": user,
                "text": text,
            }
            command = re.match(r"/\S+", text)
            if command:
                # PTB's CommandHandler only fires when a bot_command entity starts the message.
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _utf16_len(command.group())}
                ]
            if reply_to_message_id is not None:
                replied = self._messages.get((chat_id, reply_to_message_id))
                message["reply_to_message"] = replied or {
                    "message_id": reply_to_message_id,
                    "date": int(time.time()),
                    "chat": self._chat(chat_id),
                }
            self._messages[(chat_id, message["message_id"])] = message
            update_id = next(self._update_ids)
        return self.push_update({"update_id": update_id, "message": message})

    def push_callback(
        self,
        chat_id: int,
        data: str,
        message_id: int,
        user_id: int | None = None,
        first_name: str = "Aïcha",
        language_code: str | None = "fr",
    ) -> int:
        """Queue a press on an inline button of the bot's message ``message_id``.

        The callback query id is ``f"cbq-{update_id}"``. A message id the bot never sent here
        (e.g. from before a restart) gets a placeholder message, so that it can be edited.
        """
        with self._cond:
            user = self._user(chat_id if user_id is None else user_id, first_name, language_code)
            key = (chat_id, message_id)
            if key not in self._messages:
                self._messages[key] = {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": self._chat(chat_id),
                    "from": self._bot_user(_bot_id(min(self.tokens, default=""))),
                    "text": "(a message sent before this test server started)",
                }
            update_id = next(self._update_ids)
            query = {
                "id": f"cbq-{update_id}",
                "from": user,
                "message": self._messages[key],
                "chat_instance": f"ci-{chat_id}",
                "data": data,
            }
        return self.push_update({"update_id": update_id, "callback_query": query})

    def fail_next(
        self,
        method: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
        chat_id: Any = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (``"*"``: any) with an error.

        429 carries ``parameters.retry_after`` (default 1), which PTB raises as ``RetryAfter``;
        403 → ``Forbidden``, 400 → ``BadRequest``, 500/502 → ``NetworkError``. With ``chat_id``
        only calls to that chat fail. The failed calls are recorded with their status.
        """
        with self._cond:
            self._failures.append(
                _Failure(method, status, times, retry_after, description, chat_id)
            )

    def block_chat(self, chat_id: Any) -> None:
        """Act as a user who blocked the bot: every call to that chat answers 403."""
        with self._cond:
            self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: Any) -> None:
        with self._cond:
            self._blocked.discard(chat_id)

    # -- request handling (called from the HTTP threads) -----------------------------------

    def _handle(
        self, token: str, method_name: str, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> tuple[int, dict[str, Any], Call]:
        # Telegram treats method names case-insensitively; record them as PTB spells them.
        method = _CANONICAL.get(method_name.lower(), method_name)
        call = Call(method, params, token, time.monotonic(), files=files)
        try:
            with self._cond:
                self.tokens.add(token)
                failure = self._take_failure(method, params)
            if failure is not None:
                raise failure
            handler = _METHODS.get(method)
            if handler is None:
                raise ApiError(
                    404, f"Not Found: method {method_name} is not implemented by FakeBotApi"
                )
            result = handler(self, call)
            with self._cond:
                # A snapshot: a later edit must not change what this call answered.
                call.result = json.loads(json.dumps(result))
            body: dict[str, Any] = {"ok": True, "result": call.result}
        except ApiError as error:
            call.status, call.description = error.status, error.description
            body = error.body()
        except Exception as error:  # a bug in this server: say so in the answer
            call.status = 500
            call.description = f"Internal Server Error: FakeBotApi failed on {method}: {error!r}"
            body = ApiError(500, call.description).body()
            traceback.print_exc()
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()
        return call.status, body, call

    def _take_failure(self, method: str, params: Mapping[str, Any]) -> ApiError | None:
        for failure in self._failures:
            if failure.matches(method, params):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return failure.error()
        if "chat_id" in params and params["chat_id"] in self._blocked:
            return ApiError(403, BLOCKED_DESCRIPTION)
        return None

    def _file(self, file_path: str) -> UploadedFile | None:
        with self._cond:
            return self._files.get(file_path.rsplit("/", 1)[-1].split("_", 1)[0])

    # -- building Bot API objects (call with the lock held) ----------------------------------

    def _bot_user(self, bot_id: int) -> dict[str, Any]:
        return {
            "id": bot_id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def _user(self, user_id: int, first_name: str, language_code: str | None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return user

    def _chat(self, chat_id: Any) -> dict[str, Any]:
        if isinstance(chat_id, str):
            return {"id": -1_001_000_000_001, "type": "channel", "title": chat_id}
        if chat_id > 0:
            name = self._users.get(chat_id, {}).get("first_name", "Aïcha")
            return {"id": chat_id, "type": "private", "first_name": name}
        if chat_id <= -1_000_000_000_000:
            return {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}
        return {"id": chat_id, "type": "group", "title": f"Group {chat_id}"}

    def _new_message(self, call: Call, **content: Any) -> dict[str, Any]:
        chat_id = _require(call.params, "chat_id")
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": self._bot_user(_bot_id(call.token)),
            **content,
        }
        reply = call.params.get("reply_parameters") or {}
        replied_id = reply.get("message_id") or call.params.get("reply_to_message_id")
        if replied_id and (chat_id, replied_id) in self._messages:
            message["reply_to_message"] = self._messages[(chat_id, replied_id)]
        if isinstance(call.params.get("reply_markup"), dict):
            markup = call.params["reply_markup"]
            # Only an inline keyboard stays attached to the message Telegram returns.
            if "inline_keyboard" in markup:
                message["reply_markup"] = markup
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _check_markup(self, markup: Any) -> None:
        if not self.strict or not isinstance(markup, dict):
            return
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")

    def _visible_text(self, text: str, parse_mode: Any, limit: int, what: str) -> str:
        """The text as Telegram shows it, refusing what Telegram refuses."""
        if parse_mode and str(parse_mode).upper() == "HTML":
            text = _parse_telegram_html(text) if self.strict else text
        if self.strict and not text.strip():
            raise ApiError(400, f"Bad Request: {what} is empty")
        if self.strict and _utf16_len(text) > limit:
            raise ApiError(400, f"Bad Request: {what} is too long")
        return text


# -- Bot API methods -------------------------------------------------------------------------
# Each takes the server and the call and returns the ``result``, or raises ApiError.


def _get_me(api: FakeBotApi, call: Call) -> dict[str, Any]:
    return {
        **api._bot_user(_bot_id(call.token)),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def _get_updates(api: FakeBotApi, call: Call) -> list[dict[str, Any]]:
    params = call.params
    offset = params.get("offset")
    limit = params.get("limit") or 100
    timeout = float(params.get("timeout") or 0)
    allowed = params.get("allowed_updates") or None
    deadline = time.monotonic() + timeout
    with api._cond:
        if api.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        # As on Telegram, a new getUpdates ends the one still waiting (that one gets 409). It is
        # usually a poll whose client went away, e.g. an Updater that was stopped.
        api._poll_generation += 1
        generation = api._poll_generation
        api._cond.notify_all()
        if isinstance(offset, int) and offset < 0:
            del api._updates[:offset]
        elif isinstance(offset, int) and offset > 0:
            api._updates[:] = [u for u in api._updates if u["update_id"] >= offset]
        while True:
            if generation != api._poll_generation:
                raise ApiError(409)
            ready = [
                update
                for update in api._updates
                if allowed is None or any(kind in update for kind in allowed)
            ][:limit]
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or api._stopping:
                return ready
            api._waiting_polls += 1
            api._cond.notify_all()
            try:
                api._cond.wait(remaining)
            finally:
                api._waiting_polls -= 1


def _send_message(api: FakeBotApi, call: Call) -> dict[str, Any]:
    params = call.params
    text = api._visible_text(
        str(params.get("text", "")), params.get("parse_mode"), MAX_TEXT_LENGTH, "message text"
    )
    api._check_markup(params.get("reply_markup"))
    with api._cond:
        message = api._new_message(call, text=text)
        api._message_sources[(params["chat_id"], message["message_id"])] = (
            params.get("text"),
            params.get("parse_mode"),
            message.get("reply_markup"),
        )
        return message


def _send_document(api: FakeBotApi, call: Call) -> dict[str, Any]:
    params = call.params
    document = _require(params, "document")
    caption = params.get("caption")
    with api._cond:
        number = next(api._file_ids)
        if isinstance(document, UploadedFile):
            file_id = f"DOC{number:06d}"
            api._files[file_id] = document
            payload = {
                "file_id": file_id,
                "file_unique_id": f"UDOC{number:06d}",
                "file_name": document.filename,
                "mime_type": document.content_type,
                "file_size": len(document.content),
            }
        else:  # a file_id or URL sent again
            payload = {"file_id": str(document), "file_unique_id": f"UDOC{number:06d}"}
    content: dict[str, Any] = {"document": payload}
    if caption:
        content["caption"] = api._visible_text(
            str(caption), params.get("parse_mode"), MAX_CAPTION_LENGTH, "message caption"
        )
    api._check_markup(params.get("reply_markup"))
    with api._cond:
        return api._new_message(call, **content)


def _edited(api: FakeBotApi, call: Call) -> tuple[tuple[Any, int], dict[str, Any]] | None:
    params = call.params
    if params.get("inline_message_id"):
        return None
    key = (_require(params, "chat_id"), _require(params, "message_id"))
    message = api._messages.get(key)
    if message is None:
        raise ApiError(400, "Bad Request: message to edit not found")
    if api.strict and not message.get("from", {}).get("is_bot", True):
        raise ApiError(400, "Bad Request: message can't be edited")
    return key, message


def _edit_message_text(api: FakeBotApi, call: Call) -> dict[str, Any] | bool:
    params = call.params
    text = api._visible_text(
        str(params.get("text", "")), params.get("parse_mode"), MAX_TEXT_LENGTH, "message text"
    )
    markup = params.get("reply_markup")
    api._check_markup(markup)
    with api._cond:
        found = _edited(api, call)
        if found is None:
            return True
        key, message = found
        source = (params.get("text"), params.get("parse_mode"), markup)
        if api.strict and api._message_sources.get(key) == source:
            raise ApiError(400, _NOT_MODIFIED)
        api._message_sources[key] = source
        message["text"] = text
        message["edit_date"] = int(time.time())
        # Telegram drops the inline keyboard of a message edited without reply_markup.
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message


def _edit_message_reply_markup(api: FakeBotApi, call: Call) -> dict[str, Any] | bool:
    markup = call.params.get("reply_markup")
    api._check_markup(markup)
    with api._cond:
        found = _edited(api, call)
        if found is None:
            return True
        key, message = found
        if api.strict and (message.get("reply_markup") or None) == (markup or None):
            raise ApiError(400, _NOT_MODIFIED)
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        source = api._message_sources.get(key)
        if source is not None:
            api._message_sources[key] = (*source[:2], markup)
        message["edit_date"] = int(time.time())
        return message


def _delete_message(api: FakeBotApi, call: Call) -> bool:
    key = (_require(call.params, "chat_id"), _require(call.params, "message_id"))
    with api._cond:
        if api._messages.pop(key, None) is None and api.strict:
            raise ApiError(400, "Bad Request: message to delete not found")
        api._message_sources.pop(key, None)
    return True


def _answer_callback_query(api: FakeBotApi, call: Call) -> bool:
    query_id = str(_require(call.params, "callback_query_id"))
    with api._cond:
        known = query_id in api._callback_ids
    if api.strict and not known:
        raise ApiError(
            400,
            "Bad Request: query is too old and response timeout expired or query ID is invalid",
        )
    return True


def _get_file(api: FakeBotApi, call: Call) -> dict[str, Any]:
    file_id = str(_require(call.params, "file_id"))
    with api._cond:
        uploaded = api._files.get(file_id)
    if uploaded is None:
        raise ApiError(400, "Bad Request: invalid file_id")
    return {
        "file_id": file_id,
        "file_unique_id": f"U{file_id}",
        "file_size": len(uploaded.content),
        "file_path": f"documents/{file_id}_{uploaded.filename}",
    }


def _set_webhook(api: FakeBotApi, call: Call) -> bool:
    with api._cond:
        api.webhook = {
            "url": str(_require(call.params, "url")),
            "secret_token": call.params.get("secret_token"),
            "allowed_updates": call.params.get("allowed_updates"),
            "max_connections": call.params.get("max_connections", 40),
        }
        if call.params.get("drop_pending_updates"):
            api._updates.clear()
        api._cond.notify_all()
    return True


def _delete_webhook(api: FakeBotApi, call: Call) -> bool:
    with api._cond:
        api.webhook = {}
        if call.params.get("drop_pending_updates"):
            api._updates.clear()
    return True


def _get_webhook_info(api: FakeBotApi, call: Call) -> dict[str, Any]:
    with api._cond:
        info: dict[str, Any] = {
            "url": api.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(api._updates),
        }
        if api.webhook:
            info["max_connections"] = api.webhook.get("max_connections", 40)
            if api.webhook.get("allowed_updates"):
                info["allowed_updates"] = api.webhook["allowed_updates"]
        return info


def _commands_key(params: Mapping[str, Any]) -> str:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps([scope, params.get("language_code") or ""], sort_keys=True)


def _set_my_commands(api: FakeBotApi, call: Call) -> bool:
    with api._cond:
        api.commands[_commands_key(call.params)] = list(_require(call.params, "commands"))
    return True


def _delete_my_commands(api: FakeBotApi, call: Call) -> bool:
    with api._cond:
        api.commands.pop(_commands_key(call.params), None)
    return True


def _get_my_commands(api: FakeBotApi, call: Call) -> list[dict[str, Any]]:
    with api._cond:
        return list(api.commands.get(_commands_key(call.params), []))


def _true(api: FakeBotApi, call: Call) -> bool:
    return True


_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)

_METHODS = {
    "getMe": _get_me,
    "getUpdates": _get_updates,
    "sendMessage": _send_message,
    "sendDocument": _send_document,
    "editMessageText": _edit_message_text,
    "editMessageReplyMarkup": _edit_message_reply_markup,
    "deleteMessage": _delete_message,
    "answerCallbackQuery": _answer_callback_query,
    "getFile": _get_file,
    "setWebhook": _set_webhook,
    "deleteWebhook": _delete_webhook,
    "getWebhookInfo": _get_webhook_info,
    "setMyCommands": _set_my_commands,
    "deleteMyCommands": _delete_my_commands,
    "getMyCommands": _get_my_commands,
    "sendChatAction": _true,
    "setChatMenuButton": _true,
    "setMyDescription": _true,
    "setMyShortDescription": _true,
    "setMyName": _true,
    "close": _true,
    "logOut": _true,
}
_CANONICAL = {name.lower(): name for name in _METHODS}


# -- helpers ---------------------------------------------------------------------------------


def _require(params: Mapping[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise ApiError(400, f"Bad Request: {name} is empty")
    return value


def _bot_id(token: str) -> int:
    # A real token starts with the bot's id: "123456:ABC...".
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else DEFAULT_BOT_ID


def _utf16_len(text: str) -> int:
    # Telegram counts lengths and entity offsets in UTF-16 code units.
    return len(text.encode("utf-16-le")) // 2


class _TelegramHtml(html.parser.HTMLParser):
    """Extracts the visible text of a Telegram HTML message, failing where Telegram fails."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TELEGRAM_HTML_TAGS:
            raise ApiError(
                400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"'
            )
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            expected = f'"</{self.open[-1]}>"' if self.open else "no end tag"
            raise ApiError(
                400,
                f"Bad Request: can't parse entities: Unmatched end tag, expected {expected}, "
                f'found "</{tag}>"',
            )
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _parse_telegram_html(text: str) -> str:
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.open:
        raise ApiError(
            400,
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag "
            f'"{parser.open[-1]}"',
        )
    return "".join(parser.parts)


def _decode_value(name: str, value: str) -> Any:
    """Undo PTB's form encoding: it JSON-encodes every parameter that is not a string."""
    if name in _TEXT_PARAMS:
        return value
    if value[:1] in ("{", "["):
        with contextlib.suppress(ValueError):
            return json.loads(value)
    if name in _INT_PARAMS and re.fullmatch(r"-?\d+", value):
        return int(value)
    if value in _BOOL_WORDS:
        return _BOOL_WORDS[value]
    return value


def _normalise_json(params: dict[str, Any]) -> dict[str, Any]:
    # In a JSON body, ids may still be strings ("chat_id": "42"); compare them as ints.
    for name in _INT_PARAMS & params.keys():
        value = params[name]
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            params[name] = int(value)
    return params


_DISPOSITION_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], list[UploadedFile]]:
    """A small multipart/form-data parser (httpx's flavour: UTF-8 names, HTML5 escapes)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ApiError(400, "Bad Request: multipart body without boundary")
    delimiter = b"--" + match.group(1).encode()
    fields: dict[str, str] = {}
    files: list[UploadedFile] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition: dict[str, str] = {}
        for key, raw in _DISPOSITION_PARAM.findall(headers.get("content-disposition", "")):
            if raw.startswith('"'):
                raw = raw[1:-1].replace("%22", '"').replace("\\\\", "\\")
            disposition[key.lower()] = raw
        name = disposition.get("name", "")
        if "filename" in disposition:
            files.append(
                UploadedFile(
                    field=name,
                    filename=disposition["filename"],
                    content=content,
                    content_type=headers.get("content-type", "application/octet-stream"),
                )
            )
        else:
            fields[name] = content.decode("utf-8")
    return fields, files


class _HttpServer(ThreadingHTTPServer):
    # Handler threads are joined by server_close() (daemon threads would not be), so that a
    # stopped server has left no thread behind.
    daemon_threads = False
    block_on_close = True
    # A sender opens dozens of connections at once; the default backlog of 5 resets some.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, *, api: FakeBotApi) -> None:
        self.api = api
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a cancelled long poll) is normal; anything else is a bug here.
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects from Telegram
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without NODELAY, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.api._cond:
            if self.server.api._stopping:
                # Accepted just before stop(): refuse it rather than leave it unjoinable.
                self.connection.shutdown(socket.SHUT_RDWR)
            else:
                self.server.api._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.api._cond:
            self.server.api._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the calls list is the log

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        file_match = re.fullmatch(r"/file/bot([^/]*)/(.+)", url.path)
        if file_match:
            uploaded = self.server.api._file(unquote(file_match.group(2)))
            if uploaded is None:
                self._reply(404, ApiError(404).body())
            else:
                self._reply_bytes(200, uploaded.content, uploaded.content_type)
            return
        match = re.fullmatch(r"/bot([^/]*)/(\w+)", url.path)
        if match is None:
            self._reply(404, ApiError(404).body())
            return
        try:
            params, files = self._params(url.query, body)
        except ApiError as error:
            self._reply(error.status, error.body())
            return
        status, payload, _ = self.server.api._handle(
            unquote(match.group(1)), match.group(2), params, files
        )
        self._reply(status, payload)

    def _params(self, query: str, body: bytes) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        content_type = self.headers.get("Content-Type", "")
        raw: dict[str, str] = dict(parse_qsl(query, keep_blank_values=True))
        files: dict[str, UploadedFile] = {}
        if content_type.startswith("application/json"):
            try:
                decoded = json.loads(body or b"{}")
            except ValueError as error:
                raise ApiError(400, "Bad Request: invalid JSON body") from error
            params = {name: _decode_value(name, value) for name, value in raw.items()}
            params.update(decoded)
            return _normalise_json(params), files
        if content_type.startswith("multipart/form-data"):
            fields, uploads = _parse_multipart(content_type, body)
            raw.update(fields)
            files = {upload.field: upload for upload in uploads}
        elif body:
            raw.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        params: dict[str, Any] = {name: _decode_value(name, value) for name, value in raw.items()}
        params.update(files)
        return params, files

    def _reply(self, status: int, payload: Mapping[str, Any]) -> None:
        self._reply_bytes(status, json.dumps(payload).encode(), "application/json")

    def _reply_bytes(self, status: int, content: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)
        except OSError:
            # The client gave up (e.g. a long poll cancelled by Updater.stop()).
            self.close_connection = True
