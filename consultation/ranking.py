"""Turn the actors' rankings of the shortlisted actions into a published result.

In the rank phase each actor orders the shortlisted actions, all of them or only a top k. This
module aggregates those ballots the way the design asks: a Condorcet ranking by the Schulze
method, Borda scores beside it, overall and for each actor category. It also gives every reader
the items in their own shuffled order, the same each time they look, so that no action gains
from always being shown first.

It also gives each actor category the same weight (`balanced`): the design's "une place égale
dans la prise de parole" as a ranking, shown beside the one where every ballot counts once.

Pure functions over plain values (candidates are any hashable ids, such as ``"A3"``): no
database, no I/O, standard library only, so the tally can be checked by hand or by a test.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations
from typing import Any, TypeVar

Candidate = Hashable
Ballot = Sequence[Candidate]
Weight = int | Fraction
T = TypeVar("T")


@dataclass(frozen=True)
class RankingResult:
    """The tally of one set of ballots.

    ``tiers`` is the Schulze order, best first; candidates sharing a tier are tied. The tiers are
    built by taking the candidates nobody beats, removing them and repeating. Schulze's relation
    is a strict partial order, not always a weak one: a candidate in a higher tier does not
    necessarily beat every candidate of a lower tier (Schulze's 9-voter example leaves B and A
    unordered, yet B's tier comes first). Use :meth:`beats` when that distinction matters.

    ``pairwise[x, y]`` is the number of ballots preferring x to y; ``strongest[x, y]`` is the
    strength of the strongest path from x to y. Both have every ordered pair of distinct
    candidates as keys. ``borda`` holds exact scores. In a `balanced` result the ballots are
    weighed, so pairwise counts and strengths are exact fractions rather than whole numbers.
    """

    candidates: tuple[Candidate, ...]
    ballots: int
    tiers: tuple[tuple[Candidate, ...], ...]
    borda: dict[Candidate, Fraction]
    pairwise: dict[tuple[Candidate, Candidate], Weight]
    strongest: dict[tuple[Candidate, Candidate], Weight]
    condorcet_winner: Candidate | None

    @property
    def winners(self) -> tuple[Candidate, ...]:
        """The Schulze winners: one candidate, or several when the top is tied."""
        return self.tiers[0] if self.tiers else ()

    def beats(self, x: Candidate, y: Candidate) -> bool:
        """Whether x is ranked above y by Schulze's relation itself (not only by tier)."""
        return x != y and self.strongest[x, y] > self.strongest[y, x]

    def as_dict(self) -> dict[str, Any]:
        """The result as plain JSON values: ids as strings, Borda scores as rounded floats."""

        def matrix(values: dict[tuple[Candidate, Candidate], Weight]) -> dict[str, dict[str, Any]]:
            return {
                str(x): {str(y): _plain(values[x, y]) for y in self.candidates if y != x}
                for x in self.candidates
            }

        winner = self.condorcet_winner
        return {
            "candidates": [str(c) for c in self.candidates],
            "ballots": self.ballots,
            "tiers": [[str(c) for c in tier] for tier in self.tiers],
            "borda": {str(c): round(float(self.borda[c]), 3) for c in self.candidates},
            "pairwise": matrix(self.pairwise),
            "strongest": matrix(self.strongest),
            "condorcet_winner": None if winner is None else str(winner),
        }


def schulze(candidates: Iterable[Candidate], ballots: Iterable[Ballot]) -> RankingResult:
    """Rank ``candidates`` from ``ballots`` by the Schulze method, with Borda scores beside it.

    A ballot lists candidates best first. It may stop early: the candidates it lists are preferred
    to all the others, which it leaves tied with each other. An empty ballot is counted but
    prefers nothing. Link strength is measured in winning votes, as in Schulze's definition.

    Raises ValueError if a ballot lists an unknown candidate or one twice, or if a candidate is
    given twice; TypeError if a ballot is not a sequence (a set has no order to count).
    """
    cands = tuple(candidates)
    n = len(cands)
    index = {c: i for i, c in enumerate(cands)}
    if len(index) != n:
        raise ValueError(f"candidates must be distinct, got {cands!r}")

    ranked = [0] * n  # ballots listing candidate i
    ahead: Counter[tuple[int, int]] = Counter()  # (i, j): ballots listing i before j
    # Borda in half points keeps partial ballots' shares whole; ``shared`` is what every
    # candidate got from the unranked shares, taken back from the ranked ones below, so that a
    # ballot costs O(k) whatever n is.
    half_points = [0] * n
    shared = 0
    count = 0
    for ballot in ballots:
        order = _indices(ballot, index)
        k = len(order)
        count += 1
        ahead.update(combinations(order, 2))
        # The unranked share positions k+1..n, worth n-k-1 down to 0: each gets (n-k-1)/2.
        unranked_half = n - k - 1 if k < n else 0
        shared += unranked_half
        for r, i in enumerate(order):
            ranked[i] += 1
            half_points[i] += 2 * (n - 1 - r) - unranked_half

    # A listed candidate beats every other except those listed before it, so d comes from the
    # ranked-over-ranked counts alone: no work per unranked candidate.
    d = [[ranked[i] - ahead[j, i] if i != j else 0 for j in range(n)] for i in range(n)]
    borda = [Fraction(half_points[i] + shared, 2) for i in range(n)]
    return _result(cands, count, d, borda)


def _result(
    cands: tuple[Candidate, ...], count: int, d: list[list[Any]], borda: list[Fraction]
) -> RankingResult:
    """The Schulze tiers and the rest of a result, from the pairwise preferences ``d``."""
    n = len(cands)
    p = _strongest_paths(d)
    tiers = _tiers(p)
    condorcet = next(
        (i for i in range(n) if all(d[i][j] > d[j][i] for j in range(n) if j != i)), None
    )
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    return RankingResult(
        candidates=cands,
        ballots=count,
        tiers=tuple(tuple(cands[i] for i in tier) for tier in tiers),
        borda=dict(zip(cands, borda, strict=True)),
        pairwise={(cands[i], cands[j]): d[i][j] for i, j in pairs},
        strongest={(cands[i], cands[j]): p[i][j] for i, j in pairs},
        condorcet_winner=None if condorcet is None else cands[condorcet],
    )


def balanced(
    candidates: Iterable[Candidate], tagged_ballots: Iterable[tuple[str, Ballot]]
) -> RankingResult:
    """Rank ``candidates`` giving every category that voted the same total weight, one.

    A ballot of a category that cast n ballots weighs 1/n: a category of forty members cannot
    outvote one of five. Pairwise counts and Borda scores are the sums, over the categories, of
    each category's own counts divided by its number of ballots, so ``pairwise[x, y]`` reads as
    "how many categories' worth of ballots prefer x to y" (between 0 and the number of
    categories); the Schulze method then runs on these as on whole ballots. ``ballots`` stays
    the number of ballots cast.
    """
    cands = tuple(candidates)
    n = len(cands)
    _, per_category = rank_by_category(cands, tagged_ballots)
    d: list[list[Any]] = [[Fraction(0)] * n for _ in range(n)]
    borda = [Fraction(0)] * n
    for result in per_category.values():
        weight = Fraction(1, result.ballots)
        for i, x in enumerate(cands):
            borda[i] += result.borda[x] * weight
            for j, y in enumerate(cands):
                if i != j:
                    d[i][j] += result.pairwise[x, y] * weight
    count = sum(result.ballots for result in per_category.values())
    return _result(cands, count, d, borda)


def _plain(value: Weight) -> int | float:
    return value if isinstance(value, int) else round(float(value), 4)


def rank_by_category(
    candidates: Iterable[Candidate], tagged_ballots: Iterable[tuple[str, Ballot]]
) -> tuple[RankingResult, dict[str, RankingResult]]:
    """Tally all ballots together, then each actor category's ballots on their own.

    ``tagged_ballots`` pairs each ballot with its voter's category. Returns the overall result
    and a result per category that cast at least one ballot, categories in sorted order.
    """
    cands = tuple(candidates)
    everyone: list[Ballot] = []
    by_category: defaultdict[str, list[Ballot]] = defaultdict(list)
    for category, ballot in tagged_ballots:
        everyone.append(ballot)
        by_category[category].append(ballot)
    overall = schulze(cands, everyone)
    return overall, {c: schulze(cands, by_category[c]) for c in sorted(by_category)}


def personal_order(items: Iterable[T], seed: str) -> list[T]:
    """Return ``items`` shuffled in an order fixed by ``seed``, e.g. "consultation:person:purpose".

    The seed goes through SHA-256 rather than ``hash()``, which Python salts per process: the
    same person must see the same order after a restart or from another worker.
    """
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    shuffled = list(items)
    random.Random(int.from_bytes(digest, "big")).shuffle(shuffled)
    return shuffled


def _indices(ballot: Ballot, index: dict[Candidate, int]) -> list[int]:
    # A set or a mapping has no order to rank by; reject it rather than tally an arbitrary one.
    if not isinstance(ballot, Sequence):
        raise TypeError(f"a ballot is a sequence of candidates, got {ballot!r}")
    order = []
    for c in ballot:
        if c not in index:
            raise ValueError(f"ballot {ballot!r} lists {c!r}, which is not a candidate")
        order.append(index[c])
    if len(set(order)) != len(order):
        raise ValueError(f"ballot {ballot!r} lists a candidate twice")
    return order


def _strongest_paths(d: list[list[int]]) -> list[list[int]]:
    """Widest paths over the links d[i][j] > d[j][i] of strength d[i][j] (Floyd–Warshall)."""
    n = len(d)
    p = [[d[i][j] if d[i][j] > d[j][i] else 0 for j in range(n)] for i in range(n)]
    for k in range(n):
        pk = p[k]
        for i in range(n):
            pik = p[i][k]
            if i == k or pik == 0:
                continue
            # Through k, i reaches j at the weaker of its two links; keep it where it is wider.
            pi = p[i]
            p[i] = [
                pij if pij >= pkj or pij >= pik else (pkj if pkj < pik else pik)
                for pij, pkj in zip(pi, pk, strict=True)
            ]
            p[i][i] = 0
    return p


def _tiers(p: list[list[int]]) -> list[list[int]]:
    remaining = list(range(len(p)))
    tiers = []
    while remaining:
        tier = [i for i in remaining if not any(p[j][i] > p[i][j] for j in remaining)]
        # Schulze proved the relation transitive, so some candidate is always unbeaten; guard
        # anyway, since an empty tier would loop forever.
        if not tier:
            raise AssertionError("Schulze relation has a cycle; strongest paths are wrong")
        tiers.append(tier)
        remaining = [i for i in remaining if i not in tier]
    return tiers
