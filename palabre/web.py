"""The small web server `palabre serve` runs behind the reverse proxy: one-click unsubscribe.

Every email carries `List-Unsubscribe: <mailto:...>, <PUBLIC_URL/email/unsubscribe/TOKEN>` and,
on https, `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058). This module answers
that URL:

- `GET /email/unsubscribe/<token>` tells the person, in their language, what unsubscribing does,
  with a button. A GET never changes anything: link scanners and previews follow every link.
- `POST /email/unsubscribe/<token>` unsubscribes at once (`preferences.opt_out`, the same STOP as
  on every channel), as a mailbox provider sends it on the person's behalf: no cookie, no
  confirmation. Repeating it changes nothing.
- `GET /healthz` answers "ok", for the proxy.

The token is `<reply key>.<HMAC signature>` (`mailer.tokens`): it is trusted only when its
signature matches AND its key names someone present in the database. Anything else gets the same
404 page, in French and English, since we do not know who reads it. The token is a credential:
no log line shows it (the access log masks it), and the pages go out with
`Referrer-Policy: no-referrer` and `Cache-Control: no-store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, NoReturn

from markupsafe import Markup
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, HTTPError, RequestHandler

from consultation import preferences
from consultation.common import get_consultation
from consultation.errors import UserError
from mailer import tokens
from models import Channel, Participant
from models.db import Database
from palabre.settings import Settings
from templates.i18n import LOCALES, normalize_locale
from templates.render import render

logger = logging.getLogger(__name__)

# How long the requests in flight get to finish (and commit) once the service stops.
GRACE_SECONDS = 10.0
# A one-click POST body is `List-Unsubscribe=One-Click`; nothing we serve needs more.
MAX_BODY_BYTES = 16 * 1024
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
}
_TOKEN_IN_PATH = re.compile(r"(unsubscribe/)[^/?#]*", re.IGNORECASE)


def shown_path(path: str) -> str:
    """A request path fit for a log: the unsubscribe token masked, the length capped."""
    return _TOKEN_IN_PATH.sub(r"\1…", path)[:200]


def error_page(status: int) -> str:
    """The page for a link we cannot honour, in every language: we do not know the reader."""
    # Each section comes out of an autoescaped template: it is HTML already, and safe.
    sections = [
        (locale, Markup(render("web/error.html", {"status": status}, locale)))  # noqa: S704
        for locale in LOCALES
    ]
    return render("web/error_page.html", {"sections": sections}, LOCALES[0])


async def _person(session: AsyncSession, key: str | None, *, lock: bool) -> Participant | None:
    """The participant a verified key names, if they are still known to Palabre."""
    if key is None:
        return None
    query = select(Participant).where(Participant.reply_key == key)
    if lock:
        # Two clicks at once (the mailbox's one-click and the person's button) record one STOP.
        query = query.with_for_update()
    person = (await session.exec(query)).first()
    if person is None or person.erased_at is not None:
        return None
    return person


async def _page_context(session: AsyncSession, person: Participant, **extra: Any) -> dict:
    consultation = await get_consultation(session=session, consultation_id=person.consultation_id)
    return {"consultation": {"title": consultation.title}, **extra}


class Page(RequestHandler):
    """What every answer shares: the server's state, safe headers, errors as pages, quiet logs."""

    def initialize(self, web: WebServer) -> None:
        self.web = web

    def set_default_headers(self) -> None:
        self.clear_header("Server")
        for name, value in PAGE_HEADERS.items():
            self.set_header(name, value)

    def compute_etag(self) -> None:
        return None  # personal pages, never cached

    def page(self, name: str, context: dict[str, Any], locale: str) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(render(f"web/{name}.html", context, locale))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(error_page(status_code))

    def _request_summary(self) -> str:
        return f"{self.request.method} {shown_path(self.request.path)}"

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(value, HTTPError):
            super().log_exception(typ, value, tb)  # its summary is ours: no token
            return
        # Tornado's own message would print the whole request, the token in its URI.
        logger.error("failed to answer %s", self._request_summary(), exc_info=(typ, value, tb))


class Unsubscribe(Page):
    """`/email/unsubscribe/<token>`: what unsubscribing does (GET), and doing it (POST)."""

    def key(self, token: str) -> str | None:
        key = tokens.verify_unsubscribe_token(self.web.mail, token)
        if key is None:
            logger.info("refused an unsubscribe link whose signature does not match")
        return key

    def refuse(self, key: str | None) -> NoReturn:
        if key is not None:
            logger.info("refused an unsubscribe link whose key names no one")
        raise HTTPError(404)

    async def get(self, token: str) -> None:
        """The page with the button; nothing changes."""
        key = self.key(token)
        async with self.web.working(), self.web.database.session() as session:
            person = await _person(session, key, lock=False)
            if person is None:
                self.refuse(key)
            context = await _page_context(session, person, already=person.opted_out_at is not None)
        self.page("unsubscribe", context, normalize_locale(person.locale))

    async def post(self, token: str) -> None:
        """One-click unsubscription (RFC 8058): STOP on every channel, at once, repeatable.

        The body (`List-Unsubscribe=One-Click`) is not required: the signed token is what
        authorises, and no link scanner sends a POST.
        """
        key = self.key(token)
        async with self.web.working(), self.web.database.session() as session:
            person = await _person(session, key, lock=True)
            if person is None:
                self.refuse(key)
            already = person.opted_out_at is not None
            await preferences.opt_out(session=session, participant=person, channel=Channel.EMAIL)
            context = await _page_context(session, person)
        if already:
            logger.info("participant %s, already unsubscribed, used the link again", person.id)
        else:
            logger.info("participant %s unsubscribed with the one-click link", person.id)
        self.page("unsubscribed", context, normalize_locale(person.locale))


class Health(Page):
    """`/healthz`: the process is up and answering."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish("ok")

    def head(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish()


class Missing(Page):
    """Any other path: the 404 page."""

    def prepare(self) -> None:
        raise HTTPError(404)


def _log_request(handler: RequestHandler) -> None:
    """The access log, at debug level (the proxy keeps its own), without the token."""
    status = handler.get_status()
    logger.log(
        logging.WARNING if status >= 500 else logging.DEBUG,
        "%d %s %s %.0f ms",
        status,
        handler.request.method,
        shown_path(handler.request.path),
        1000.0 * handler.request.request_time(),
    )


class WebServer:
    """The HTTP server: bound by `start()`, serving until `run(stop)` sees `stop` set."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.settings = settings
        self.mail = settings.mail_config()
        self.database = database
        self.host = host if host is not None else settings.http_host
        self.port = port if port is not None else settings.http_port
        self.server: HTTPServer | None = None
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        web = {"web": self}
        self.application = Application(
            [
                (r"/healthz", Health, web),
                (r"/email/unsubscribe/([^/]+)/?", Unsubscribe, web),
            ],
            default_handler_class=Missing,
            default_handler_args=web,
            log_function=_log_request,
        )

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Listen now, so that a port already taken stops `palabre serve` with one clear line."""
        if self.port is None:
            raise ValueError("no port to listen on (PALABRE_HTTP_PORT)")
        try:
            sockets = bind_sockets(self.port, address=self.host)
        except OSError as exc:
            raise UserError(
                "web.cannot_listen", host=self.host, port=self.port, reason=exc.strerror or str(exc)
            ) from exc
        self.server = HTTPServer(
            self.application,
            max_body_size=MAX_BODY_BYTES,
            body_timeout=30,
            idle_connection_timeout=60,
        )
        self.server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]  # the one chosen, when asked for port 0
        logger.info("web server listening on %s", self.url)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then close."""
        try:
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Take no new connection, let the requests in flight commit, close the connections."""
        server, self.server = self.server, None
        if server is None:
            return
        server.stop()
        try:
            await asyncio.wait_for(self._idle.wait(), GRACE_SECONDS)
        except TimeoutError:
            logger.warning("web requests still running after %.0f s: cut", GRACE_SECONDS)
        await server.close_all_connections()
        logger.info("web server stopped")

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        """Count a request's database work, so that `close` waits for it."""
        self.in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()
