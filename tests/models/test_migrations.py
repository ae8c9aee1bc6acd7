"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from models.db import Database
from models.migrate import downgrade, upgrade


def _inspect(url: str, check):
    async def run():
        database = Database(url)
        try:
            async with database.engine.connect() as connection:
                return await connection.run_sync(check)
        finally:
            await database.dispose()

    return asyncio.run(run())


def test_upgrade_creates_every_table_and_matches_the_models(empty_database_url):
    upgrade(empty_database_url)

    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)

    assert _inspect(empty_database_url, differences) == []
    tables = _inspect(empty_database_url, lambda c: set(inspect(c).get_table_names()))
    assert set(SQLModel.metadata.tables) <= tables


def test_upgrade_twice_is_harmless_and_downgrade_removes_everything(empty_database_url):
    upgrade(empty_database_url)
    upgrade(empty_database_url)
    downgrade(empty_database_url, "base")
    tables = _inspect(empty_database_url, lambda c: set(inspect(c).get_table_names()))
    assert tables <= {"alembic_version"}
