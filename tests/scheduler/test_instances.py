"""Several instances over one database: one leads, each message is written once.

Only the leader runs jobs (a PostgreSQL advisory lock); and even two instances that both ran
the same jobs at the same moment would write each message once (dedupe keys, `JobRun`).
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlmodel import select

from models import JobRun
from scheduler.leader import SoleLeader
from tests.scheduler.story import messages, paris, set_up

MOMENTS = [
    "2026-03-02 11:00",  # observe opens
    "2026-03-07 18:00",  # 48 h reminder
    "2026-03-09 12:00",  # 6 h reminder
    "2026-03-09 18:00",  # observe closes, its questionnaire, review opens
]


async def _assert_each_message_once(db) -> None:
    keys = [row.dedupe_key for row in await messages(db)]
    assert keys and len(keys) == len(set(keys))


async def test_two_instances_on_postgresql_run_each_job_once(pg_db, clock, make_service):
    """Given two instances of `palabre serve` on one PostgreSQL database, when both tick at
    each step of the story, only the leader acts, and each message exists once."""
    await set_up(pg_db)
    first, second = make_service(), make_service()
    for moment in MOMENTS:
        clock.set(paris(moment))
        reports = await asyncio.gather(first.run_due(), second.run_due())
        assert sorted(report.leader for report in reports) == [False, True]
    assert first.is_leader != second.is_leader
    await _assert_each_message_once(pg_db)
    assert len(await messages(pg_db, "reminder", hours=48)) == 4
    assert len(await messages(pg_db, "reminder", hours=6)) == 4


async def test_when_the_leader_stops_or_dies_the_other_instance_takes_over(
    pg_db, clock, make_service
):
    """Given a leader and a follower, when the leader shuts down, the follower leads at its
    next tick and carries on; when that one's process dies, a third takes over."""
    await set_up(pg_db)
    first, second = make_service(), make_service()
    clock.set(paris(MOMENTS[0]))
    assert (await first.run_due()).leader
    assert not (await second.run_due()).leader

    await first.shutdown()
    clock.set(paris(MOMENTS[1]))
    report = await second.run_due()
    assert report.leader
    assert len(await messages(pg_db, "reminder", hours=48)) == 4

    third = make_service()
    async with pg_db.engine.connect() as admin:
        await admin.execute(
            text("SELECT pg_terminate_backend(:pid)"), {"pid": second.leadership.backend_pid}
        )
        await admin.commit()
    clock.set(paris(MOMENTS[2]))
    report = await third.run_due()
    assert report.leader
    assert len(await messages(pg_db, "reminder", hours=6)) == 4
    assert not (await second.run_due()).leader
    await _assert_each_message_once(pg_db)


async def test_even_two_leaders_at_once_write_each_message_once(db, clock, make_service):
    """Given two instances that both believe they lead (a partition, a misconfiguration), when
    they run the same due jobs at the same moment, each message and each job run is written
    once."""
    await set_up(db)
    first = make_service(leadership=SoleLeader())
    second = make_service(leadership=SoleLeader())
    for moment in MOMENTS:
        clock.set(paris(moment))
        await asyncio.gather(first.run_due(), second.run_due())
    await _assert_each_message_once(db)
    assert len(await messages(db, "reminder", hours=48)) == 4
    async with db.session() as session:
        keys = (await session.exec(select(JobRun.job_key))).all()
    assert len(keys) == len(set(keys))
