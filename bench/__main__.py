"""Run every benchmark: `.venv/bin/python -m bench [--quick]`.

Each case times Palabre's code against a baseline doing the least work that gets the same
result, in the same run, and reports the ratio. Results are also written to
`bench/results/latest.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import tempfile
from collections import Counter
from pathlib import Path

from sqlalchemy import insert, update
from sqlmodel import SQLModel

from bench.bench_cli import cli_cases
from bench.bench_email import email_cases
from bench.harness import Case, measure, report
from consultation import definition, outbox
from consultation.ranking import schulze
from models import OutboxMessage, OutboxStatus
from models.db import Database

RESULTS = Path(__file__).with_name("results") / "latest.json"


def ranking_case(ballots: int, candidates: int) -> Case:
    rng = random.Random(0)
    names = [f"A{i}" for i in range(1, candidates + 1)]
    top5 = [tuple(rng.sample(names, 5)) for _ in range(ballots)]
    return measure(
        f"ranking {candidates}x{ballots:,} top-5",
        subject=("Schulze + Borda (consultation.ranking.schulze)", lambda: schulze(names, top5)),
        baseline=(
            "plurality count of first choices (collections.Counter)",
            lambda: Counter(ballot[0] for ballot in top5),
        ),
        units=ballots,
        unit="ballots",
    )


def _database(folder: Path, name: str) -> str:
    url = f"sqlite:///{folder / name}"

    async def create() -> None:
        database = Database(url)
        async with database.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
        await database.dispose()

    asyncio.run(create())
    return url


async def bare_insert(url: str, count: int, *, template: str, payload: dict, prefix: str) -> None:
    """The baseline of every outbox case: `count` rows in one executemany, nothing else."""
    from consultation.clock import now

    current = now()
    database = Database(url)
    async with database.session() as session:
        await session.execute(
            insert(OutboxMessage),
            [
                {
                    "channel": "telegram",
                    "address": f"chat-{index}",
                    "template": template,
                    "payload": payload,
                    "dedupe_key": f"{prefix}:{index}",
                    "status": "pending",
                    "next_attempt_at": current,
                    "created_at": current,
                }
                for index in range(count)
            ],
        )
    await database.dispose()


def outbox_cases(folder: Path, rows: int) -> list[Case]:
    subject_url = _database(folder, "subject.db")
    baseline_url = _database(folder, "baseline.db")
    run = itertools.count()

    def row(index: int, prefix: str) -> dict:
        return {
            "channel": "telegram",
            "address": f"chat-{index}",
            "template": "findings_published",
            "payload": {"codes": ["F1", "F2"], "count": 2},
            "dedupe_key": f"{prefix}:{index}",
        }

    async def enqueue_subject() -> None:
        prefix = f"s{next(run)}"
        database = Database(subject_url)
        async with database.session() as session:
            for index in range(rows):
                await outbox.enqueue(session=session, **row(index, prefix))
        await database.dispose()

    async def enqueue_many_subject() -> None:
        prefix = f"m{next(run)}"
        database = Database(subject_url)
        async with database.session() as session:
            await outbox.enqueue_many(
                session=session, messages=[row(index, prefix) for index in range(rows)]
            )
        await database.dispose()

    async def enqueue_baseline() -> None:
        await bare_insert(
            baseline_url,
            rows,
            template="findings_published",
            payload={"codes": ["F1", "F2"], "count": 2},
            prefix=f"b{next(run)}",
        )

    async def drain_subject() -> None:
        database = Database(subject_url)
        while True:
            async with database.session() as session:
                claimed = await outbox.claim(session=session, channel="telegram", limit=100)
            if not claimed:
                break
            async with database.session() as session:
                for message in claimed:
                    await outbox.mark_sent(session=session, message_id=message.id)
        await database.dispose()

    async def drain_baseline() -> None:
        database = Database(baseline_url)
        async with database.session() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SENT)
            )
        await database.dispose()

    enqueue = measure(
        f"outbox enqueue {rows:,} (SQLite)",
        subject=("outbox.enqueue, one INSERT ON CONFLICT DO NOTHING each", enqueue_subject),
        baseline=("one executemany INSERT of the same rows", enqueue_baseline),
        units=rows,
        unit="messages",
        repeat=3,
    )
    enqueue_many = measure(
        f"outbox enqueue_many {rows:,} (SQLite)",
        subject=("outbox.enqueue_many, multi-row INSERT ON CONFLICT", enqueue_many_subject),
        baseline=("one executemany INSERT of the same rows", enqueue_baseline),
        units=rows,
        unit="messages",
        repeat=3,
    )
    drain = measure(
        f"outbox claim+settle {rows * 6:,} (SQLite)",
        subject=("claim 100 at a time, mark_sent each", drain_subject),
        baseline=("one UPDATE marking every pending row sent", drain_baseline),
        units=rows * 6,
        unit="messages",
        repeat=1,
    )
    return [enqueue, enqueue_many, drain]


def publish_case(folder: Path, people: int) -> Case:
    """Publishing three findings to every participant, against a bare insert of as many rows."""
    from datetime import UTC, datetime

    from consultation import findings
    from consultation.clock import ManualClock, set_clock
    from tests.factories import make_consultation, make_participant

    set_clock(ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)))
    rounds = itertools.count()

    async def prepare(url: str) -> int:
        database = Database(url)
        async with database.session() as session:
            consultation = await make_consultation(session, current="review")
            for index in range(people):
                await make_participant(
                    session, consultation, telegram_chat_id=10_000 + index, cadence="off"
                )
        await database.dispose()
        return consultation.id

    subject_url = _database(folder, "publish.db")
    baseline_url = _database(folder, "publish-baseline.db")
    consultation_id = asyncio.run(prepare(subject_url))

    async def publish() -> None:
        database = Database(subject_url)
        async with database.session() as session:
            for number in range(3):
                await findings.draft_finding(
                    session=session,
                    consultation_id=consultation_id,
                    by=None,
                    text=f"Constat {next(rounds)}-{number} : les petites coopératives manquent "
                    "d'un accompagnement spécifique.",
                )
            await findings.publish_findings(
                session=session, consultation_id=consultation_id, by=None, actor_label="bench"
            )
        await database.dispose()

    async def baseline() -> None:
        await bare_insert(
            baseline_url,
            people,
            template="findings_published",
            payload={"codes": ["F1", "F2", "F3"], "count": 3},
            prefix=f"p{next(rounds)}",
        )

    return measure(
        f"publish 3 findings to {people:,} (SQLite)",
        subject=("findings.publish_findings (drafts, versions, fan-out)", publish),
        baseline=("one executemany INSERT of as many outbox rows", baseline),
        units=people,
        unit="people",
        repeat=3,
    )


def reminder_case(folder: Path, people: int) -> Case:
    """The scheduler's 48-hour reminder over a consultation where half still owe an observation.

    The subject is a whole `run_due()` at that moment (finding who owes what, writing the
    reminders in batches); the baseline writes as many outbox rows in one executemany.
    """
    from consultation import observations
    from consultation.clock import ManualClock, set_clock
    from scheduler.service import SchedulerService
    from tests.factories import make_participant
    from tests.scheduler.story import paris, spec

    manual = ManualClock(paris("2026-03-02 10:00"))
    set_clock(manual)
    owing = people // 2
    runs = itertools.count()

    async def prepare(url: str) -> None:
        database = Database(url)
        async with database.session() as session:
            consultation, _ = await definition.apply(session=session, spec=spec())
            await session.flush()
            everyone = [
                await make_participant(
                    session, consultation, telegram_chat_id=20_000 + index, cadence="off"
                )
                for index in range(people)
            ]
        service = SchedulerService(database)
        manual.set(paris("2026-03-02 11:00"))
        await service.run_due()  # the observe phase opens
        async with database.session() as session:
            for person in everyone[owing:]:
                await observations.submit_observation(
                    session=session,
                    participant=person,
                    text="Les petites coopératives n'ont pas d'accompagnement dédié.",
                    channel="telegram",
                )
        await database.dispose()

    url = _database(folder, "reminders.db")
    baseline_url = _database(folder, "reminders-baseline.db")
    asyncio.run(prepare(url))

    async def remind() -> None:
        database = Database(url)
        service = SchedulerService(database)
        manual.set(paris("2026-03-07 18:00"))
        report = await service.run_due()
        assert report.message_count == owing, report
        await database.dispose()

    async def baseline() -> None:
        await bare_insert(
            baseline_url,
            owing,
            template="reminder",
            payload={"observation": True},
            prefix=f"r{next(runs)}",
        )

    return measure(
        f"48 h reminder, {owing:,} of {people:,} (SQLite)",
        subject=("scheduler run_due: who owes what, reminders in batches", remind),
        baseline=("one executemany INSERT of as many outbox rows", baseline),
        units=owing,
        unit="reminders",
        repeat=1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    cases = [ranking_case(20_000 // scale, 40)]
    with tempfile.TemporaryDirectory() as folder:
        cases += outbox_cases(Path(folder), 2_000 // scale)
        cases.append(publish_case(Path(folder), 2_000 // scale))
        cases.append(reminder_case(Path(folder), 2_000 // scale))
        cases += email_cases(Path(folder), scale)
    cases += cli_cases(quick=args.quick)
    print(report(cases, RESULTS))


if __name__ == "__main__":
    main()
