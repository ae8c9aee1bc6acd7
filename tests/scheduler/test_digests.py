"""Digests at the consultation's local morning: the scheduler decides when, the digest what.

A digest with nothing to say is not sent; a morning missed while the scheduler was stopped is
caught up once, and never in the middle of the night.
"""

from __future__ import annotations

from sqlmodel import select

from consultation import observations
from models import Cadence, Channel, JobRun
from tests.scheduler.story import messages, paris, set_up


async def _digest_runs(db) -> list[str]:
    async with db.session() as session:
        keys = (await session.exec(select(JobRun.job_key))).all()
    return sorted(key for key in keys if key.startswith("digest:"))


async def _daily_bruno(db, cast) -> None:
    async with db.session() as session:
        bruno = await session.get(type(cast.bruno), cast.bruno.id)
        bruno.digest_cadence = Cadence.DAILY
        session.add(bruno)


async def test_a_digest_goes_at_eight_and_not_when_there_is_nothing_new(db, clock, make_service):
    """Given Bruno reading Palabre by daily email, his first digest goes on Tuesday at 08:00
    (not at 07:59); having observed since, on Wednesday he has nothing new: no email."""
    cast = await set_up(db)
    await _daily_bruno(db, cast)
    service = make_service()
    clock.set(paris("2026-03-02 11:00"))
    await service.run_due()

    clock.set(paris("2026-03-03 07:59"))
    await service.run_due()
    assert await messages(db, "digest") == []
    clock.set(paris("2026-03-03 08:00"))
    report = await service.run_due()
    digests = await messages(db, "digest")
    assert [(row.participant_id, row.channel) for row in digests] == [
        (cast.bruno.id, Channel.EMAIL)
    ]
    assert report.failed == []

    async with db.session() as session:
        await observations.submit_observation(
            session=session,
            participant=cast.bruno,
            text="Les marchés publics restent hors de portée des petites structures.",
            channel=Channel.EMAIL,
        )
    clock.set(paris("2026-03-04 08:00"))
    report = await service.run_due()
    assert [outcome.job_id for outcome in report.messages if outcome.ran] == [
        f"digest:{cast.consultation.id}"
    ]
    assert len(await messages(db, "digest")) == 1
    assert await _digest_runs(db) == [
        f"digest:{cast.consultation.id}:2026-03-03",
        f"digest:{cast.consultation.id}:2026-03-04",
    ]


async def test_a_stop_of_several_days_sends_one_digest_not_one_per_missed_day(
    db, clock, make_service
):
    """Given the scheduler stopped from Tuesday to Sunday 10:00, when it comes back, Sunday's
    digest goes once (the deadline is near: there is something to say), and the mornings in
    between are not sent late."""
    cast = await set_up(db)
    await _daily_bruno(db, cast)
    service = make_service()
    c = cast.consultation.id
    clock.set(paris("2026-03-02 11:00"))
    await service.run_due()
    clock.set(paris("2026-03-03 08:00"))
    await service.run_due()

    clock.set(paris("2026-03-08 10:00"))
    await service.run_due()
    await service.run_due()
    assert await _digest_runs(db) == [f"digest:{c}:2026-03-03", f"digest:{c}:2026-03-08"]
    assert len(await messages(db, "digest")) == 2


async def test_a_scheduler_back_in_the_night_waits_for_the_morning_digest(db, clock, make_service):
    """Given the scheduler stopped on Saturday evening and back on Monday at 03:00, no digest
    goes at 03:00 (Sunday's morning is gone); Monday's goes at 08:00."""
    cast = await set_up(db)
    await _daily_bruno(db, cast)
    service = make_service()
    c = cast.consultation.id
    clock.set(paris("2026-03-02 11:00"))
    await service.run_due()
    clock.set(paris("2026-03-07 20:00"))
    await service.run_due()
    sent_before = len(await messages(db, "digest"))

    clock.set(paris("2026-03-09 03:00"))
    await service.run_due()
    assert len(await messages(db, "digest")) == sent_before
    clock.set(paris("2026-03-09 08:00"))
    await service.run_due()
    assert len(await messages(db, "digest")) == sent_before + 1
    assert f"digest:{c}:2026-03-08" not in await _digest_runs(db)
