"""Small categories merged into "other", and the ranking where every category weighs the same.

Every figure here was worked out by hand first; the comments show the sums.
"""

from __future__ import annotations

from fractions import Fraction

from consultation import anonymity, ranking
from consultation.anonymity import OTHER

ORDER = ["association", "cooperative", "elected", "citizen"]


def test_categories_under_five_respondents_are_counted_in_other():
    # elected 3 + citizen 2 = 5: "other" is big enough on its own.
    shown = anonymity.groups(
        {"association": 6, "cooperative": 7, "elected": 3, "citizen": 2}, ORDER
    )
    assert shown.keys == ("association", "cooperative", OTHER)
    assert shown.merged == ("elected", "citizen")
    assert shown.counts == {"association": 6, "cooperative": 7, OTHER: 5}
    assert shown.group("citizen") == OTHER and shown.group("association") == "association"
    assert shown.broken_down


def test_an_other_still_too_small_takes_the_smallest_remaining_category():
    # elected 3 alone would be shown: association (6, smaller than cooperative's 7) joins it.
    shown = anonymity.groups({"association": 6, "cooperative": 7, "elected": 3}, ORDER)
    assert shown.keys == ("cooperative", OTHER)
    assert shown.merged == ("association", "elected")
    assert shown.counts == {"cooperative": 7, OTHER: 9}


def test_too_few_respondents_means_no_breakdown_and_silent_categories_are_left_out():
    shown = anonymity.groups({"association": 4, "cooperative": 0}, ORDER)
    assert shown.keys == (OTHER,) and not shown.broken_down
    every_big = anonymity.groups({"citizen": 5, "association": 9, "elected": 0}, ORDER)
    assert every_big.keys == ("association", "citizen") and every_big.merged == ()
    assert not anonymity.groups({}, ORDER).broken_down


def test_tallies_are_summed_into_their_groups():
    shown = anonymity.groups({"association": 6, "elected": 3, "citizen": 2}, ORDER)
    merged = anonymity.regroup(
        {
            "association": {"confirm": 5, "contest": 1, "distribution": {"1": 0, "5": 6}},
            "elected": {"confirm": 1, "contest": 2, "distribution": {"1": 3, "5": 0}},
            "citizen": {"confirm": 2, "contest": 0, "distribution": {"1": 1, "5": 1}},
            "cooperative": {"confirm": 0, "contest": 0, "distribution": {"1": 0, "5": 0}},
        },
        shown,
        ("confirm", "contest", "distribution"),
    )
    assert merged == {
        "association": {"confirm": 5, "contest": 1, "distribution": {"1": 0, "5": 6}},
        OTHER: {"confirm": 3, "contest": 2, "distribution": {"1": 4, "5": 1}},
    }


# Six associations rank A1 > A2 > A3, two cooperatives A2 > A3 > A1, two elected officials
# A3 > A2 > A1.
TAGGED = (
    [("association", ["A1", "A2", "A3"])] * 6
    + [("cooperative", ["A2", "A3", "A1"])] * 2
    + [("elected", ["A3", "A2", "A1"])] * 2
)


def test_counting_every_ballot_once_the_largest_category_wins():
    # A1 over A2: 6 against 4; A1 over A3: 6 against 4; A2 over A3: 8 against 2.
    result = ranking.schulze(["A1", "A2", "A3"], [ballot for _, ballot in TAGGED])
    assert result.tiers == (("A1",), ("A2",), ("A3",))
    assert result.condorcet_winner == "A1"
    # Borda, 2-1-0 points: A1 6×2 = 12; A2 6×1 + 2×2 + 2×1 = 12; A3 2×1 + 2×2 = 6.
    assert result.borda == {"A1": 12, "A2": 12, "A3": 6}


def test_when_every_category_weighs_the_same_the_order_turns_over():
    # Each category weighs 1. A1 over A2: associations only, 1; A2 over A1: 1 + 1 = 2.
    # A1 over A3: 1, A3 over A1: 2. A2 over A3: associations and cooperatives, 2; A3 over A2: 1.
    result = ranking.balanced(["A1", "A2", "A3"], TAGGED)
    assert result.tiers == (("A2",), ("A3",), ("A1",))
    assert result.condorcet_winner == "A2"
    assert result.pairwise["A1", "A2"] == 1 and result.pairwise["A2", "A1"] == 2
    assert result.pairwise["A2", "A3"] == 2 and result.pairwise["A3", "A2"] == 1
    # Borda per category divided by its ballots: A1 2 + 0 + 0; A2 1 + 2 + 1; A3 0 + 1 + 2.
    assert result.borda == {"A1": 2, "A2": 4, "A3": 3}
    assert result.ballots == 10
    assert result.as_dict()["pairwise"]["A1"]["A2"] == 1.0


def test_a_balanced_ranking_with_uneven_categories_keeps_exact_fractions():
    # Three associations split 2–1 between A1 and A2, one cooperative prefers A2:
    # A1 over A2 = 2/3, A2 over A1 = 1/3 + 1 = 4/3.
    tagged = [
        ("association", ["A1", "A2"]),
        ("association", ["A1", "A2"]),
        ("association", ["A2", "A1"]),
        ("cooperative", ["A2"]),
    ]
    result = ranking.balanced(["A1", "A2"], tagged)
    assert result.pairwise["A1", "A2"] == Fraction(2, 3)
    assert result.pairwise["A2", "A1"] == Fraction(4, 3)
    assert result.tiers == (("A2",), ("A1",))
    assert ranking.balanced(["A1", "A2"], []).tiers == (("A1", "A2"),)
