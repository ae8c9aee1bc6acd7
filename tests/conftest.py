"""Shared fixtures: a database on SQLite and on PostgreSQL, a clock the test moves, servers.

Every test that takes `db` runs twice, once per backend. PostgreSQL comes from
`PALABRE_TEST_DATABASE_URL`; without it those runs are skipped locally, but under CI
(`CI=true`) a missing or unreachable PostgreSQL is an error, never a skip.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import models  # noqa: F401  (registers the tables)
from consultation import clock as clock_module
from consultation.clock import ManualClock
from models.db import Database
from tests.servers.fixtures import *  # noqa: F403

PG_URL = os.environ.get("PALABRE_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", "postgresql"]


def _admin(url: str) -> Database:
    return Database(url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    """A PostgreSQL database of this test run's own, created and dropped around the run.

    A database per run (not the shared `test` one) lets several runs share one server, and lets
    command-line tests reach it by URL alone.
    """
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI needs PALABRE_TEST_DATABASE_URL: PostgreSQL tests must not skip")
        yield None
        return
    name = f"palabre_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def run(statement: str) -> None:
        admin = _admin(PG_URL)
        try:
            async with admin.engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await admin.dispose()

    try:
        asyncio.run(run(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # an unreachable server must fail loudly, not skip
        pytest.fail(f"PostgreSQL at PALABRE_TEST_DATABASE_URL is unreachable: {exc}")
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


_pg_tables_created: set[str] = set()
ALL_TABLES = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)


@pytest.fixture(params=BACKENDS)
async def db(request, tmp_path, pg_url) -> AsyncIterator[Database]:
    """An empty Palabre database, on SQLite then on PostgreSQL."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'palabre.db'}")
        async with database.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
    else:
        if pg_url is None:
            pytest.skip("set PALABRE_TEST_DATABASE_URL to run the PostgreSQL half")
        database = Database(pg_url)
        async with database.engine.begin() as connection:
            if pg_url not in _pg_tables_created:
                await connection.run_sync(SQLModel.metadata.drop_all)
                await connection.run_sync(SQLModel.metadata.create_all)
                _pg_tables_created.add(pg_url)
            else:
                await connection.execute(text(f"TRUNCATE {ALL_TABLES} RESTART IDENTITY CASCADE"))
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def clock() -> Iterator[ManualClock]:
    """A clock at Monday 2 March 2026, 10:00 Paris time, that only the test moves."""
    manual = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    previous = clock_module.set_clock(manual)
    try:
        yield manual
    finally:
        clock_module.set_clock(previous)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """The URL of a brand-new, empty database (no tables): for migrations and the CLI."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'palabre.db'}"
        return
    if not PG_URL:
        if IN_CI:
            pytest.fail("CI needs PALABRE_TEST_DATABASE_URL: PostgreSQL tests must not skip")
        pytest.skip("set PALABRE_TEST_DATABASE_URL to run the PostgreSQL half")
    name = f"palabre_empty_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def run(statement: str) -> None:
        admin = _admin(PG_URL)
        try:
            async with admin.engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await admin.dispose()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """Run `palabre ...` in-process, as a coordinator would type it, in English."""
    from typer.testing import CliRunner

    from palabre.cli import app
    from palabre.settings import get_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PALABRE_LOCALE", "en")
    monkeypatch.setenv("PALABRE_MAIL_DIR", str(tmp_path / "mail"))
    for name in ("PALABRE_TELEGRAM_TOKEN", "PALABRE_IMAP_HOST", "PALABRE_ENV"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        try:
            return runner.invoke(app, list(args), catch_exceptions=False)
        finally:
            get_settings.cache_clear()

    return invoke
