"""The IMAP poller: reads the reply mailbox and hands each new message to `mailer.replies`.

Each poll runs `UID SEARCH UNSEEN`, then, batch after batch until none is left, fetches up to
`BATCH` messages in one `UID FETCH … BODY.PEEK[]` (which leaves them unseen), handles each, and
only then flags the batch `\\Seen` in one `UID STORE`. A crash between the two leaves the message
unseen: the next poll reads it again, and its Message-ID, recorded in the same transaction as
its effects, makes the second reading a no-op. When the server drops the connection, the poller
reconnects with exponential backoff (tenacity).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import ssl

import aioimaplib
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from mailer import replies
from mailer.config import MailConfig
from models.db import Database

logger = logging.getLogger(__name__)

# UIDs fetched in one `UID FETCH` command; `poll_once` goes on batch after batch until every
# unseen message is handled.
BATCH = 100
RECONNECT_ATTEMPTS = 5


class ImapError(Exception):
    """The IMAP server refused a command or went away."""


def _fetched_messages(lines: list) -> list[tuple[int, bytes]]:
    """(UID, message bytes) for each message of a multi-UID `UID FETCH ... BODY.PEEK[]` answer."""
    found: list[tuple[int, bytes]] = []
    for announce, literal in itertools.pairwise(lines):
        if not isinstance(literal, bytearray) or isinstance(announce, bytearray):
            continue
        head = bytes(announce) if not isinstance(announce, str) else announce.encode()
        match = re.search(rb"\bUID (\d+)", head, re.I)
        if match is not None and b"BODY[]" in head.upper():
            found.append((int(match.group(1)), bytes(literal)))
    return found


class ImapPoller:
    """Polls `PALABRE_IMAP_MAILBOX`: `await poll_once()` handles what is new; `run(stop)` loops."""

    def __init__(self, config: MailConfig, database: Database) -> None:
        self.config = config
        self.database = database
        self.client: aioimaplib.IMAP4 | None = None
        self.connections = 0

    # -- connection ------------------------------------------------------------------------

    async def connect(self) -> aioimaplib.IMAP4:
        config = self.config
        if not config.imap_host or not config.imap_username:
            raise ImapError("PALABRE_IMAP_HOST and PALABRE_IMAP_USERNAME are not set")
        await self.disconnect()
        timeout = max(10.0, config.smtp_timeout)
        if config.imap_security == "tls":
            client = aioimaplib.IMAP4_SSL(
                host=config.imap_host, port=config.imap_port, timeout=timeout
            )
        else:
            client = aioimaplib.IMAP4(host=config.imap_host, port=config.imap_port, timeout=timeout)
        client.protocol.conn_lost_cb = lambda _exc, client=client: _connection_lost(client)
        try:
            await client.wait_hello_from_server()
            if config.imap_security == "starttls":
                await _starttls(client, config.imap_host)
            password = config.imap_password.get_secret_value() if config.imap_password else ""
            response = await client.login(config.imap_username, password)
            if response.result != "OK":
                raise ImapError("the IMAP server refused the login")
            response = await client.select(config.imap_mailbox)
            if response.result != "OK":
                raise ImapError(f"cannot open the mailbox {config.imap_mailbox!r}")
        except BaseException:
            await _abandon(client)
            raise
        self.client = client
        self.connections += 1
        return client

    async def disconnect(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        transport = client.protocol.transport if client.protocol is not None else None
        if client.get_state() != "LOGOUT" and transport is not None and not transport.is_closing():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.logout(), timeout=2)
        await _abandon(client)

    # -- polling ---------------------------------------------------------------------------

    async def poll_once(self) -> int:
        """Handle every unseen message now; returns how many were new (not redeliveries).

        A dropped connection is retried a few times with backoff before the error is raised.
        """
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((ImapError, OSError, TimeoutError)),
            wait=wait_exponential(multiplier=0.2, max=10),
            stop=stop_after_attempt(RECONNECT_ATTEMPTS),
            reraise=True,
        ):
            with attempt:
                try:
                    return await self._poll()
                except (ImapError, OSError, TimeoutError, aioimaplib.AioImapException) as exc:
                    logger.info("IMAP poll failed (%s); reconnecting", type(exc).__name__)
                    await self.disconnect()
                    if isinstance(exc, aioimaplib.AioImapException):
                        raise ImapError(f"{type(exc).__name__}: {exc}") from exc
                    raise
        return 0  # pragma: no cover (AsyncRetrying either returns or raises)

    async def _poll(self) -> int:
        client = self.client if self._alive() else await self.connect()
        assert client is not None
        # On a connection kept open, the server reports messages that arrived since the last
        # command only at the next one: NOOP first, so that SEARCH sees them.
        noop = await client.noop()
        if noop.result != "OK":
            raise ImapError(f"NOOP failed: {noop.result}")
        search = await client.uid_search("UNSEEN")
        if search.result != "OK":
            raise ImapError(f"UID SEARCH failed: {search.result}")
        uids = _uids(search.lines)
        handled = 0
        for start in range(0, len(uids), BATCH):
            handled += await self._batch(client, uids[start : start + BATCH])
        return handled

    async def _batch(self, client: aioimaplib.IMAP4, uids: list[int]) -> int:
        """Fetch `uids` in one command, act on them in one transaction (a savepoint each), then,
        once it is committed, flag them all `\\Seen`."""
        wanted = ",".join(str(uid) for uid in uids)
        fetch = await client.uid("fetch", wanted, "(BODY.PEEK[])")
        if fetch.result != "OK":
            raise ImapError(f"UID FETCH failed: {fetch.result}")
        # A UID missing from the answer was expunged by someone else between SEARCH and FETCH.
        fetched = _fetched_messages(fetch.lines)
        outcomes = await replies.handle_batch(
            config=self.config, database=self.database, raws=[raw for _, raw in fetched]
        )
        handled = sum(outcome.status != "duplicate" for outcome in outcomes)
        done = [uid for uid, _ in fetched]
        if done:
            seen = ",".join(str(uid) for uid in done)
            store = await client.uid("store", seen, "+FLAGS", "(\\Seen)")
            if store.result != "OK":
                raise ImapError(f"UID STORE failed: {store.result}")
        return handled

    def _alive(self) -> bool:
        client = self.client
        if client is None or client.protocol is None:
            return False
        return (
            client.get_state() == "SELECTED"
            and client.protocol.transport is not None
            and (not client.protocol.transport.is_closing())
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `PALABRE_IMAP_POLL_SECONDS` until `stop` is set; survive server outages."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    await self.poll_once()
                    failures = 0
                    delay = self.config.imap_poll_seconds
                except Exception as exc:
                    failures += 1
                    delay = min(300.0, self.config.imap_poll_seconds * 2 ** min(failures, 5))
                    logger.warning(
                        "IMAP polling failed (%s); next try in %.0f s", type(exc).__name__, delay
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        finally:
            await self.disconnect()


def _uids(lines: list) -> list[int]:
    found: list[int] = []
    for line in lines:
        text = bytes(line).decode("ascii", errors="ignore") if not isinstance(line, str) else line
        if re.fullmatch(r"[\d ]+", text.strip() or "x"):
            found.extend(int(value) for value in text.split())
    return sorted(set(found))


async def _starttls(client: aioimaplib.IMAP4, host: str) -> None:
    """Upgrade a plain connection (aioimaplib has no STARTTLS of its own)."""
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError("the IMAP server does not offer STARTTLS")
    response = await asyncio.wait_for(protocol.simple_command("STARTTLS"), client.timeout)
    if response.result != "OK":
        raise ImapError("the IMAP server refused STARTTLS")
    loop = asyncio.get_running_loop()
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    transport = await loop.start_tls(protocol.transport, protocol, context, server_hostname=host)
    protocol.transport = transport
    # Capabilities change after TLS (RFC 3501, 6.2.1): ask again.
    await asyncio.wait_for(protocol.capability(), client.timeout)


def _connection_lost(client: aioimaplib.IMAP4) -> None:
    """The server went away: end the commands waiting for an answer instead of timing out."""
    protocol = client.protocol
    pending = [protocol.pending_sync_command, *protocol.pending_async_commands.values()]
    for command in pending:
        if command is not None:
            command.close(b"connection lost", "BYE")
    protocol.pending_sync_command = None
    protocol.pending_async_commands.clear()
    protocol.state = "LOGOUT"


async def _abandon(client: aioimaplib.IMAP4) -> None:
    """Close the socket of a client we no longer use, whatever state it is in."""
    protocol = getattr(client, "protocol", None)
    transport = getattr(protocol, "transport", None)
    if transport is not None and not transport.is_closing():
        transport.close()
    task = getattr(client, "_client_task", None)
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
