"""What the bot lets a coordinator do, the command line does: broadcast, audit, questionnaires."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sqlalchemy import update
from sqlmodel import select

from consultation.clock import now
from models import AuditEvent, OutboxMessage, Participant
from models.db import Database

ROOT = Path(__file__).resolve().parents[2]
TOML = str(ROOT / "examples" / "ess-plan.toml")
CSV = str(ROOT / "examples" / "participants.csv")


def _database(url: str, work):
    async def main():
        database = Database(url)
        try:
            async with database.session() as session:
                return await work(session)
        finally:
            await database.dispose()

    return asyncio.run(main())


async def _everyone_consents(session) -> None:
    await session.execute(update(Participant).values(consent_at=now()))


def test_a_coordinator_without_telegram_broadcasts_to_one_category_and_reads_the_audit(
    cli, empty_database_url, clock
):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    assert cli("init", TOML, env=env).exit_code == 0
    assert cli("participants", "import", CSV, env=env).exit_code == 0
    nobody = cli("broadcast", "Réunion jeudi", "--yes", env=env)
    assert nobody.exit_code == 1 and "nobody has consented yet" in nobody.output
    _database(empty_database_url, _everyone_consents)

    unknown = cli("broadcast", "Réunion jeudi", "--category", "astronaut", "--yes", env=env)
    assert unknown.exit_code == 1 and 'There is no category "astronaut"' in unknown.output
    sent = cli("broadcast", "Réunion jeudi à 18 h", "--category", "cooperative", "--yes", env=env)
    assert sent.exit_code == 0, sent.output
    rows = _database(
        empty_database_url,
        lambda session: _all(
            session, select(OutboxMessage).where(OutboxMessage.template == "broadcast")
        ),
    )
    assert len(rows) == 5 and "5 messages written to the outbox" in sent.output
    (event,) = _database(
        empty_database_url,
        lambda session: _all(
            session, select(AuditEvent).where(AuditEvent.action == "broadcast.sent")
        ),
    )
    assert (event.actor_label, event.subject) == ("cli", "cooperative")

    trail = json.loads(cli("audit", "--json", env=env).output)
    assert [row["action"] for row in trail["events"]][-1] == "broadcast.sent"
    text = cli("audit", env=env).output
    assert text.splitlines()[0].split()[:3] == ["when", "who", "action"]
    assert text.splitlines()[-1] == f"{len(trail['events'])} events"
    later = cli("audit", "--since", "2099-01-01", env=env)
    assert later.exit_code == 0 and later.output.strip() == "0 events"


def test_a_questionnaire_is_opened_reminded_and_closed_by_hand(cli, empty_database_url, clock):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    cli("init", TOML, env=env)
    cli("participants", "import", CSV, env=env)
    listed = cli("questionnaire", "list", env=env).output
    assert "after-observe" in listed and "Your view of the observation phase" in listed

    opened = cli("questionnaire", "open", "after-observe", env=env)
    assert opened.exit_code == 0, opened.output
    assert "“Your view of the observation phase” is open until" in opened.output
    reminded = cli("questionnaire", "remind", "after-observe", env=env)
    assert reminded.exit_code == 0 and "reminders written to the outbox" in reminded.output
    closed = cli("questionnaire", "close", "after-observe", env=env)
    assert closed.exit_code == 0 and "is closed" in closed.output
    document = json.loads(cli("questionnaire", "list", "--json", env=env).output)
    assert document["questionnaires"][0]["status"] == "closed"
    actions = [
        row["action"] for row in json.loads(cli("audit", "--json", env=env).output)["events"]
    ]
    assert actions[-2:] == ["questionnaire.opened", "questionnaire.closed"]


async def _all(session, query):
    return list((await session.exec(query)).all())
