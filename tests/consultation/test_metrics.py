"""Participation metrics: who contributes, when, how concentrated, which groups go unheard."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from consultation import actions, findings, metrics, observations, phases, questionnaires
from models import Channel
from tests.consultation.evaluation_story import move_on
from tests.factories import make_consultation, make_coordinator, make_participant

TG = Channel.TELEGRAM


async def observe(session, person, times: int = 1) -> None:
    for number in range(times):
        await observations.submit_observation(
            session=session, participant=person, text=f"Constat numéro {number + 1}.", channel=TG
        )


async def test_contributions_are_counted_per_phase_and_per_category(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session, rules={"daily_cap": 50})
        coordinator = await make_coordinator(session, consultation)
        aicha = await make_participant(session, consultation, category="association")
        bruno = await make_participant(session, consultation, category="elected")
        chloe = await make_participant(session, consultation, category="association")
        await observe(session, aicha, 2)
        await observe(session, bruno)

        await move_on(session, consultation, "review", clock)
        await findings.draft_finding(
            session=session, consultation_id=consultation.id, by=coordinator, text="Un constat."
        )
        await findings.publish_findings(
            session=session, consultation_id=consultation.id, by=coordinator
        )
        await findings.record_stance(
            session=session, participant=chloe, code="F1", choice="confirm", channel=TG
        )
        await findings.record_stance(
            session=session,
            participant=bruno,
            code="F1",
            choice="contest",
            reason="Pas chez nous.",
            channel=TG,
        )
        await move_on(session, consultation, "propose", clock)
        await actions.propose_action(
            session=session, participant=chloe, text="Un guichet unique.", channel=TG
        )

        table = await metrics.by_phase(session=session, consultation=consultation)

        kinds = [row["kind"] for row in table]
        assert kinds == ["observe", "review", "propose", "rank", "evaluate"]
        observe_row, review_row, propose_row, rank_row, _ = table
        assert (observe_row["contributors"], observe_row["contributions"]) == (2, 3)
        assert observe_row["by_category"]["association"] == {"contributors": 1, "contributions": 2}
        assert observe_row["by_category"]["elected"] == {"contributors": 1, "contributions": 1}
        assert observe_row["by_category"]["citizen"] == {"contributors": 0, "contributions": 0}
        assert (review_row["contributors"], review_row["contributions"]) == (2, 2)
        assert propose_row["status"] == "open" and propose_row["contributors"] == 1
        assert rank_row["opened_at"] is None and rank_row["contributors"] == 0

        counts = await metrics.contributors(session=session, consultation_id=consultation.id)
        assert counts == {aicha.id: 2, bruno.id: 2, chloe.id: 2}
        by_category = await metrics.participation_by_category(
            session=session, consultation=consultation
        )
        # The coordinator is an association too, and is not counted among those invited.
        assert by_category["association"]["invited"] == 2
        assert by_category["association"]["contributed"] == 2
        assert by_category["elected"]["contributed"] == 1


async def test_a_contribution_belongs_to_the_phase_open_when_it_was_made(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session, questionnaires=True)
        aicha = await make_participant(session, consultation)
        await observe(session, aicha)
        await move_on(session, consultation, "review", clock)
        step = await questionnaires.get_questionnaire(
            session=session, consultation_id=consultation.id, key="after-observe"
        )
        await questionnaires.open_questionnaire(session=session, questionnaire_id=step.id)
        # Answering the observe questionnaire during review is review-time participation, and
        # several answers to one questionnaire are one contribution.
        for position, value in ((1, 4), (2, 1)):
            await questionnaires.answer_question(
                session=session,
                participant=aicha,
                questionnaire_key=step.key,
                position=position,
                value=value,
                channel=TG,
            )
        table = await metrics.by_phase(session=session, consultation=consultation)
        assert [row["contributions"] for row in table[:2]] == [1, 1]
        observe_phase = next(
            p
            for p in await phases.phases_of(session=session, consultation_id=consultation.id)
            if p.kind == "observe"
        )
        assert await metrics.contributors_in_phase(session=session, phase=observe_phase) == {
            aicha.id
        }
        # A skipped question alone is no contribution.
        bruno = await make_participant(session, consultation)
        await questionnaires.skip_question(
            session=session, participant=bruno, questionnaire_key=step.key, position=1, channel=TG
        )
        assert bruno.id not in await metrics.contributors(
            session=session, consultation_id=consultation.id
        )


@pytest.mark.parametrize(
    ("counts", "top", "top_contributions", "share"),
    [
        ({}, 0, 0, None),
        ({1: 5}, 1, 5, 1.0),
        # 10 contributors: the top 10% is one person, 19 of 28 contributions.
        ({i: (19 if i == 0 else 1) for i in range(10)}, 1, 19, 0.6786),
        # 11 contributors: ceil(1.1) = 2 people.
        ({i: (10 if i < 2 else 1) for i in range(11)}, 2, 20, 0.6897),
        # Ties at the boundary do not matter: tied people count the same.
        ({1: 3, 2: 3, 3: 3}, 1, 3, 0.3333),
        # Someone with no contribution is not a contributor.
        ({1: 4, 2: 0}, 1, 4, 1.0),
    ],
)
def test_the_most_active_tenth_is_the_ceiling_of_ten_percent_of_contributors(
    counts, top, top_contributions, share
):
    result = metrics.concentration_of(counts)
    assert result["top_contributors"] == top
    assert result["top_contributions"] == top_contributions
    assert result["share_of_contributions"] == (share if share is None else pytest.approx(share))


async def test_concentration_over_a_consultation_leaves_coordinators_out(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session, rules={"daily_cap": 50})
        coordinator = await make_coordinator(session, consultation)
        people = [await make_participant(session, consultation) for _ in range(12)]
        await observe(session, people[0], 10)
        await observe(session, people[1], 5)
        for person in people[2:]:
            await observe(session, person)
        await observe(session, coordinator, 20)

        result = await metrics.concentration(session=session, consultation_id=consultation.id)

        assert result["contributors"] == 12
        assert result["contributions"] == 25
        assert result["top_contributors"] == 2  # ceil(1.2)
        assert result["top_contributions"] == 15
        assert result["share_of_contributions"] == pytest.approx(0.6)


async def test_a_category_is_flagged_when_its_voice_is_below_three_quarters_of_its_size(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        await make_coordinator(session, consultation, category="elected")
        associations = [await make_participant(session, consultation) for _ in range(10)]
        citizens = [
            await make_participant(session, consultation, category="citizen") for _ in range(10)
        ]
        elected = [
            await make_participant(session, consultation, category="elected") for _ in range(4)
        ]
        for person in associations[:8] + citizens[:2]:
            await observe(session, person)

        table = await metrics.representation(session=session, consultation=consultation)

        assert [row["contributors"] for row in table.values()] == [8, 0, 0, 2]
        assert all(person.category == "elected" for person in elected)
        # 24 invited, 10 contributors. Associations: 10/24 invited, 8/10 contributing.
        assert table["association"]["invited_share"] == pytest.approx(10 / 24, abs=1e-4)
        assert table["association"]["contributor_share"] == 0.8
        assert table["association"]["under_represented"] is False
        # Residents: 10/24 invited but 2/10 contributing, ratio 0.48 < 0.75.
        assert table["citizen"]["ratio"] == pytest.approx(0.48)
        assert table["citizen"]["under_represented"] is True
        # Elected officials: nobody contributes, but only 4 are invited (< 5): too few to flag.
        assert table["elected"]["ratio"] == 0.0
        assert table["elected"]["under_represented"] is False
        # An empty category has no share to fall short of.
        assert table["cooperative"]["invited"] == 0
        assert table["cooperative"]["ratio"] is None
        assert table["cooperative"]["under_represented"] is False


async def test_nothing_is_flagged_before_anyone_contributes(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        for _ in range(6):
            await make_participant(session, consultation, category="citizen")
        table = await metrics.representation(session=session, consultation=consultation)
        assert table["citizen"]["contributor_share"] is None
        assert not any(row["under_represented"] for row in table.values())


async def test_the_participation_report_is_plain_json(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation)
        await observe(session, person)
        clock.advance(timedelta(hours=1))
        report = await metrics.participation_report(session=session, consultation=consultation)
        assert set(report) == {
            "by_category",
            "by_phase",
            "concentration",
            "representation",
            "rules",
        }
        assert json.loads(json.dumps(report)) == report
        assert report["rules"]["under_represented_ratio"] == 0.75
