"""Findings: drafts, versions, publication, stances and their results."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlmodel import select

from consultation import clock as clock_module
from consultation import findings, phases
from consultation.errors import DefinitionError, NotFound, PermissionDenied, PhaseClosed, UserError
from models import (
    Channel,
    Finding,
    FindingStatus,
    FindingVersion,
    Observation,
    OutboxMessage,
    ScopeStatus,
    Stance,
)
from tests.factories import make_consultation, make_coordinator, make_participant


async def _observation(session, consultation, author, text, status=ScopeStatus.PENDING):
    observation = Observation(
        consultation_id=consultation.id,
        author_id=author.id if author else None,
        text=text,
        channel=Channel.TELEGRAM,
        scope_status=status,
        created_at=clock_module.now(),
    )
    session.add(observation)
    await session.flush()
    return observation


async def _review(db, people=3, **options):
    """A consultation in review with `people` participants on Telegram and a coordinator."""
    async with db.session() as session:
        c = await make_consultation(session, current="review", **options)
        crowd = [
            await make_participant(
                session,
                c,
                name=f"Personne nommée {n}",
                category=("association", "cooperative", "elected")[n % 3],
                telegram_chat_id=1000 + n,
            )
            for n in range(people)
        ]
        celine = await make_coordinator(session, c, telegram_chat_id=999)
    return c, crowd, celine


async def _draft(db, c, by, *texts):
    async with db.session() as session:
        return [
            await findings.draft_finding(session=session, consultation_id=c.id, by=by, text=text)
            for text in texts
        ]


async def _publish(db, c, by, codes=None):
    async with db.session() as session:
        return await findings.publish_findings(
            session=session, consultation_id=c.id, by=by, codes=codes
        )


async def _answer(db, person, code, choice, reason=None):
    async with db.session() as session:
        return await findings.record_stance(
            session=session,
            participant=person,
            code=code,
            choice=choice,
            reason=reason,
            channel=Channel.TELEGRAM,
        )


async def _rows(db, template=None):
    async with db.session() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if template:
            query = query.where(OutboxMessage.template == template)
        return list((await session.exec(query)).all())


async def test_coordinators_draft_findings_coded_in_order_from_in_scope_observations(db, clock):
    c, [aicha, *_], celine = await _review(db)
    async with db.session() as session:
        kept = await _observation(session, c, aicha, "Pas de foncier")
        merged = await _observation(session, c, aicha, "Foncier rare", ScopeStatus.MERGED)
        merged.duplicate_of_id = kept.id
        out = await _observation(session, c, aicha, "Ma subvention", ScopeStatus.OUT_OF_SCOPE)
        first = await findings.draft_finding(
            session=session,
            consultation_id=c.id,
            by=celine,
            text="Le foncier manque.",
            observation_ids=[kept.id, merged.id],
        )
        second = await findings.draft_finding(
            session=session, consultation_id=c.id, by=celine, text="Les coops sont isolées."
        )
        linked = await findings.observation_ids_of(session=session, finding=first)
    assert (first.code, second.code) == ("F1", "F2")
    assert first.status == FindingStatus.DRAFT
    assert linked == [kept.id]  # a duplicate counts as the observation it merged into
    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await findings.draft_finding(
                session=session, consultation_id=c.id, by=celine, text="x", observation_ids=[out.id]
            )
    assert caught.value.code == "finding.observation_out_of_scope"
    with pytest.raises(NotFound):
        async with db.session() as session:
            await findings.draft_finding(
                session=session, consultation_id=c.id, by=celine, text="x", observation_ids=[999]
            )


async def test_a_participant_cannot_draft_edit_or_publish(db, clock):
    c, [aicha, *_], celine = await _review(db)
    [f1] = await _draft(db, c, celine, "Le foncier manque.")
    for attempt in (
        lambda s: findings.draft_finding(session=s, consultation_id=c.id, by=aicha, text="x"),
        lambda s: findings.edit_finding(session=s, finding_id=f1.id, by=aicha, text="y"),
        lambda s: findings.publish_findings(session=s, consultation_id=c.id, by=aicha),
    ):
        with pytest.raises(PermissionDenied):
            async with db.session() as session:
                await attempt(session)


async def test_publishing_to_n_participants_writes_n_messages_and_again_writes_nothing(db, clock):
    c, crowd, celine = await _review(db, people=3)
    async with db.session() as session:
        by_email = await make_participant(session, c, email="moussa@example.org")
        stopped = await make_participant(session, c, telegram_chat_id=2001)
        stopped.opted_out_at = clock.now()
        session.add(stopped)
    await _draft(db, c, celine, "Le foncier manque.", "Les coops sont isolées.")

    published = await _publish(db, c, celine)
    assert [f.code for f in published] == ["F1", "F2"]
    rows = await _rows(db, "findings_published")
    assert sorted(r.participant_id for r in rows) == sorted([p.id for p in crowd] + [by_email.id])
    for row in rows:
        assert sorted(row.payload["codes"]) == ["F1", "F2"]
        assert row.payload["count"] == 2
        assert row.payload["timezone"] == "Europe/Paris"
        assert row.payload["deadline"]
        assert [f["code"] for f in row.payload["findings"]] == row.payload["codes"]

    assert await _publish(db, c, celine) == []
    assert await _publish(db, c, celine, codes=["F1", "F2"]) == []
    assert len(await _rows(db, "findings_published")) == 4

    await _draft(db, c, celine, "L'ESS est mal connue des jeunes.")
    await _publish(db, c, celine)
    later = (await _rows(db, "findings_published"))[4:]
    assert len(later) == 4
    assert all(row.payload["codes"] == ["F3"] for row in later)


async def test_findings_are_published_only_during_the_review_phase(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        celine = await make_coordinator(session, c)
    await _draft(db, c, celine, "Le foncier manque.")
    with pytest.raises(PhaseClosed) as caught:
        await _publish(db, c, celine)
    assert caught.value.params == {"kind": "review", "current": "observe"}


async def test_confirm_contest_with_a_reason_or_abstain_and_change_it_until_review_closes(
    db, clock
):
    c, [aicha, *_], celine = await _review(db, min_days=1)
    await _draft(db, c, celine, "Le foncier manque.", "Brouillon non publié")
    await _publish(db, c, celine, codes=["F1"])

    with pytest.raises(UserError) as caught:
        await _answer(db, aicha, "F1", "contest", reason="   ")
    assert (caught.value.code, caught.value.params) == ("stance.reason_required", {"finding": "F1"})
    with pytest.raises(UserError) as caught:
        await _answer(db, aicha, "F1", "maybe")
    assert caught.value.code == "stance.bad_choice"
    with pytest.raises(NotFound) as caught:
        await _answer(db, aicha, "F2", "confirm")  # a draft does not exist for participants
    assert caught.value.code == "finding.unknown"

    await _answer(db, aicha, "f1", "confirm")
    await _answer(db, aicha, "F1", "contest", reason="Il y a des friches disponibles.")
    changed = await _answer(db, aicha, "F1", "abstain")
    async with db.session() as session:
        stances = (await session.exec(select(Stance))).all()
        finding = await findings.get_finding(session=session, consultation_id=c.id, code="F1")
        mine = await findings.stance_of(session=session, participant=aicha, finding=finding)
    assert len(stances) == 1
    assert mine.id == changed.id and mine.choice == "abstain"

    clock.advance(days=2)
    async with db.session() as session:
        review = await phases.current_phase(session=session, consultation_id=c.id)
        await phases.close_phase(session=session, phase_id=review.id, actor_label="cli")
    with pytest.raises(PhaseClosed):
        await _answer(db, aicha, "F1", "confirm")


async def test_two_answers_at_the_same_moment_leave_one_stance(db, clock):
    c, [aicha, *_], celine = await _review(db, people=1)
    await _draft(db, c, celine, "Le foncier manque.")
    await _publish(db, c, celine)

    for _ in range(5):
        results = await asyncio.gather(
            _answer(db, aicha, "F1", "confirm"),
            _answer(db, aicha, "F1", "contest", reason="Pas d'accord"),
        )
        assert {r.choice for r in results} == {"confirm", "contest"}
        async with db.session() as session:
            stances = (await session.exec(select(Stance))).all()
        assert len(stances) == 1
        assert stances[0].choice in {"confirm", "contest"}


async def test_a_new_version_asks_again_those_who_answered_the_old_one_and_only_them(db, clock):
    c, [aicha, julien, sophie], celine = await _review(db, people=3)
    [f1] = await _draft(db, c, celine, "Le foncier manque.")
    await _publish(db, c, celine)
    await _answer(db, aicha, "F1", "contest", reason="Trop vague")
    await _answer(db, julien, "F1", "confirm")

    async with db.session() as session:
        same = await findings.edit_finding(
            session=session, finding_id=f1.id, by=celine, text="Le foncier manque."
        )
        assert same.version == 1
        revised = await findings.edit_finding(
            session=session,
            finding_id=f1.id,
            by=celine,
            text="Le foncier abordable manque aux coopératives.",
        )
    assert revised.version == 2 and revised.published_at is not None
    asked = await _rows(db, "finding_revised")
    assert {r.participant_id: r.payload["previous_choice"] for r in asked} == {
        aicha.id: "contest",
        julien.id: "confirm",
    }
    assert asked[0].payload["text"] == "Le foncier abordable manque aux coopératives."
    assert asked[0].payload["version"] == 2

    async with db.session() as session:
        views = await findings.findings_for(session=session, participant=aicha)
        untouched = await findings.findings_for(session=session, participant=sophie)
        finding = await session.get(Finding, f1.id)
        assert await findings.stance_of(session=session, participant=aicha, finding=finding) is None
    assert [(v.code, v.version, v.choice, v.previous_choice) for v in views] == [
        ("F1", 2, None, "contest")
    ]
    assert [(v.code, v.previous_choice) for v in untouched] == [("F1", None)]

    # Sophie never answered: she is not asked again when version 3 comes, nor is Julien, who
    # has not answered version 2.
    await _answer(db, aicha, "F1", "confirm")
    async with db.session() as session:
        await findings.edit_finding(
            session=session, finding_id=f1.id, by=celine, text="Le foncier abordable manque."
        )
    asked = await _rows(db, "finding_revised")
    assert [r.participant_id for r in asked[2:]] == [aicha.id]


async def test_a_button_under_an_older_wording_answers_nothing_and_shows_the_new_one(db, clock):
    c, [aicha], celine = await _review(db, people=1)
    [f1, _] = await _draft(db, c, celine, "Le foncier manque.", "Un brouillon.")
    await _publish(db, c, celine, codes=["F1"])

    async with db.session() as session:
        answered = await findings.answer(
            session=session,
            participant=aicha,
            code="F1",
            version=1,
            choice="confirm",
            channel=Channel.TELEGRAM,
        )
        await findings.edit_finding(
            session=session, finding_id=f1.id, by=celine, text="Le foncier abordable manque."
        )
    assert (answered.version, answered.choice) == (1, "confirm")

    async with db.session() as session:
        # Aicha taps Abstain under the message that still shows version 1.
        stale = await findings.answer(
            session=session,
            participant=aicha,
            code="F1",
            version=1,
            choice="abstain",
            channel=Channel.TELEGRAM,
        )
        draft = await findings.answer(
            session=session, participant=aicha, code="F2", version=1, channel=Channel.TELEGRAM
        )
        finding = await session.get(Finding, f1.id)
        assert await findings.stance_of(session=session, participant=aicha, finding=finding) is None
    assert (stale.version, stale.text, stale.choice, stale.previous_choice) == (
        2,
        "Le foncier abordable manque.",
        None,
        "confirm",
    )
    assert draft is None


async def test_a_published_finding_no_longer_changes_once_review_is_over(db, clock):
    c, _, celine = await _review(db, min_days=0)
    [f1] = await _draft(db, c, celine, "Le foncier manque.")
    await _publish(db, c, celine)
    async with db.session() as session:
        review = await phases.current_phase(session=session, consultation_id=c.id)
        await phases.close_phase(session=session, phase_id=review.id, actor_label="cli")
    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await findings.edit_finding(session=session, finding_id=f1.id, by=celine, text="Autre")
    assert caught.value.code == "finding.review_closed"


async def test_confirmation_rates_overall_and_per_category_with_abstentions_apart(db, clock):
    c, crowd, celine = await _review(db, people=6)
    # crowd categories: association, cooperative, elected, association, cooperative, elected
    await _draft(db, c, celine, "Le foncier manque.", "Personne n'a d'avis.")
    await _publish(db, c, celine)
    await _answer(db, crowd[0], "F1", "confirm")
    await _answer(db, crowd[3], "F1", "confirm")
    await _answer(db, crowd[1], "F1", "contest", reason="Zéro friche en ville")
    await _answer(db, crowd[4], "F1", "confirm")
    await _answer(db, crowd[2], "F1", "abstain")
    await _answer(db, crowd[5], "F1", "contest", reason="au contraire, trop de foncier")
    await _answer(db, crowd[0], "F2", "abstain")

    async with db.session() as session:
        f1, f2 = await findings.finding_results(session=session, consultation_id=c.id)
    assert (f1["confirm"], f1["contest"], f1["abstain"], f1["answers"]) == (3, 2, 1, 6)
    assert f1["confirmation_rate"] == 0.6
    assert f1["by_category"]["association"]["confirmation_rate"] == 1.0
    assert f1["by_category"]["cooperative"]["confirmation_rate"] == 0.5
    assert f1["by_category"]["elected"] == {
        "confirm": 0,
        "contest": 1,
        "abstain": 1,
        "answers": 2,
        "confirmation_rate": 0.0,
    }
    assert f1["by_category"]["citizen"]["confirmation_rate"] is None
    assert f1["contest_reasons"] == ["au contraire, trop de foncier", "Zéro friche en ville"]
    assert f2["confirmation_rate"] is None and f2["abstain"] == 1


async def test_each_person_sees_the_findings_in_an_order_of_their_own_that_stays(db, clock):
    c, crowd, celine = await _review(db, people=6)
    await _draft(db, c, celine, *[f"Constat numéro {n}" for n in range(1, 9)])
    await _publish(db, c, celine)
    await _answer(db, crowd[0], "F3", "confirm")
    async with db.session() as session:
        orders = [
            [v.code for v in await findings.findings_for(session=session, participant=p)]
            for p in crowd
        ]
        again = [v.code for v in await findings.findings_for(session=session, participant=crowd[1])]
        everything = await findings.findings_for(
            session=session, participant=crowd[0], awaiting_only=False
        )
    assert again == orders[1]
    assert len({tuple(order) for order in orders[1:]}) > 1
    assert "F3" not in orders[0] and len(orders[0]) == 7
    assert [v.code for v in everything if v.choice] == ["F3"]
    rows = await _rows(db, "findings_published")
    assert {tuple(r.payload["codes"]) for r in rows} != {tuple(f"F{n}" for n in range(1, 9))}


async def test_nothing_a_participant_sees_carries_another_participants_name(db, clock):
    c, crowd, celine = await _review(db, people=4)
    [f1] = await _draft(db, c, celine, "Le foncier manque.")
    await _publish(db, c, celine)
    await _answer(db, crowd[0], "F1", "contest", reason="Pas assez précis")
    async with db.session() as session:
        await findings.edit_finding(session=session, finding_id=f1.id, by=celine, text="Précis.")
        views = await findings.findings_for(session=session, participant=crowd[1])
        results = await findings.finding_results(session=session, consultation_id=c.id)
    seen = json.dumps(
        [r.payload for r in await _rows(db)] + [v.as_dict() for v in views] + results,
        ensure_ascii=False,
    )
    for person in [*crowd, celine]:
        assert person.name not in seen
        assert person.email not in seen


FINDINGS_FILE = """# Constats provisoires — relus le 2 mars

## F1
observations: {a}, {b}

Les petites coopératives n'ont pas d'accompagnement spécifique.

## F2
observations = [{b}]

Le foncier abordable manque.
Surtout en centre-ville.
"""


async def test_a_findings_file_is_applied_and_applying_it_again_changes_nothing(db, clock):
    c, [aicha, julien, _], _celine = await _review(db, people=3)
    async with db.session() as session:
        a = await _observation(session, c, aicha, "Pas d'accompagnement")
        b = await _observation(session, c, julien, "Pas de foncier")
    drafts = findings.parse_findings_file(FINDINGS_FILE.format(a=a.id, b=b.id), "f.md")
    assert [(d.code, d.observation_ids, d.line) for d in drafts] == [
        ("F1", [a.id, b.id], 3),
        ("F2", [b.id], 8),
    ]
    assert drafts[1].text == "Le foncier abordable manque.\nSurtout en centre-ville."

    async with db.session() as session:
        report = await findings.apply_drafts(
            session=session, consultation_id=c.id, drafts=drafts, by=None, actor_label="cli"
        )
    assert (report.created, report.published, report.told) == (["F1", "F2"], ["F1", "F2"], 3)
    async with db.session() as session:
        again = await findings.apply_drafts(
            session=session, consultation_id=c.id, drafts=drafts, by=None, actor_label="cli"
        )
    assert again.as_dict() == {
        "created": [],
        "revised": [],
        "relinked": [],
        "unchanged": ["F1", "F2"],
        "published": [],
        "told": 0,
    }
    await _answer(db, aicha, "F2", "confirm")
    edited = FINDINGS_FILE.format(a=a.id, b=b.id).replace("Surtout", "Surtout et partout")
    async with db.session() as session:
        third = await findings.apply_drafts(
            session=session,
            consultation_id=c.id,
            drafts=findings.parse_findings_file(edited),
            by=None,
            actor_label="cli",
        )
        versions = (await session.exec(select(FindingVersion))).all()
    assert third.revised == [{"code": "F2", "version": 2, "asked_again": 1}]
    assert len(versions) == 3
    assert len(await _rows(db, "findings_published")) == 3


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Rien ici", "no finding found"),
        ("## Constat 1\nTexte", "line 1"),
        ("## F1\nTexte\n## F1\nAutre", "F1 appears twice"),
        ("## F1\nobservations: 3, x\nTexte", "line 2"),
        ("## F1\n\n## F2\nTexte", "F1 has no text"),
    ],
)
def test_a_findings_file_with_a_problem_names_its_line(text, problem):
    with pytest.raises(DefinitionError, match=problem):
        findings.parse_findings_file(text, "f.md")
