"""`palabre plan`: a coordinator records the answer to each action and its progress."""

from __future__ import annotations

import json

from sqlmodel import select

from models import AuditEvent, PlanEvent
from tests.consultation.evaluation_story import a_whole_process
from tests.factories import ALL_PHASES
from tests.palabre.test_process_cli import _in_db


def test_a_coordinator_answers_every_action_and_reports_progress(cli, empty_database_url, clock):
    url = empty_database_url
    env = {"PALABRE_DATABASE_URL": url, "PALABRE_LOCALE": "en"}
    assert cli("db", "upgrade", env=env).exit_code == 0

    async def story(session):
        consultation, *_ = await a_whole_process(
            session, clock, phases=(*ALL_PHASES, "follow"), stance=True
        )
        return consultation.slug

    slug = _in_db(url, story)
    c = ["--consultation", slug]

    refused = cli("plan", "decide", "A4", "not-retained", *c, env=env)
    assert refused.exit_code == 1
    assert "Give the reason for this decision on A4" in refused.output

    decided = cli(
        "plan",
        "decide",
        "A3",
        "retained",
        "--lead",
        "Maison de l'ESS",
        "--due",
        "2028-06",
        "--milestone",
        "Local trouvé",
        "--milestone",
        "Ouverture",
        *c,
        env=env,
    )
    assert decided.exit_code == 0, decided.output
    assert "A3 (#1) Un guichet unique d'accompagnement de l'ESS." in decided.output
    assert "retained · not started yet · due June 30, 2028" in decided.output
    assert "[ ] 2. Ouverture" in decided.output
    refusal = cli(
        "plan", "decide", "A4", "not-retained", "--reason", "Une fête existe déjà.", *c, env=env
    )
    assert refusal.exit_code == 0 and "Reason: Une fête existe déjà." in refusal.output

    no_note = cli("plan", "progress", "A3", "--status", "late", *c, env=env)
    assert no_note.exit_code == 1 and "Add a note" in no_note.output
    started = cli("plan", "progress", "A3", "--status", "started", "--tick", "1", *c, env=env)
    assert started.exit_code == 0, started.output
    assert "retained · under way" in started.output and "[x] 1. Local trouvé" in started.output

    listed = cli("plan", "list", *c, env=env)
    assert listed.exit_code == 0
    assert "1 decision still missing." in listed.output
    document = json.loads(cli("plan", "list", "--json", *c, env=env).output)
    assert document["missing"] == ["A2"] and document["missing_count"] == 1
    assert {row["code"]: row["decision"] for row in document["actions"]} == {
        "A3": "retained",
        "A2": None,
        "A4": "not_retained",
    }
    results = json.loads(cli("results", "--json", *c, env=env).output)
    assert results["plan"]["statuses"] == {"started": 1}

    async def trail(session):
        events = (await session.exec(select(PlanEvent).order_by(PlanEvent.id))).all()
        audit = (
            await session.exec(select(AuditEvent).where(AuditEvent.action.startswith("plan.")))
        ).all()
        return [(e.kind, e.value, e.actor_label) for e in events], [a.actor_label for a in audit]

    events, audited = _in_db(url, trail)
    assert events == [
        ("decision", "retained", "cli"),
        ("decision", "not_retained", "cli"),
        ("progress", "started", "cli"),
        ("milestone", "1", "cli"),
    ]
    assert audited == ["cli", "cli", "cli"]
