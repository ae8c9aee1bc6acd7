"""Anonymity by construction: the groups a breakdown by actor category may show.

A figure broken down by category must never let a reader work out what one person answered.
So before any breakdown of answers (stances on a finding, ballots, questionnaire answers), the
categories are put into groups of at least `MIN_GROUP` respondents: a category with fewer joins
the group "other"; if "other" is still too small, the smallest remaining category joins it too,
and so on. Every group shown then has `MIN_GROUP` respondents or more, or there is no breakdown
at all (everyone would be in "other", which is just the overall figure).

Who took part (participation by category against the invited) is not an answer and is shown as
it is: hiding that a category is silent would hide what the room most needs to know. Free text
(contest reasons, questionnaire comments) is never shown by category.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIN_GROUP = 5
OTHER = "other"


@dataclass(frozen=True)
class Groups:
    """Which group each category's respondents are counted in.

    ``of`` maps every category with respondents to its group: itself, or `OTHER`. ``keys`` lists
    the groups in display order (the categories' order, "other" last). ``merged`` lists the
    categories counted in "other", in order. ``broken_down`` is False when there are too few
    respondents for any breakdown (everything would be "other").
    """

    of: dict[str, str]
    keys: tuple[str, ...]
    merged: tuple[str, ...]
    counts: dict[str, int]

    @property
    def broken_down(self) -> bool:
        return bool(self.keys) and self.keys != (OTHER,)

    def group(self, category: str) -> str:
        return self.of.get(category, OTHER)


def groups(
    counts: Mapping[str, int], order: Sequence[str] = (), minimum: int = MIN_GROUP
) -> Groups:
    """The groups for categories with ``counts`` respondents each, categories in ``order`` first.

    Categories with no respondent are left out (they have nothing to hide, and nothing to show).
    """
    keys = [key for key in order if counts.get(key)]
    keys += sorted(key for key in counts if counts[key] and key not in keys)
    merged = [key for key in keys if counts[key] < minimum]
    kept = [key for key in keys if key not in merged]
    # An "other" smaller than the minimum would show its few respondents alone: the smallest
    # remaining category joins it (the last one in order when several are as small).
    while merged and sum(counts[key] for key in merged) < minimum and kept:
        smallest = min(reversed(kept), key=lambda key: counts[key])
        kept.remove(smallest)
        merged.append(smallest)
    merged.sort(key=keys.index)
    of = {key: key for key in kept} | {key: OTHER for key in merged}
    group_keys = tuple(kept) + ((OTHER,) if merged else ())
    totals = {key: counts[key] for key in kept}
    if merged:
        totals[OTHER] = sum(counts[key] for key in merged)
    return Groups(of=of, keys=group_keys, merged=tuple(merged), counts=totals)


def regroup(
    by_category: Mapping[str, Mapping[str, Any]],
    shown: Groups,
    fields: Iterable[str],
) -> dict[str, dict[str, Any]]:
    """Sum the numeric ``fields`` of per-category tallies into ``shown``'s groups.

    A field holding a list (a distribution) is summed element by element; a mapping, key by key.
    """
    fields = tuple(fields)
    result: dict[str, dict[str, Any]] = {}
    for key, row in by_category.items():
        if key not in shown.of:
            continue
        target = result.setdefault(shown.of[key], {})
        for name in fields:
            target[name] = _add(target.get(name), row.get(name))
    return {key: result[key] for key in shown.keys if key in result}


def _add(total: Any, value: Any) -> Any:
    if value is None:
        return total
    if total is None:
        return _copy(value)
    if isinstance(value, Mapping):
        return {key: _add(total.get(key), value.get(key)) for key in {**total, **value}}
    if isinstance(value, list):
        return [_add(a, b) for a, b in zip(total, value, strict=True)]
    return total + value


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
