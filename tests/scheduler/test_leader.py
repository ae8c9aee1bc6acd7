"""Leader election: one instance runs the scheduler, another takes over when it goes away."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from models.db import Database
from scheduler.leader import AdvisoryLockLeader, FileLockLeader, SoleLeader, leadership_for


async def test_on_sqlite_one_instance_per_database_file_leads(tmp_path: Path):
    """Two `palabre serve` on the same SQLite file: the first leads, the second waits, and
    takes over when the first stops."""
    lock = tmp_path / "palabre.db.scheduler.lock"
    first, second = FileLockLeader(lock), FileLockLeader(lock)
    assert await first.refresh()
    assert not await second.refresh()
    assert await first.refresh()  # staying the leader is idempotent
    await first.release()
    assert await second.refresh()
    assert not await first.refresh()
    await second.release()


async def test_the_backend_decides_the_election(tmp_path: Path):
    file_db = Database(f"sqlite:///{tmp_path / 'p.db'}")
    memory_db = Database("sqlite:///:memory:")
    pg_db = Database("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert isinstance(leadership_for(file_db), FileLockLeader)
        assert isinstance(leadership_for(memory_db), SoleLeader)
        assert isinstance(leadership_for(pg_db), AdvisoryLockLeader)
    finally:
        for database in (file_db, memory_db, pg_db):
            await database.dispose()


async def test_an_unreachable_postgresql_elects_nobody():
    """A leader that cannot reach its database does not pretend to lead."""
    database = Database("postgresql://nobody@127.0.0.1:1/none")
    leader = AdvisoryLockLeader(database)
    try:
        assert not await leader.refresh()
        assert not leader.is_leader
    finally:
        await leader.release()
        await database.dispose()


async def test_on_postgresql_one_instance_holds_the_advisory_lock(pg_db: Database):
    """Given two instances on one PostgreSQL database, only one leads; when it stops, the
    other leads at its next attempt."""
    first, second = AdvisoryLockLeader(pg_db), AdvisoryLockLeader(pg_db)
    try:
        assert await first.refresh()
        assert not await second.refresh()
        assert first.is_leader and not second.is_leader
        await first.release()
        assert await second.refresh()
        assert not await first.refresh()
    finally:
        await first.release()
        await second.release()


async def test_when_the_leader_dies_another_instance_takes_over(pg_db: Database):
    """Given a leader whose process dies (its database session ends), the follower takes the
    lock at its next tick, and the old leader, should it come back, knows it no longer leads."""
    leader, follower = AdvisoryLockLeader(pg_db), AdvisoryLockLeader(pg_db)
    try:
        assert await leader.refresh()
        assert not await follower.refresh()
        async with pg_db.engine.connect() as admin:
            killed = (
                await admin.execute(
                    text("SELECT pg_terminate_backend(:pid)"), {"pid": leader.backend_pid}
                )
            ).scalar()
            await admin.commit()
        assert killed
        assert await follower.refresh()
        assert not await leader.refresh()
        assert follower.is_leader and not leader.is_leader
    finally:
        await leader.release()
        await follower.release()
