"""The Telegram sender: drains the telegram channel of the outbox within Telegram's limits.

- At most `BotConfig.rate` messages a second overall (Telegram allows about 30) and one a
  second per chat, as Telegram sees them whatever the network does (see `RateLimiter`).
- 429 (flood control): every send pauses for `retry_after`, and the message is retried after it
  without counting an attempt.
- 403 (the person blocked the bot): their Telegram is marked inactive and the message is sent
  again by email when they have an address.
- 400: a dead letter, its error kept for the coordinators (it is a bug to fix, not to retry).
- Network errors and 5xx: retried with exponential backoff.
- A text over 4,096 characters goes as several messages, cut at paragraph boundaries.
- Messages that are not `interactive` wait for the end of the consultation's quiet hours
  (`outbox.enqueue` already schedules them so; this catches those left over at nightfall).

Each message is claimed (a lease), sent, and settled in its own short transaction, so a crash
neither loses nor repeats it (beyond the one in flight); a stop finishes the sends in flight and
gives the rest of the batch back at once.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import math
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from bot.config import BotConfig
from bot.keyboards import outbox_keyboard
from bot.redact import redact
from bot.text import render_html, split_message
from consultation import clock, outbox
from consultation.common import get_consultation
from models import Channel, EmailStatus, OutboxMessage, Participant
from models.db import Database
from templates.i18n import normalize_locale
from templates.render import message_context

logger = logging.getLogger(__name__)

PER_CHAT_INTERVAL = 1.0
IDLE_POLL = 1.0
STOPPED = "released at shutdown"
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def retry_seconds(error: RetryAfter) -> float:
    """`retry_after` in seconds, whichever type PTB gives (int now, timedelta in PTB 23)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass
class Job:
    """One claimed message, rendered and ready to go."""

    message_id: int
    chat_id: int
    parts: list[str]
    keyboard: InlineKeyboardMarkup | None
    participant_id: int
    sent_ids: list[int] = field(default_factory=list)


class RateLimiter:
    """At most `rate` sends in any second overall, one a second per chat, and a global pause.

    A send holds one of `capacity` slots; a slot comes free one window after the send that held
    it *completed*. A request reaches Telegram before its answer comes back, so two requests
    that used the same slot arrive at least a window apart, however the network delays them:
    Telegram never sees more than `capacity` requests in a window. The same rule, with one slot
    per chat, keeps each chat at one message a second. The price is a little throughput (each
    slot also waits out the request's own latency), which the margin to Telegram's 30/s covers.
    """

    def __init__(self, rate: float) -> None:
        self.capacity = max(1, math.floor(rate))
        self.window = self.capacity / rate
        self._free_at: list[float] = [0.0] * self.capacity  # sorted; slots in use are absent
        self._chat_free_at: dict[int, float] = {}
        self._paused_until = 0.0
        self._changed = asyncio.Condition()

    def pause(self, seconds: float) -> None:
        """Telegram said 429: nobody sends until `seconds` have passed."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    @contextlib.asynccontextmanager
    async def slot(self, chat_id: int) -> AsyncIterator[None]:
        """Wait for the right to send to `chat_id`; held for the duration of the request."""
        chat_free = self._chat_free_at.get(chat_id, 0.0) - time.monotonic()
        if chat_free > 0:
            await asyncio.sleep(chat_free)
        async with self._changed:
            while True:
                now = time.monotonic()
                ready = max(self._paused_until, self._free_at[0] if self._free_at else math.inf)
                if ready <= now:
                    break
                timeout = None if ready == math.inf else ready - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout)
            self._free_at.pop(0)
        try:
            yield
        finally:
            done = time.monotonic()
            self._chat_free_at[chat_id] = done + PER_CHAT_INTERVAL
            if len(self._chat_free_at) > 10_000:
                self._chat_free_at = {c: t for c, t in self._chat_free_at.items() if t > done}
            async with self._changed:
                bisect.insort(self._free_at, done + self.window)
                self._changed.notify_all()


class TelegramSender:
    """Drains the telegram channel of the outbox; `run(stop)` until `stop` is set."""

    def __init__(
        self,
        bot: Bot,
        database: Database,
        config: BotConfig,
        *,
        rate: float | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.bot = bot
        self.database = database
        # `rate` overrides the configured one (a local Bot API server has no 30/s limit).
        self.rate = rate or config.rate
        self.limiter = RateLimiter(self.rate)
        self.batch_size = batch_size or max(10, math.ceil(self.rate * 2))
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wake(self) -> None:
        """Look at the outbox now (a handler just enqueued something)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; the sends in flight then finish, the rest are given back."""
        self._stop = stop
        failures = 0
        logger.info("telegram sender started (%s messages/s)", self.rate)
        while not stop.is_set():
            try:
                handled = await self.drain_once()
                failures = 0
            except Exception:
                failures += 1
                logger.exception("telegram sender: draining the outbox failed")
                handled = 0
                await self._idle(min(60.0, 2.0**failures))
                continue
            if handled == 0:
                await self._idle(IDLE_POLL)
        logger.info("telegram sender stopped")

    async def _idle(self, seconds: float) -> None:
        self._wake.clear()
        waiters = [
            asyncio.ensure_future(self._stop.wait()),
            asyncio.ensure_future(self._wake.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def drain_once(self) -> int:
        """Claim one batch of due messages and settle each; returns how many were handled."""
        if self.stopping:
            return 0
        async with self.database.session() as session:
            claimed = await outbox.claim(
                session=session, channel=Channel.TELEGRAM, limit=self.batch_size
            )
            jobs: list[Job] = []
            later: list[tuple[OutboxMessage, str, Any]] = []
            for message in claimed:
                outcome = await self._prepare(session, message)
                if isinstance(outcome, Job):
                    jobs.append(outcome)
                else:
                    later.append((message, *outcome))
        for message, action, argument in later:
            await self._settle_unsendable(message, action, argument)
        by_chat: dict[int, list[Job]] = {}
        for job in jobs:
            by_chat.setdefault(job.chat_id, []).append(job)
        results = await asyncio.gather(
            *(self._send_chat(chat_jobs) for chat_jobs in by_chat.values())
        )
        return sum(results) + len(later)

    async def _prepare(self, session: Any, message: OutboxMessage) -> Job | tuple[str, Any]:
        """Render a claimed message, or say why it cannot go by Telegram now."""
        participant = (
            await session.get(Participant, message.participant_id)
            if message.participant_id is not None
            else None
        )
        if participant is None or not participant.reachable:
            return ("cancel", "the recipient is no longer reachable")
        if participant.telegram_chat_id is None or not participant.telegram_active:
            return ("email", "the recipient has no active Telegram chat")
        consultation = (
            await get_consultation(session=session, consultation_id=message.consultation_id)
            if message.consultation_id is not None
            else None
        )
        if not message.interactive:
            until = outbox.quiet_until(consultation, clock.now()) if consultation else None
            if until is not None:
                return ("quiet", until)
        locale = normalize_locale(participant.locale)
        try:
            context = message_context(
                payload=dict(message.payload or {}),
                consultation=consultation,
                recipient=participant,
            )
            text = render_html(message.template, locale, **context)
            keyboard = outbox_keyboard(message.template, message.payload or {}, locale)
        except Exception as exc:  # a template bug: keep the message for the coordinators
            logger.exception("outbox message %s: template %r failed", message.id, message.template)
            return ("dead", f"template {message.template!r} failed: {type(exc).__name__}: {exc}")
        return Job(
            message_id=message.id,
            chat_id=participant.telegram_chat_id,
            parts=split_message(text),
            keyboard=keyboard,
            participant_id=participant.id,
        )

    async def _settle_unsendable(self, message: OutboxMessage, action: str, argument: Any) -> None:
        async with self.database.session() as session:
            if action == "cancel":
                await outbox.cancel(session=session, message_id=message.id, reason=argument)
            elif action == "dead":
                await outbox.mark_dead(session=session, message_id=message.id, error=argument)
            elif action == "quiet":
                await outbox.mark_retry(
                    session=session,
                    message_id=message.id,
                    error="quiet hours",
                    delay=argument - clock.now(),
                    count_attempt=False,
                )
            elif action == "email":
                await self._to_email(session, message.id, argument)

    async def _send_chat(self, jobs: list[Job]) -> int:
        """Send one chat's messages in order; returns how many were settled."""
        settled = 0
        for index, job in enumerate(jobs):
            if self.stopping:
                await self._release(jobs[index:])
                break
            outcome = await self._send(job)
            await self._settle(job, *outcome)
            if outcome[0] == "release":
                await self._release(jobs[index + 1 :])
                break
            settled += 1
            if outcome[0] == "blocked":
                # The rest of this chat's messages go by email too.
                for rest in jobs[index + 1 :]:
                    await self._settle(rest, "blocked", "Forbidden: bot was blocked by the user")
                    settled += 1
                break
        return settled

    async def _send(self, job: Job) -> tuple[str, Any]:
        """Send every part still unsent; ("sent"|"retry"|"wait"|"blocked"|"dead"|"release", …)."""
        for number, part in enumerate(job.parts):
            if number < len(job.sent_ids):
                continue
            last = number == len(job.parts) - 1
            try:
                async with self.limiter.slot(job.chat_id):
                    if self.stopping and not job.sent_ids:
                        # Stopping while this one waited for its turn: it goes back unsent.
                        return ("release", STOPPED)
                    sent = await self.bot.send_message(
                        chat_id=job.chat_id,
                        text=part,
                        parse_mode="HTML",
                        reply_markup=job.keyboard if last else None,
                        link_preview_options=NO_PREVIEW,
                    )
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                self.limiter.pause(seconds)
                return ("wait", seconds)
            except Forbidden as exc:
                return ("blocked", str(exc))
            except (BadRequest, ChatMigrated) as exc:
                return ("dead", f"{type(exc).__name__}: {exc.message}")
            except InvalidToken as exc:
                logger.error("telegram sender: the bot token is refused: %s", exc.message)
                return ("retry", f"InvalidToken: {exc.message}")
            except (NetworkError, TelegramError) as exc:
                return ("retry", f"{type(exc).__name__}: {redact(str(exc), self.bot.token)}")
            job.sent_ids.append(sent.message_id)
        return ("sent", ",".join(str(i) for i in job.sent_ids))

    async def _settle(self, job: Job, outcome: str, detail: Any) -> None:
        async with self.database.session() as session:
            if outcome == "sent":
                await outbox.mark_sent(
                    session=session, message_id=job.message_id, external_id=detail
                )
            elif outcome == "wait":
                await outbox.mark_retry(
                    session=session,
                    message_id=job.message_id,
                    error=f"Telegram asked to wait {detail:g} s (429)",
                    delay=timedelta(seconds=detail),
                    count_attempt=False,
                )
            elif outcome == "retry":
                logger.warning("outbox message %s: %s; will retry", job.message_id, detail)
                await outbox.mark_retry(session=session, message_id=job.message_id, error=detail)
            elif outcome == "dead":
                await outbox.mark_dead(session=session, message_id=job.message_id, error=detail)
            elif outcome == "blocked":
                await self._to_email(session, job.message_id, detail, deactivate=True)
            elif outcome == "release":
                await outbox.mark_retry(
                    session=session,
                    message_id=job.message_id,
                    error=detail,
                    delay=timedelta(0),
                    count_attempt=False,
                )

    async def _to_email(
        self, session: Any, message_id: int, reason: str, *, deactivate: bool = False
    ) -> None:
        """The person cannot be reached on Telegram: send the same message by email if we can."""
        message = await session.get(OutboxMessage, message_id)
        participant = (
            await session.get(Participant, message.participant_id)
            if message.participant_id
            else None
        )
        if participant is not None and deactivate and participant.telegram_active:
            participant.telegram_active = False
            participant.updated_at = clock.now()
            session.add(participant)
            logger.info("participant %s blocked the bot: Telegram marked inactive", participant.id)
        can_email = (
            participant is not None
            and participant.reachable
            and participant.email is not None
            and participant.email_status == EmailStatus.OK
        )
        if not can_email:
            await outbox.mark_dead(
                session=session,
                message_id=message_id,
                error=f"{reason}; no email address to fall back on",
            )
            return
        await outbox.enqueue(
            session=session,
            channel=Channel.EMAIL,
            template=message.template,
            payload=dict(message.payload or {}),
            dedupe_key=f"{message.dedupe_key}:email",
            participant_id=participant.id,
            consultation_id=message.consultation_id,
            interactive=message.interactive,
        )
        await outbox.cancel(
            session=session, message_id=message_id, reason=f"{reason}; sent by email"
        )

    async def _release(self, jobs: list[Job]) -> None:
        """Give unsent messages back at once (a stop), without counting an attempt."""
        if not jobs:
            return
        try:
            async with self.database.session() as session:
                for job in jobs:
                    await outbox.mark_retry(
                        session=session,
                        message_id=job.message_id,
                        error=STOPPED,
                        delay=timedelta(0),
                        count_attempt=False,
                    )
        except Exception:
            # Not fatal: the claims expire with their lease and the messages go out then.
            logger.exception("telegram sender: could not give %s messages back", len(jobs))
