"""The service inside `palabre serve`: APScheduler wakes it at the plan's times.

These stories run on the real clock: a phase that ends in a second is closed by the date job
APScheduler holds for it, not by the one-minute tick. The test waits on a condition, with a
timeout, rather than sleeping a fixed time.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from consultation import clock
from models import Phase, PhaseStatus
from tests.factories import make_consultation, make_participant


async def _wait_for(condition, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_started_it_holds_one_date_job_per_upcoming_step(db, make_service):
    """Given a consultation in its observe phase, once the service has started it holds a date
    job under each upcoming step's id, beside its tick; shut down, it leads no more."""
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe")
        await make_participant(session, consultation, telegram_chat_id=7)
    service = make_service(tick_seconds=3600)
    await service.start()
    await _wait_for(lambda: _has_wakeups(service))
    c = consultation.id
    async with db.session() as session:
        observe = (
            await session.exec(
                Phase.__table__.select().where(Phase.consultation_id == c).order_by(Phase.position)
            )
        ).first()
    ids = set(service.wakeups())
    assert {
        f"phase-close:{c}:{observe.id}",
        f"reminder:{c}:{observe.id}:48",
        f"reminder:{c}:{observe.id}:6",
        f"digest:{c}",
    } <= ids
    assert service.is_leader
    await service.shutdown()
    assert not service.is_leader
    assert service.wakeups() == {}


async def _has_wakeups(service) -> bool:
    return bool(service.wakeups())


async def test_a_phase_closes_at_its_time_without_waiting_for_the_tick(db, make_service):
    """Given an observe phase whose deadline is one second away and a tick of one hour, the
    phase closes about one second later."""
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe", min_days=0)
        phases = (
            await session.exec(
                Phase.__table__.select()
                .where(Phase.consultation_id == consultation.id)
                .order_by(Phase.position)
            )
        ).all()
        observe = await session.get(Phase, phases[0].id)
        observe.closes_at = clock.now() + timedelta(seconds=1)
        session.add(observe)
    service = make_service(tick_seconds=3600)
    await service.start()

    async def observe_closed() -> bool:
        async with db.session() as session:
            phase = await session.get(Phase, observe.id)
            return phase.status == PhaseStatus.CLOSED

    waited = await _wait_for(observe_closed)
    assert waited < 5
