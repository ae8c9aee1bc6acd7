"""Consensus, division and close calls, read from results figures worked out by hand."""

from __future__ import annotations

from consultation import agreement, ranking
from consultation.actions import _table

ORDER = ["association", "cooperative", "elected", "citizen"]


def tally(confirm, contest, abstain=0):
    return {
        "confirm": confirm,
        "contest": contest,
        "abstain": abstain,
        "answers": confirm + contest + abstain,
    }


def finding(**by_category):
    total = [sum(row[i] for row in by_category.values()) for i in ("confirm", "contest")]
    return {
        "by_category": by_category,
        "confirmation_rate": total[0] / sum(total) if sum(total) else None,
    }


def test_a_finding_every_group_confirms_is_shared_and_one_a_group_contests_divides():
    # Associations 6 to 1, cooperatives 5 to 0: both confirm by a majority.
    shared = agreement.finding_agreement(
        finding(association=tally(6, 1), cooperative=tally(5, 0)), ORDER
    )
    assert shared["state"] == agreement.SHARED
    assert shared["confirming"] == ["association", "cooperative"]
    # Elected officials 1 to 4 and residents 0 to 2 are six answers in all, merged into "other":
    # other = 1 confirm, 6 contests, rate 1/7.
    divided = agreement.finding_agreement(
        finding(
            association=tally(6, 1),
            cooperative=tally(4, 1),
            elected=tally(1, 4),
            citizen=tally(0, 2),
        ),
        ORDER,
    )
    assert divided["state"] == agreement.DIVIDES
    assert divided["merged"] == ["elected", "citizen"]
    assert divided["diverging"] == ["other"]
    other = next(row for row in divided["groups"] if row["key"] == "other")
    assert (other["confirm"], other["contest"], other["rate"]) == (1, 6, round(1 / 7, 4))


def test_too_few_answers_show_no_breakdown_and_are_read_as_a_whole():
    few = agreement.finding_agreement(finding(association=tally(2, 1), elected=tally(0, 1)), ORDER)
    assert few["groups"] == [] and few["state"] == agreement.REJECTED  # 2 against 2: no majority
    none = agreement.finding_agreement(finding(association=tally(0, 0, 3)), ORDER)
    assert none["state"] == agreement.UNANSWERED


def result_of(ballots, candidates=("A1", "A2", "A3")):
    result = ranking.schulze(list(candidates), ballots)
    texts = {code: f"Action {code}" for code in candidates}
    return {**result.as_dict(), "table": _table(result, texts)}


def test_a_first_place_won_17_to_16_is_a_close_call():
    # 17 ballots A1 > A2 > A3, 16 ballots A2 > A1 > A3: A1 beats A2 17 to 16.
    called = agreement.first_place(result_of([["A1", "A2", "A3"]] * 17 + [["A2", "A1", "A3"]] * 16))
    assert called is not None
    assert (called["kind"], called["first"], called["second"]) == ("close", ["A1"], "A2")
    assert (called["won"], called["lost"]) == (17, 16)
    # Borda: A1 17×2 + 16×1 = 50, A2 17×1 + 16×2 = 49: Borda agrees.
    assert called["borda_first"] is None


def test_a_tie_and_a_borda_disagreement_are_said():
    tie = agreement.first_place(result_of([["A1", "A2"], ["A2", "A1"]], ("A1", "A2")))
    assert tie is not None and tie["kind"] == "tied" and tie["first"] == ["A1", "A2"]
    ballots = [["A1", "A2", "A3"]] * 3 + [["A2", "A3", "A1"]] * 2 + [["A3", "A2", "A1"]] * 2
    # Duels: A1–A2 3:4, A1–A3 3:4, A2–A3 5:2: A2 is the Condorcet winner.
    # Borda (2-1-0): A1 3×2 = 6; A2 3×1 + 2×2 + 2×1 = 9; A3 2×1 + 2×2 = 6: Borda agrees on A2.
    called = agreement.first_place(result_of(ballots))
    assert called is not None and called["first"] == ["A2"] and called["borda_first"] is None
    # One ballot A1 > A3 > A2 more: A1–A2 4:4, A1–A3 4:4 and A2–A3 5:3; Borda A1 8, A2 9, A3 7.
    called = agreement.first_place(result_of([*ballots, ["A1", "A3", "A2"]]))
    assert called is not None and called["kind"] == "tied"
    assert called["first"] == ["A1", "A2"] and called["borda_first"] == ["A2"]


def test_where_equal_weight_per_category_changes_a_rank_it_is_flagged():
    overall = result_of(
        [["A1", "A2", "A3"]] * 6 + [["A2", "A3", "A1"]] * 2 + [["A3", "A2", "A1"]] * 2
    )
    tagged = (
        [("association", ["A1", "A2", "A3"])] * 6
        + [("cooperative", ["A2", "A3", "A1"])] * 2
        + [("elected", ["A3", "A2", "A1"])] * 2
    )
    equal = ranking.balanced(["A1", "A2", "A3"], tagged)
    balanced = {**equal.as_dict(), "table": _table(equal, {c: c for c in ("A1", "A2", "A3")})}
    compared = agreement.compare_rankings(overall, balanced)
    assert [(row["code"], row["rank"], row["balanced_rank"]) for row in compared["rows"]] == [
        ("A1", 1, 3),
        ("A2", 2, 1),
        ("A3", 3, 2),
    ]
    assert compared["differences"] == 3 and not compared["same_first"]


def test_identical_contest_reasons_are_counted_together():
    reasons = ["Trop général", "Le foncier d'abord.", "trop général.", "Trop  général", "Vague"]
    assert agreement.grouped_reasons(reasons) == [
        {"text": "Trop général", "count": 3},
        {"text": "Le foncier d'abord.", "count": 1},
        {"text": "Vague", "count": 1},
    ]
