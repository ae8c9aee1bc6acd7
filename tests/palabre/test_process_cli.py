"""Running the whole example consultation from the command line, as a coordinator would."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import select

from consultation import findings, observations, preferences
from consultation.common import get_consultation
from models import AuditEvent, Channel, OutboxMessage, Participant, Role
from models.db import Database

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOML = str(EXAMPLES / "ess-plan.toml")
CSV = str(EXAMPLES / "participants.csv")
PARIS = ZoneInfo("Europe/Paris")


def _in_db(url: str, work):
    """Run `work(session)` in one transaction on the CLI's database (as a channel would)."""

    async def main():
        database = Database(url)
        try:
            async with database.session() as session:
                return await work(session)
        finally:
            await database.dispose()

    return asyncio.run(main())


def _people(url: str) -> list[Participant]:
    async def work(session):
        return list(
            (
                await session.exec(
                    select(Participant)
                    .where(Participant.role == Role.PARTICIPANT)
                    .order_by(Participant.id)
                )
            ).all()
        )

    return _in_db(url, work)


def _consent_everyone(url: str) -> None:
    async def work(session):
        for person in (await session.exec(select(Participant))).all():
            await preferences.give_consent(session=session, participant=person, channel="email")

    _in_db(url, work)


def _rows(url: str, template: str) -> list[OutboxMessage]:
    async def work(session):
        query = select(OutboxMessage).where(OutboxMessage.template == template)
        return list((await session.exec(query)).all())

    return _in_db(url, work)


def test_a_whole_consultation_runs_from_the_command_line(cli, empty_database_url, clock, tmp_path):
    url = empty_database_url
    env = {"PALABRE_DATABASE_URL": url}
    assert cli("init", TOML, env=env).exit_code == 0
    assert cli("participants", "import", CSV, env=env).exit_code == 0
    _consent_everyone(url)
    people = _people(url)
    assert len(people) == 28

    # Observe: opened on time, refused an early close, closed with a logged override.
    clock.set(datetime(2027, 1, 11, 9, 0, tzinfo=PARIS))
    opened = cli("phase", "open", "observe", env=env)
    assert opened.exit_code == 0, opened.output
    assert (
        "The phase “Observations” is open until 2027-02-01 18:00 (Europe/Paris)." in opened.output
    )

    async def observe(session):
        made = []
        for person, text in zip(
            people,
            [
                "Les petites coopératives n'ont pas d'accompagnement adapté.",
                "Aucun accompagnement pour les SCOP de moins de 5 salariés.",
                "Je voudrais une subvention pour mon association.",
                "Le foncier en centre-ville est inaccessible aux structures de l'ESS.",
            ],
            strict=False,
        ):
            made.append(
                await observations.submit_observation(
                    session=session, participant=person, text=text, channel=Channel.EMAIL
                )
            )
        return [o.id for o in made]

    o1, o2, o3, o4 = _in_db(url, observe)
    listed = cli("observations", "list", "--pending", env=env)
    assert "4 observations" in listed.output and "subvention" in listed.output
    assert people[0].name not in listed.output
    out = cli("observations", "moderate", str(o3), "--out", env=env)
    assert out.exit_code == 1 and "out of scope" in out.output
    out = cli(
        "observations",
        "moderate",
        str(o3),
        "--out",
        "--reason",
        "Les demandes de subvention individuelles sont hors champ.",
        env=env,
    )
    assert out.exit_code == 0, out.output
    assert len(_rows(url, "observation_out_of_scope")) == 1
    assert cli("observations", "merge", str(o2), "--into", str(o1), env=env).exit_code == 0

    clock.set(datetime(2027, 1, 18, 9, 0, tzinfo=PARIS))
    early = cli("phase", "close", "observe", env=env)
    assert early.exit_code == 1
    assert "too early to close" in early.output
    forced = cli(
        "phase", "close", "observe", "--force", "--reason", "Séance plénière avancée", env=env
    )
    assert forced.exit_code == 0, forced.output
    assert cli("phase", "close", "observe", env=env).exit_code == 0  # idempotent

    async def audit_of_close(session):
        return (
            await session.exec(select(AuditEvent).where(AuditEvent.action == "phase.closed"))
        ).all()

    [event] = _in_db(url, audit_of_close)
    assert (event.actor_label, event.reason, event.detail["forced"]) == (
        "cli",
        "Séance plénière avancée",
        True,
    )

    # Review: the findings file is applied and published once to the 28 participants.
    clock.set(datetime(2027, 2, 1, 18, 0, tzinfo=PARIS))
    opened = cli("phase", "open", "review", env=env)
    assert (
        "The phase “Review of the findings” is open until 2027-02-22 18:00 (Europe/Paris)."
        in opened.output
    )
    findings_file = tmp_path / "constats.md"
    findings_file.write_text(
        "# Constats provisoires\n\n"
        f"## F1\nobservations: {o1}, {o2}\n\n"
        "Les petites coopératives manquent d'un accompagnement adapté.\n\n"
        f"## F2\nobservations: {o4}\n\nLe foncier est inaccessible à l'ESS.\n",
        encoding="utf-8",
    )
    published = cli("findings", "publish", str(findings_file), env=env)
    assert published.exit_code == 0, published.output
    assert "New: F1 F2" in published.output
    assert "Published: F1 F2 (28 participants notified)" in published.output
    again = cli("findings", "publish", str(findings_file), env=env)
    assert "Unchanged: F1 F2" in again.output and "Nothing new to publish." in again.output
    assert len(_rows(url, "findings_published")) == 28
    listed = cli("findings", "list", "--json", env=env)
    assert [row["observations"] for row in json.loads(listed.output)] == [[o1], [o4]]

    async def answer(session):
        for n, person in enumerate(people[:6]):
            choice = ("confirm", "confirm", "contest")[n % 3]
            reason = "Les coops sont bien suivies par l'URSCOP." if choice == "contest" else None
            await findings.record_stance(
                session=session,
                participant=person,
                code="F1",
                choice=choice,
                reason=reason,
                channel=Channel.EMAIL,
            )

    _in_db(url, answer)
    extended = cli(
        "phase",
        "extend",
        "review",
        "--until",
        "2027-02-26 18:00",
        "--reason",
        "Vacances d'hiver",
        env=env,
    )
    assert extended.exit_code == 0, extended.output
    assert "now closes on 2027-02-26 18:00" in extended.output
    too_far = cli(
        "phase", "extend", "review", "--until", "2027-04-30 18:00", "--reason", "x", env=env
    )
    assert too_far.exit_code == 1 and "maximum duration" in too_far.output

    # Propose and rank: actions added by the coordinators, shortlisted, paper ballots imported.
    clock.set(datetime(2027, 2, 27, 9, 0, tzinfo=PARIS))
    assert cli("phase", "close", "review", env=env).exit_code == 0
    assert cli("phase", "open", "propose", env=env).exit_code == 0
    for text in ("Un guichet unique de l'ESS", "Une foncière solidaire", "Un guichet ESS unique"):
        added = cli("actions", "add", text, "--answers", "F1,F2", env=env)
        assert added.exit_code == 0, added.output
    assert "A3 merged into A1." in cli("actions", "merge", "A3", "--into", "A1", env=env).output
    shortlisted = cli("actions", "shortlist", "A1", "A2", env=env)
    assert "Shortlist: A1 A2" in shortlisted.output
    listed = json.loads(cli("actions", "list", "--json", env=env).output)
    assert [(a["code"], a["status"], a["merged_into"]) for a in listed] == [
        ("A1", "shortlisted", None),
        ("A2", "shortlisted", None),
        ("A3", "merged", "A1"),
    ]
    assert cli("phase", "close", "propose", "--force", "--reason", "Comité", env=env).exit_code == 0
    assert cli("phase", "open", "rank", env=env).exit_code == 0

    bad = tmp_path / "bulletins.csv"
    bad.write_text(
        "email,ranking\n"
        f"{people[0].email},A1 A2\n"
        f"{people[1].email},A2 A7\n"
        "inconnu@example.org,A1\n",
        encoding="utf-8",
    )
    refused = cli("ballots", "import", str(bad), env=env)
    assert refused.exit_code == 1
    assert "line 3: A7 is not on the shortlist. The actions to rank are: A1 A2." in refused.output
    assert "line 4: No participant has the address inconnu@example.org." in refused.output
    assert "Nothing imported" in refused.output
    good = tmp_path / "bulletins-ok.csv"
    good.write_text(
        "email,ranking\n"
        + "".join(f"{p.email},{'A1 A2' if n % 3 else 'A2'}\n" for n, p in enumerate(people[:9])),
        encoding="utf-8",
    )
    imported = cli("ballots", "import", str(good), env=env)
    assert imported.exit_code == 0, imported.output
    assert "9 ballots imported (0 replaced an earlier ballot)." in imported.output

    # Results, as JSON and as text, name nobody.
    document = json.loads(cli("results", "--json", env=env).output)
    f1 = document["findings"][0]
    assert (f1["code"], f1["confirm"], f1["contest"], f1["confirmation_rate"]) == (
        "F1",
        4,
        2,
        0.6667,
    )
    assert f1["contest_reasons"] == ["Les coops sont bien suivies par l'URSCOP."] * 2
    assert document["ranking"]["ballots"] == 9
    assert document["ranking"]["overall"]["tiers"] == [["A1"], ["A2"]]
    assert "association" in document["participation"]["by_category"]
    text = cli("results", env=env)
    assert text.exit_code == 0, text.output
    assert "67% confirmed: 4 confirmations, 2 contestations, 0 abstentions" in text.output
    for person in people:
        assert person.name not in text.output
        assert person.name not in json.dumps(document, ensure_ascii=False)


def test_an_unknown_phase_kind_and_a_bad_date_are_explained(cli, empty_database_url, clock):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    cli("init", TOML, env=env)
    unknown = cli("phase", "open", "vote", env=env)
    assert unknown.exit_code == 1
    assert 'no "vote" phase' in unknown.output
    bad_date = cli("phase", "extend", "observe", "--until", "demain", "--reason", "x", env=env)
    assert bad_date.exit_code == 1 and "is not a date and time" in bad_date.output
    empty = cli("results", "--json", env=env)
    assert empty.exit_code == 0, empty.output
    document = json.loads(empty.output)
    assert document["findings"] == [] and document["ranking"]["candidates"] == []
    assert "No finding published yet." in cli("results", env=env).output


def test_a_findings_file_with_a_mistake_changes_nothing(cli, empty_database_url, clock, tmp_path):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    cli("init", TOML, env=env)
    broken = tmp_path / "constats.md"
    broken.write_text("## F1\nTexte\n\n## Constat deux\nTexte\n", encoding="utf-8")
    result = cli("findings", "publish", str(broken), env=env)
    assert result.exit_code == 1
    assert "constats.md: line 4: a heading must be a finding code" in result.output

    async def count(session):
        target = await get_consultation(session=session)
        return await findings.findings_of(session=session, consultation_id=target.id)

    assert _in_db(empty_database_url, count) == []


def test_a_findings_file_naming_an_unknown_observation_says_which_line(
    cli, empty_database_url, clock, tmp_path
):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    cli("init", TOML, env=env)
    clock.set(datetime(2027, 2, 1, 18, 0, tzinfo=PARIS))
    assert cli("phase", "open", "review", env=env).exit_code == 0
    findings_file = tmp_path / "constats.md"
    findings_file.write_text(
        "## F1\nLe foncier manque.\n\n## F2\nobservations: 404\n\nLes coops sont isolées.\n",
        encoding="utf-8",
    )
    result = cli("findings", "publish", str(findings_file), env=env)
    assert result.exit_code == 1
    assert "constats.md: line 4: There is no observation number 404." in result.output
    listed = cli("findings", "list", "--json", env=env)
    assert json.loads(listed.output) == []
