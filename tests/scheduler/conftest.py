"""Fixtures of the scheduler's stories: a service over the test database, PostgreSQL-only runs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from models.db import Database
from scheduler.service import SchedulerService


@pytest.fixture
def pg_db(db: Database) -> Database:
    """`db` on its PostgreSQL run only (leader election and concurrency need a server)."""
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL only: several instances share a server")
    return db


@pytest.fixture
async def make_service(db: Database) -> AsyncIterator[Callable[..., SchedulerService]]:
    """Build scheduler services over the test database; each is shut down after the test.

    Several may be built over the same database: that is how a restart, or a second instance,
    is told.
    """
    services: list[SchedulerService] = []

    def build(database: Database | None = None, **kwargs) -> SchedulerService:
        target = database or db
        service = SchedulerService(target, **kwargs)
        services.append(service)
        return service

    yield build
    for service in services:
        await service.shutdown()
