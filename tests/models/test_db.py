"""The database layer on both backends: UTC timestamps, SQLite tuning, URL handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from models import JobRun, Participant
from models.db import async_url, insert_for, redact
from tests.factories import make_consultation, make_participant


async def test_timestamps_come_back_timezone_aware_utc(db, clock):
    paris_winter = timezone(timedelta(hours=1))
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation)
        person.consent_at = datetime(2026, 3, 2, 11, 30, tzinfo=paris_winter)
        session.add(person)
    async with db.session() as session:
        again = await session.get(Participant, person.id)
        assert again.consent_at == datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
        assert again.consent_at.tzinfo is not None


async def test_a_naive_timestamp_is_refused(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation)
        person.consent_at = datetime(2026, 3, 2, 11, 30)
        session.add(person)
        with pytest.raises(Exception, match="naive datetime"):
            await session.flush()


async def test_insert_for_ignores_a_conflicting_row_on_either_backend(db, clock):
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    async with db.session() as session:
        statement = (
            insert_for(session)(JobRun)
            .values(job_key="once", ran_at=at, detail={})
            .on_conflict_do_nothing(index_elements=["job_key"])
        )
        first = (await session.execute(statement)).rowcount
        second = (await session.execute(statement)).rowcount
        assert insert_for(session).__module__.split(".")[-2] == db.dialect
    assert (first, second) == (1, 0)


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(db):
    if db.dialect != "sqlite":
        pytest.skip("SQLite only")
    async with db.engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1


def test_plain_urls_get_their_async_driver():
    assert async_url("sqlite:///palabre.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql://postgres@127.0.0.1/test").drivername == "postgresql+asyncpg"
    assert async_url("postgres://postgres@127.0.0.1/test").drivername == "postgresql+asyncpg"
    with pytest.raises(ValueError, match="unsupported database"):
        async_url("mysql://root@localhost/palabre")


def test_passwords_are_redacted_from_urls():
    shown = redact("postgresql://palabre:s3cret@db.example.org/palabre")
    assert "s3cret" not in shown
    assert "db.example.org" in shown
