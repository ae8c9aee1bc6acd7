"""The one clock Palabre reads.

Nothing calls `datetime.now()` directly: every module asks `now()`, so that a test can move time
(with `ManualClock`, or with time-machine, which the system clock follows) instead of sleeping.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock(Clock):
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware time")
        self._now = when.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


_clock: Clock = Clock()


def set_clock(clock: Clock) -> Clock:
    """Install `clock` as the process clock; returns the previous one so tests can restore it."""
    global _clock
    previous, _clock = _clock, clock
    return previous


def now() -> datetime:
    """The current time, timezone-aware UTC."""
    return _clock.now()


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive value is taken to be UTC already (as SQLite returns it)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
