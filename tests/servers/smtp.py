"""A local SMTP server (aiosmtpd) for tests of Palabre's mail sending.

The mailer under test connects with aiosmtplib to 127.0.0.1 like it would to a relay, and the
test asserts on what arrived: envelope sender and recipients, the exact bytes, the parsed
message. The server can also misbehave the ways a relay does, so that retry and bounce handling
is tested against real SMTP replies rather than mocks:

- ``fail_next(451, at="RCPT")``: a temporary refusal (retry later);
- ``fail_next(550, at="RCPT", recipient=...)``: a permanent one (mark the address bounced);
- ``fail_next(421, ...)``: the reply is sent, then the server closes the connection;
- ``drop_next()``: the connection is cut after the message data arrived, before the reply,
  which is the case where the client cannot know whether the message was delivered.

``connections_opened`` counts TCP connections, so that a test can check the mailer reuses one
connection for many messages.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session

__all__ = ["ReceivedMessage", "SmtpServer"]

Stage = Literal["MAIL", "RCPT", "DATA"]

# Enhanced status texts as common relays (Postfix) phrase them.
DEFAULT_REPLIES = {
    421: "4.3.2 Service shutting down, closing transmission channel",
    450: "4.2.0 Mailbox unavailable, try again later",
    451: "4.3.0 Temporary failure, try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.1.1 Recipient address rejected: User unknown",
    552: "5.3.4 Message size exceeds fixed limit",
    554: "5.7.1 Transaction failed",
}


@dataclass(frozen=True)
class ReceivedMessage:
    """One message accepted by the server."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    mail_options: tuple[str, ...]
    connection: int  # 1 for the first connection the server accepted, 2 for the next...

    def __getitem__(self, header: str) -> Any:
        """Shortcut for ``received.message[header]``."""
        return self.message[header]


@dataclass
class _Rule:
    stage: Stage
    remaining: int
    code: int | None = None  # None: drop the connection
    message: str = ""
    recipient: str | None = None

    def applies(self, stage: Stage, recipients: list[str] | tuple[str, ...]) -> bool:
        if stage != self.stage:
            return False
        return self.recipient is None or self.recipient.lower() in (r.lower() for r in recipients)


class SmtpServer:
    """An SMTP server on 127.0.0.1 with a free port, running in its own thread.

    Use as a context manager or call ``start()`` / ``stop()``. Thread-safe: the server runs
    its own event loop in a thread, so it works the same from sync and async tests.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._cond = threading.Condition()
        self._controller: _Controller | None = None
        self._messages: list[ReceivedMessage] = []
        self._rules: list[_Rule] = []
        self._connections_opened = 0
        self._live: set[_CountingSMTP] = set()
        self._accepting = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> SmtpServer:
        if self._controller is not None:
            raise RuntimeError("SmtpServer is already running")
        controller = _Controller(_Handler(self), hostname=self.host, port=0)
        controller.start()
        self._controller = controller
        # The controller opened one connection of its own to check the server is up; from now
        # on, connections come from the code under test.
        with self._cond:
            self._accepting = True
        return self

    def stop(self) -> None:
        controller = self._controller
        if controller is None:
            return
        with self._cond:
            self._accepting = False
        controller.stop()
        self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("SmtpServer is not running")
        return self._controller.port

    # -- what arrived ----------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._cond:
            return list(self._messages)

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since start (or the last ``clear()``)."""
        with self._cond:
            return self._connections_opened

    @property
    def connections_open(self) -> int:
        """Connections currently open."""
        with self._cond:
            return sum(1 for smtp in self._live if smtp.counted)

    def clear(self) -> None:
        """Forget received messages and connection counts (pending failures are kept)."""
        with self._cond:
            self._messages.clear()
            self._connections_opened = 0

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"waited {timeout}s for {count} message(s), got {len(self._messages)}"
                    )
                self._cond.wait(remaining)
            return list(self._messages)

    async def awaiting(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        """``wait_for`` for async tests."""
        return await asyncio.to_thread(self.wait_for, count, timeout)

    # -- misbehaving -----------------------------------------------------------------------

    def fail_next(
        self,
        code: int,
        times: int = 1,
        *,
        at: Stage = "DATA",
        message: str | None = None,
        recipient: str | None = None,
    ) -> None:
        """Answer ``code`` at the given stage of the next ``times`` transactions.

        At RCPT the refused recipient is not added to the envelope (with ``recipient``, only
        that address is refused). A 421 closes the connection after the reply, as servers do.
        """
        if at not in ("MAIL", "RCPT", "DATA"):
            raise ValueError(f"at must be MAIL, RCPT or DATA, not {at!r}")
        text = message if message is not None else DEFAULT_REPLIES.get(code, "Error")
        with self._cond:
            self._rules.append(_Rule(at, times, code, text, recipient))

    def drop_next(self, times: int = 1, *, at: Stage = "DATA") -> None:
        """Cut the connection (abort the transport, no reply) at the given stage.

        At DATA the cut comes after the whole message was received: the client gets no
        final reply and the message is not recorded.
        """
        with self._cond:
            self._rules.append(_Rule(at, times))

    # -- called from the server thread -----------------------------------------------------

    def _take_rule(self, stage: Stage, recipients: list[str] | tuple[str, ...]) -> _Rule | None:
        with self._cond:
            for rule in self._rules:
                if rule.applies(stage, recipients):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    def _opened(self, smtp: _CountingSMTP) -> None:
        with self._cond:
            self._live.add(smtp)
            if self._accepting:
                self._connections_opened += 1
                smtp.counted = True
                smtp.number = self._connections_opened

    def _closed(self, smtp: _CountingSMTP) -> None:
        with self._cond:
            self._live.discard(smtp)

    def _received(self, smtp: SMTP, envelope: Envelope) -> None:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        received = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            message=parsed,
            mail_options=tuple(envelope.mail_options),
            connection=getattr(smtp, "number", 0),
        )
        with self._cond:
            self._messages.append(received)
            self._cond.notify_all()


class _CountingSMTP(SMTP):
    """aiosmtpd's SMTP protocol, reporting each connection to the SmtpServer."""

    counted = False
    number = 0

    def __init__(self, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._owner = handler.server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._owner._opened(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._owner._closed(self)
        super().connection_lost(error)


class _Handler:
    """aiosmtpd handler hooks; returning MISSING keeps aiosmtpd's default behaviour."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def _apply(self, smtp: SMTP, rule: _Rule | None) -> Any:
        if rule is None:
            return MISSING
        if rule.code is None:
            assert smtp.transport is not None
            smtp.transport.abort()
            # connection_lost() cancels this handler task; wait for it so no reply is written.
            await asyncio.Event().wait()
        if rule.code == 421:
            # Send the reply first (aiosmtpd writes it when we return), then hang up.
            transport = smtp.transport
            asyncio.get_running_loop().call_soon(lambda: transport and transport.close())
        return f"{rule.code} {rule.message}"

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> Any:
        return await self._apply(smtp, self.server._take_rule("MAIL", []))

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> Any:
        return await self._apply(smtp, self.server._take_rule("RCPT", [address]))

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> Any:
        status = await self._apply(smtp, self.server._take_rule("DATA", envelope.rcpt_tos))
        if status is MISSING:
            self.server._received(smtp, envelope)
            return "250 2.0.0 OK: queued"
        return status


class _Controller(Controller):
    """aiosmtpd's threaded controller, bound to a port chosen by the OS (port 0)."""

    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # Learn the real port before the controller connects to check that the server is up.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
