"""`palabre schedule`: the coordinator checks the example consultation's timetable before launch."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sqlalchemy import update

from consultation.clock import now
from models import Participant
from models.db import Database

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_example_consultation_plan_shows_what_happens_next_and_to_how_many(
    cli, empty_database_url, clock
):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    assert cli("init", str(EXAMPLES / "ess-plan.toml"), env=env).exit_code == 0
    assert cli("participants", "import", str(EXAMPLES / "participants.csv"), env=env).exit_code == 0

    # Freshly invited, nobody has agreed to take part yet: nobody would be told.
    before = json.loads(cli("schedule", "--json", "--limit", "1", env=env).output)
    assert before["jobs"][0]["kind"] == "phase-open" and before["jobs"][0]["recipients"] == 0

    asyncio.run(_everyone_consents(empty_database_url))
    result = cli("schedule", "--json", "--limit", "0", env=env)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["slug"] == "ess-plan" and document["timezone"] == "Europe/Paris"
    jobs = document["jobs"]
    first = jobs[0]
    assert first["kind"] == "phase-open" and first["subject"] == "observe"
    assert first["at"] == "2027-01-11T09:00:00+01:00"
    assert first["recipients"] == 30 and first["recipients_exact"]
    reminder = next(job for job in jobs if job["kind"] == "reminder")
    assert reminder["at"] == "2027-01-30T18:00:00+01:00" and reminder["offset_hours"] == 48
    # Before launch nobody has answered: at most every participant who is not a coordinator.
    assert reminder["recipients"] == 28 and not reminder["recipients_exact"]
    assert {job["kind"] for job in jobs} == {
        "phase-open",
        "phase-close",
        "reminder",
        "digest",
        "questionnaire-open",
        "questionnaire-reminder",
        "questionnaire-close",
        "final-plan",
        "plan-missing",
    }

    text = cli("schedule", "--limit", "3", env=env)
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == "Plan métropolitain pour l'économie sociale et solidaire (ess-plan)"
    assert "Mon 11 Jan 2027, 09:00" in text.output
    assert "opens the phase “Observations” (30 people)" in text.output
    assert "up to 28 people" in text.output
    assert len([line for line in lines if line.startswith("  ")]) == 3


async def _everyone_consents(url: str) -> None:
    database = Database(url)
    try:
        async with database.session() as session:
            await session.execute(update(Participant).values(consent_at=now()))
    finally:
        await database.dispose()
