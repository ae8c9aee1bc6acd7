"""Actions and ballots: proposals, merges, the shortlist, ballots and the ranking."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlmodel import select

from consultation import actions, findings
from consultation.errors import NotFound, PermissionDenied, PhaseClosed, UserError
from models import ActionFinding, ActionStatus, Ballot, Channel
from tests.factories import make_consultation, make_coordinator, make_participant


async def _people(session, c, count, categories=("association", "cooperative")):
    return [
        await make_participant(
            session,
            c,
            name=f"Votant nommé {n}",
            category=categories[n % len(categories)],
            telegram_chat_id=3000 + n,
        )
        for n in range(count)
    ]


async def _propose(db, person, text):
    async with db.session() as session:
        return await actions.propose_action(
            session=session, participant=person, text=text, channel=Channel.TELEGRAM
        )


async def _add(db, c, text, by=None, answers=()):
    async with db.session() as session:
        return await actions.add_action(
            session=session,
            consultation_id=c.id,
            by=by,
            text=text,
            finding_codes=answers,
            actor_label="cli",
        )


async def _vote(db, person, *codes):
    async with db.session() as session:
        return await actions.cast_ballot(
            session=session, participant=person, codes=list(codes), channel=Channel.TELEGRAM
        )


async def _refused(coroutine) -> UserError:
    with pytest.raises(UserError) as caught:
        await coroutine
    return caught.value


async def _rank_phase(db, shortlisted=3, voters=4, rules=None):
    """A consultation in its rank phase with a shortlist A1..An."""
    async with db.session() as session:
        c = await make_consultation(session, current="rank", rules=rules)
        people = await _people(session, c, voters)
    for n in range(1, shortlisted + 1):
        await _add(db, c, f"Action {n}")
    async with db.session() as session:
        await actions.shortlist(
            session=session,
            consultation_id=c.id,
            by=None,
            codes=[f"A{n}" for n in range(1, shortlisted + 1)],
            actor_label="cli",
        )
    return c, people


async def test_participants_propose_actions_within_the_same_limits_as_observations(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="propose", rules={"daily_cap": 2})
        [aicha] = await _people(session, c, 1)
    first = await _propose(db, aicha, "  Un guichet unique pour les coops  ")
    second = await _propose(db, aicha, "Ouvrir la commande publique")
    assert (first.code, first.text, first.status) == (
        "A1",
        "Un guichet unique pour les coops",
        "proposed",
    )
    assert second.code == "A2"
    assert (await _refused(_propose(db, aicha, "Trois"))).code == "action.daily_cap"
    clock.advance(days=1)
    assert (await _refused(_propose(db, aicha, "x" * 1001))).params == {
        "limit": 1000,
        "length": 1001,
    }
    assert (await _refused(_propose(db, aicha, "\u200b"))).code == "action.empty"
    assert (await _refused(_propose(db, aicha, "bip\x07"))).code == "action.control_characters"


async def test_proposals_belong_to_the_propose_phase(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="review")
        [aicha] = await _people(session, c, 1)
    with pytest.raises(PhaseClosed) as caught:
        await _propose(db, aicha, "Un guichet unique")
    assert caught.value.params == {"kind": "propose", "current": "review"}


async def test_proposals_arriving_together_get_codes_of_their_own(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="propose")
        people = await _people(session, c, 5)
    made = await asyncio.gather(*[_propose(db, p, f"Idée {n}") for n, p in enumerate(people)])
    assert sorted(a.code for a in made) == ["A1", "A2", "A3", "A4", "A5"]


async def test_coordinators_add_actions_that_answer_findings_and_participants_cannot(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="propose")
        [aicha] = await _people(session, c, 1)
        celine = await make_coordinator(session, c)
        await findings.draft_finding(session=session, consultation_id=c.id, by=celine, text="F")
        await findings.draft_finding(session=session, consultation_id=c.id, by=celine, text="G")
    added = await _add(db, c, "Un fonds de garantie", by=celine, answers=["f1", "F2", "F1"])
    async with db.session() as session:
        assert await actions.finding_codes_of(session=session, action=added) == ["F1", "F2"]
    error = await _refused(_add(db, c, "Autre", by=celine, answers=["F9"]))
    assert isinstance(error, NotFound) and error.code == "finding.unknown"
    with pytest.raises(PermissionDenied):
        await _add(db, c, "Moi aussi", by=aicha)
    async with db.session() as session:
        with pytest.raises(PermissionDenied):
            await actions.shortlist(session=session, consultation_id=c.id, by=aicha, codes=["A1"])


async def test_duplicates_merge_and_hand_over_their_findings_and_shortlist_place(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="propose")
        celine = await make_coordinator(session, c)
        await findings.draft_finding(session=session, consultation_id=c.id, by=celine, text="F")
    await _add(db, c, "Guichet unique", answers=["F1"])
    await _add(db, c, "Un guichet pour tous")
    await _add(db, c, "Guichet commun")
    async with db.session() as session:
        await actions.shortlist(session=session, consultation_id=c.id, by=celine, codes=["A1"])
        merged = await actions.merge_action(
            session=session, consultation_id=c.id, code="A1", into_code="A2", by=celine
        )
        await actions.merge_action(
            session=session, consultation_id=c.id, code="A3", into_code="A2", by=celine
        )
        a2 = await actions.get_action(session=session, consultation_id=c.id, code="A2")
        links = (await session.exec(select(ActionFinding))).all()
    assert merged.status == ActionStatus.MERGED and merged.merged_into_id == a2.id
    assert a2.status == ActionStatus.SHORTLISTED
    assert sorted(link.action_id for link in links) == sorted([merged.id, a2.id])
    for code, into, expected in (("A2", "A1", "action.merged"), ("A2", "A2", "action.merge_self")):
        async with db.session() as session:
            error = await _refused(
                actions.merge_action(
                    session=session, consultation_id=c.id, code=code, into_code=into, by=celine
                )
            )
        assert error.code == expected


async def test_the_shortlist_is_set_whole_and_freezes_once_ballots_are_cast(db, clock):
    c, [aicha, *_] = await _rank_phase(db, shortlisted=3)
    await _add(db, c, "Action 4")
    async with db.session() as session:
        again = await actions.shortlist(
            session=session, consultation_id=c.id, by=None, codes=["A3", "A2", "A1"]
        )
        assert [a.code for a in again] == ["A1", "A2", "A3"]
        changed = await actions.shortlist(
            session=session, consultation_id=c.id, by=None, codes=["A1", "A2", "A4"]
        )
        a3 = await actions.get_action(session=session, consultation_id=c.id, code="A3")
    assert [a.code for a in changed] == ["A1", "A2", "A4"]
    assert a3.status == ActionStatus.PROPOSED
    await _vote(db, aicha, "A4")
    async with db.session() as session:
        error = await _refused(
            actions.shortlist(session=session, consultation_id=c.id, by=None, codes=["A1"])
        )
    assert error.code == "action.shortlist_frozen"


async def test_each_reader_sees_the_shortlist_in_a_stable_order_of_their_own(db, clock):
    _, people = await _rank_phase(db, shortlisted=8, voters=6)
    async with db.session() as session:
        orders = [
            [a.code for a in await actions.shortlist_for(session=session, participant=p)]
            for p in people
        ]
        again = [
            a.code for a in await actions.shortlist_for(session=session, participant=people[0])
        ]
    assert again == orders[0]
    assert all(sorted(order) == sorted(orders[0]) for order in orders)
    assert len({tuple(order) for order in orders}) > 1


async def test_a_ballot_is_a_top_k_of_the_shortlist_and_every_mistake_is_explained(db, clock):
    _, [aicha, *_] = await _rank_phase(db, shortlisted=5, rules={"ballot_k": 3})
    ballot = await _vote(db, aicha, "a3", "A1")
    async with db.session() as session:
        assert await actions.ballot_of(session=session, participant=aicha) == ["A3", "A1"]

    cases = [
        ((), "ballot.empty", {"k": 3}),
        (("A1", "A3", "A1"), "ballot.repeated", {"action": "A1"}),
        (("A9",), "ballot.not_shortlisted", {"action": "A9", "shortlist": "A1 A2 A3 A4 A5"}),
        (("A1", "A2", "A3", "A4"), "ballot.too_long", {"k": 3, "count": 4}),
    ]
    for codes, code, params in cases:
        error = await _refused(_vote(db, aicha, *codes))
        assert (error.code, error.params) == (code, params)

    replaced = await _vote(db, aicha, "A5", "A4", "A2")
    async with db.session() as session:
        ballots = (await session.exec(select(Ballot))).all()
        assert await actions.ballot_of(session=session, participant=aicha) == ["A5", "A4", "A2"]
    assert len(ballots) == 1 and replaced.id == ballot.id


async def test_ballots_are_cast_only_in_the_rank_phase(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="propose")
        [aicha] = await _people(session, c, 1)
    with pytest.raises(PhaseClosed):
        await _vote(db, aicha, "A1")


async def test_the_ranking_is_schulze_with_borda_beside_it_overall_and_per_category(db, clock):
    # Associations put A1 first, cooperatives A2: overall the two tie, and A3 comes last.
    c, [assoc1, coop1, assoc2, coop2] = await _rank_phase(db, shortlisted=3, voters=4)
    await _vote(db, assoc1, "A1", "A2")
    await _vote(db, assoc2, "A1")
    await _vote(db, coop1, "A2", "A1")
    await _vote(db, coop2, "A2")
    async with db.session() as session:
        result = await actions.ranking_results(session=session, consultation_id=c.id)
    overall = result["overall"]
    assert result["ballots"] == 4 and result["k"] == 3
    assert overall["tiers"] == [["A1", "A2"], ["A3"]]
    assert overall["borda"] == {"A1": 5.5, "A2": 5.5, "A3": 1.0}
    assert [(r["rank"], r["code"], r["tied"]) for r in overall["table"]] == [
        (1, "A1", True),
        (1, "A2", True),
        (3, "A3", False),
    ]
    assert result["by_category"]["association"]["tiers"][0] == ["A1"]
    assert result["by_category"]["cooperative"]["tiers"][0] == ["A2"]
    assert result["ballots_by_category"] == {
        "association": 2,
        "cooperative": 2,
        "elected": 0,
        "citizen": 0,
    }
    assert "Votant" not in json.dumps(result, ensure_ascii=False)


async def test_paper_ballots_import_whole_or_not_at_all(db, clock):
    c, [aicha, julien, sophie, moussa] = await _rank_phase(db, shortlisted=3)
    async with db.session() as session:
        gone = await make_participant(session, c, email="parti@example.org")
        gone.erased_at = clock.now()
        session.add(gone)
    await _vote(db, moussa, "A3")
    rows = [
        actions.BallotRow(2, aicha.email, "A1 A2"),
        actions.BallotRow(3, julien.email, "A2 A2"),
        actions.BallotRow(4, "nobody@example.org", "A1"),
        actions.BallotRow(5, aicha.email.upper(), "A3"),
        actions.BallotRow(6, "parti@example.org", "A1"),
        actions.BallotRow(7, sophie.email, "A1, A3 > A2"),
    ]
    async with db.session() as session:
        report = await actions.import_ballots(
            session=session, consultation_id=c.id, rows=rows, by=None, actor_label="cli"
        )
    assert [(line, error.code) for line, error in report.rejected] == [
        (3, "ballot.repeated"),
        (4, "participant.unknown_email"),
        (5, "ballot.duplicate_row"),
        (6, "ballot.forgotten"),
    ]
    assert report.imported == 0
    async with db.session() as session:
        assert len((await session.exec(select(Ballot))).all()) == 1

    good = [rows[0], rows[5], actions.BallotRow(8, moussa.email, "A1")]
    async with db.session() as session:
        report = await actions.import_ballots(
            session=session, consultation_id=c.id, rows=good, by=None, actor_label="cli"
        )
        assert await actions.ballot_of(session=session, participant=sophie) == ["A1", "A3", "A2"]
        assert await actions.ballot_of(session=session, participant=moussa) == ["A1"]
        paper = (await session.exec(select(Ballot).where(Ballot.channel == "paper"))).all()
    assert (report.imported, report.replaced, report.rejected) == (3, 1, [])
    assert len(paper) == 3


def test_a_ballot_csv_needs_its_two_columns():
    rows = actions.read_ballots_csv("email,ranking\na@example.org,A1 A2\n\n b@example.org , A3\n")
    assert [(r.line, r.email, r.ranking) for r in rows] == [
        (2, "a@example.org", "A1 A2"),
        (4, "b@example.org", "A3"),
    ]
    with pytest.raises(Exception, match="missing column"):
        actions.read_ballots_csv("email,order\na@example.org,A1\n")
