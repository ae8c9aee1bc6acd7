"""Which instance runs the scheduler: one leader at a time, elected by the database.

On PostgreSQL the leader holds a session-level advisory lock (`pg_try_advisory_lock`) on a
connection of its own, kept open while it leads. When the leader's process dies, PostgreSQL ends
its session and frees the lock, and another instance takes it at its next attempt (every tick,
well within a minute). TCP keepalives on that connection let the server notice a leader whose
machine vanished without closing the socket, instead of after the default two hours.

On SQLite there is one writer anyway: an exclusive `flock` on a file beside the database keeps a
second `palabre serve` on the same file from running the jobs twice; an in-memory database is
always led by its only instance.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from models.db import Database, redact

try:  # pragma: no cover - every supported platform has fcntl; Windows falls back below
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)


def lock_key(name: str = "palabre:scheduler") -> int:
    """A stable signed 64-bit advisory lock key for `name` (advisory locks are per database)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


LOCK_KEY = lock_key()
# Server-side keepalives on the leader's connection: a vanished leader is noticed in about 50 s.
KEEPALIVE_SETTINGS = (
    "SET tcp_keepalives_idle = 20",
    "SET tcp_keepalives_interval = 10",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 50000",
)


class Leadership(ABC):
    """The election's interface: `refresh()` before acting, `release()` when stopping."""

    is_leader: bool = False

    @abstractmethod
    async def refresh(self) -> bool:
        """Become or stay the leader if possible; returns whether this instance leads now."""

    @abstractmethod
    async def release(self) -> None:
        """Stop leading, so that another instance can take over at once."""


class AdvisoryLockLeader(Leadership):
    """PostgreSQL: the leader is whoever holds advisory lock `key` on a dedicated connection."""

    def __init__(self, database: Database, key: int = LOCK_KEY) -> None:
        self.key = key
        self.url = database.url
        # Its own engine without a pool: the lock's connection is never recycled, pinged away
        # or handed to another task.
        self._engine: AsyncEngine = create_async_engine(database.url, poolclass=NullPool)
        self._connection: AsyncConnection | None = None
        self._backend_pid: int | None = None
        self.is_leader = False

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend holding the lock (tests terminate it to kill a leader)."""
        return self._backend_pid if self._connection is not None else None

    async def refresh(self) -> bool:
        if self._connection is not None:
            try:
                await self._connection.execute(text("SELECT 1"))
                return True
            except (DBAPIError, SQLAlchemyError, OSError) as exc:
                logger.warning("scheduler leadership lost: %s", type(exc).__name__)
                await self._drop()
        return await self._try_acquire()

    async def _try_acquire(self) -> bool:
        connection: AsyncConnection | None = None
        try:
            connection = await self._engine.connect()
            # Autocommit: holding the lock must not hold a transaction open for hours.
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            got = (
                await connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
                )
            ).scalar()
            if not got:
                await connection.close()
                return False
            for statement in KEEPALIVE_SETTINGS:
                await _best_effort(connection, statement)
            self._backend_pid = (
                await connection.execute(text("SELECT pg_backend_pid()"))
            ).scalar_one()
        except (DBAPIError, SQLAlchemyError, OSError) as exc:
            logger.warning(
                "cannot reach %s to elect the scheduler leader: %s",
                redact(self.url),
                type(exc).__name__,
            )
            if connection is not None:
                await _close_quietly(connection)
            return False
        self._connection = connection
        self.is_leader = True
        logger.info("this instance now leads the scheduler")
        return True

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        self.is_leader = False
        if connection is not None:
            await _close_quietly(connection)

    async def release(self) -> None:
        connection = self._connection
        if connection is not None:
            # Closing the session frees the lock anyway; unlocking first is only faster.
            with contextlib.suppress(DBAPIError, SQLAlchemyError, OSError):
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            logger.info("this instance no longer leads the scheduler")
        await self._drop()
        await self._engine.dispose()


class FileLockLeader(Leadership):
    """SQLite: an exclusive, non-blocking `flock` on `<database>.scheduler.lock`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None
        self.is_leader = False

    async def refresh(self) -> bool:
        if self._handle is not None:
            return True
        handle = self.path.open("a+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._handle = handle
        self.is_leader = True
        logger.info("this instance now leads the scheduler (lock file %s)", self.path)
        return True

    async def release(self) -> None:
        handle, self._handle = self._handle, None
        self.is_leader = False
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


class SoleLeader(Leadership):
    """A database only this process can see (in-memory SQLite): always the leader."""

    async def refresh(self) -> bool:
        self.is_leader = True
        return True

    async def release(self) -> None:
        self.is_leader = False


def leadership_for(database: Database) -> Leadership:
    """The right election for `database`'s backend."""
    if database.dialect == "postgresql":
        return AdvisoryLockLeader(database)
    path = database.url.database
    if fcntl is None or not path or path == ":memory:" or path.startswith("file::memory:"):
        return SoleLeader()
    return FileLockLeader(Path(os.path.abspath(path) + ".scheduler.lock"))


async def _best_effort(connection: AsyncConnection, statement: str) -> None:
    try:
        await connection.execute(text(statement))
    except (DBAPIError, SQLAlchemyError):
        logger.debug("leader connection: %s not supported here", statement)


async def _close_quietly(connection: AsyncConnection) -> None:
    # The connection may be dead already (that is often why it is closed): nothing to report.
    try:
        await connection.close()
    except Exception as exc:
        logger.debug("closing the leader connection: %s", type(exc).__name__)
