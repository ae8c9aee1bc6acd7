"""What the room needs to argue about, read from the results document.

Pure functions over `consultation.results` (plain JSON in, plain JSON out), so the meeting
brief shows figures a coordinator can check by hand:

- for each finding, which groups of actors confirm it and which diverge (`finding_agreement`);
- for each shortlisted action, which groups put it in their top five (`action_support`);
- whether the first place was a close call (`first_place`), and whether Borda agrees;
- where the ranking in which every category weighs the same differs from the count of all
  ballots (`compare_rankings`);
- contest reasons, identical ones counted together (`grouped_reasons`).

Every breakdown goes through `anonymity.groups`: a category with fewer than five respondents is
counted in "other".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from consultation import anonymity

# A group confirms a finding when more of its members confirm than contest it.
CONFIRMS = 0.5
# A category "supports" an action it ranks among its first five.
SUPPORT_DEPTH = 5
# A first place won by at most this share of the ballots (and by at least one ballot) is close.
CLOSE_SHARE = 0.05

SHARED, DIVIDES, REJECTED, UNANSWERED = "shared", "divides", "rejected", "unanswered"


def _rate(confirm: int, contest: int) -> float | None:
    sided = confirm + contest
    return round(confirm / sided, 4) if sided else None


def finding_agreement(finding: dict[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """The finding's answers by group, and whether the groups agree.

    `state` is "shared" when every group that took a side confirms by a majority, "rejected" when
    none does, "divides" otherwise ("unanswered" when nobody took a side). Without a breakdown
    (fewer than ten answers, say), the state is read from the overall answers alone.
    """
    by_category = finding["by_category"]
    shown = anonymity.groups({key: row["answers"] for key, row in by_category.items()}, order)
    rows = []
    if shown.broken_down:
        for key, row in anonymity.regroup(
            by_category, shown, ("confirm", "contest", "abstain", "answers")
        ).items():
            rows.append({"key": key, **row, "rate": _rate(row["confirm"], row["contest"])})
    sided = [row for row in rows if row["rate"] is not None]
    if not sided:
        rate = finding["confirmation_rate"]
        state = UNANSWERED if rate is None else (SHARED if rate > CONFIRMS else REJECTED)
    elif all(row["rate"] > CONFIRMS for row in sided):
        state = SHARED
    elif not any(row["rate"] > CONFIRMS for row in sided):
        state = REJECTED
    else:
        state = DIVIDES
    return {
        "state": state,
        "groups": rows,
        "merged": list(shown.merged) if shown.broken_down else [],
        "confirming": [row["key"] for row in sided if row["rate"] > CONFIRMS],
        "diverging": [row["key"] for row in sided if row["rate"] <= CONFIRMS],
    }


def _ranks(table: Iterable[dict[str, Any]]) -> dict[str, int]:
    return {row["code"]: row["rank"] for row in table}


def action_support(ranking: dict[str, Any], groups: Sequence[str]) -> dict[str, list[str]]:
    """For each shortlisted action, the groups that rank it among their first five."""
    support: dict[str, list[str]] = {item["code"]: [] for item in ranking["candidates"]}
    for key in groups:
        for code, rank in _ranks(ranking["by_group"][key]["table"]).items():
            if rank <= SUPPORT_DEPTH and code in support:
                support[code].append(key)
    return support


def first_place(result: dict[str, Any]) -> dict[str, Any] | None:
    """How the first place was won: tied, in a close duel, or clearly (None without ballots).

    The duel is the first against the best-placed of the rest: `won` ballots prefer the first,
    `lost` the other. It is close when the margin is at most `CLOSE_SHARE` of the ballots (one
    ballot at least). `borda_first` is the action with the highest Borda score when it is not the
    Schulze winner (None when they agree).
    """
    if not result["ballots"] or not result["tiers"]:
        return None
    top = result["tiers"][0]
    borda = result["borda"]
    best = max(borda.values()) if borda else None
    borda_top = sorted(code for code, score in borda.items() if score == best)
    disagree = sorted(top) != borda_top
    if len(top) > 1:
        return {"kind": "tied", "first": list(top), "borda_first": borda_top if disagree else None}
    first = top[0]
    runner = next((tier for tier in result["tiers"][1:]), [])
    if not runner:
        return {"kind": "alone", "first": [first], "borda_first": None}
    second = max(runner, key=lambda code: (borda[code], code))
    won = result["pairwise"][first][second]
    lost = result["pairwise"][second][first]
    margin = won - lost
    close = margin <= max(1, CLOSE_SHARE * result["ballots"])
    return {
        "kind": "close" if close else "clear",
        "first": [first],
        "second": second,
        "won": won,
        "lost": lost,
        "borda_first": borda_top if disagree else None,
    }


def compare_rankings(overall: dict[str, Any], balanced: dict[str, Any]) -> dict[str, Any]:
    """Each action's rank counting every ballot once and with every category weighing the same."""
    equal = _ranks(balanced["table"])
    rows = [
        {
            "code": row["code"],
            "text": row["text"],
            "rank": row["rank"],
            "tied": row["tied"],
            "balanced_rank": equal.get(row["code"]),
            "differs": equal.get(row["code"]) != row["rank"],
        }
        for row in overall["table"]
    ]
    return {
        "rows": rows,
        "same_first": set(overall["tiers"][:1][0] if overall["tiers"] else [])
        == set(balanced["tiers"][:1][0] if balanced["tiers"] else []),
        "differences": sum(1 for row in rows if row["differs"]),
    }


def _same(text: str) -> str:
    return re.sub(r"[\s.!…]+$", "", " ".join(text.casefold().split()))


def grouped_reasons(reasons: Iterable[str]) -> list[dict[str, Any]]:
    """Reasons with identical ones counted together (case, spaces, final dots aside).

    Repeated reasons come first, most frequent first; the others keep the order they came in.
    Each group shows the first wording met.
    """
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    order: list[str] = []
    for reason in reasons:
        text = reason.strip()
        if not text:
            continue
        key = _same(text)
        if key not in first:
            first[key] = text
            order.append(key)
        counts[key] += 1
    repeated = sorted((key for key in order if counts[key] > 1), key=lambda key: -counts[key])
    single = [key for key in order if counts[key] == 1]
    return [{"text": first[key], "count": counts[key]} for key in repeated + single]


# --- the brief's sections ---------------------------------------------------------------------


def _finding_rows(finding: dict[str, Any], order: Sequence[str]) -> dict[str, Any]:
    agreed = finding_agreement(finding, order)
    return {**agreed, "groups": [_with_zeroes(row) for row in agreed["groups"]]}


def _with_zeroes(row: dict[str, Any]) -> dict[str, Any]:
    return {"confirm": 0, "contest": 0, "abstain": 0, "answers": 0, **row}


def _likert_mean(distribution: dict[str, int]) -> float | None:
    count = sum(distribution.values())
    if not count:
        return None
    return round(sum(int(point) * n for point, n in distribution.items()) / count, 2)


def _questionnaire(item: dict[str, Any], order: Sequence[str]) -> dict[str, Any]:
    shown = anonymity.groups(item.get("respondents_by_category") or {}, order)
    questions = []
    for question in item["questions"]:
        row: dict[str, Any] = {
            key: question.get(key)
            for key in ("position", "kind", "prompt", "answers", "skipped", "mean", "choices")
        }
        row["counts"] = question.get("counts")
        row["distribution"] = question.get("distribution")
        row["texts"] = grouped_reasons(question.get("texts", []))
        groups = []
        if shown.broken_down and question["kind"] in {"likert", "choice"}:
            field = "distribution" if question["kind"] == "likert" else "counts"
            merged = anonymity.regroup(question["by_category"], shown, ("answers", field))
            for key in shown.keys:
                values = merged.get(key)
                if not values or not values.get("answers"):
                    continue
                groups.append(
                    {
                        "key": key,
                        "answers": values["answers"],
                        "counts": list(values[field].values())
                        if question["kind"] == "likert"
                        else values[field],
                        "mean": _likert_mean(values[field])
                        if question["kind"] == "likert"
                        else None,
                    }
                )
        row["groups"] = groups
        if question["kind"] == "likert":
            row["counts"] = list((question.get("distribution") or {}).values())
        questions.append(row)
    return {
        "key": item["key"],
        "title": item["title"],
        "status": item["status"],
        "respondents": item["respondents"],
        "merged": list(shown.merged) if shown.broken_down else [],
        "broken_down": shown.broken_down,
        "questions": questions,
    }


def brief_sections(document: dict[str, Any]) -> dict[str, Any]:
    """What the meeting brief adds to the results: agreement, close calls, equal weight, fates.

    Plain JSON for `templates/report/brief.html`; group keys are category keys or "other".
    """
    info = document["consultation"]
    order = [category["key"] for category in info["categories"]]
    found = document["findings"]
    findings_view = []
    for finding in found:
        agreed = _finding_rows(finding, order)
        findings_view.append(
            {
                "code": finding["code"],
                "text": finding["text"],
                "version": finding["version"],
                "rate": finding["confirmation_rate"],
                "confirm": finding["confirm"],
                "contest": finding["contest"],
                "abstain": finding["abstain"],
                "answers": finding["answers"],
                "state": agreed["state"],
                "groups": agreed["groups"],
                "merged": agreed["merged"],
                "confirming": agreed["confirming"],
                "diverging": agreed["diverging"],
                "reasons": grouped_reasons(finding["contest_reasons"]),
                "history": finding.get("history", []),
                "from_meetings": finding.get("from_meetings", 0),
                "awaiting_new_answer": finding["awaiting_new_answer"],
                "observation_count": finding["observation_count"],
            }
        )

    ranking = document["ranking"]
    group_keys = list(ranking.get("by_group") or {})
    answers = {item["code"]: item.get("findings", []) for item in ranking["candidates"]}
    support = action_support(ranking, group_keys) if group_keys else {}
    ranked = ranking["ballots"] > 0 and bool(ranking["candidates"])
    compared = compare_rankings(ranking["overall"], ranking["balanced"]) if ranked else None
    by_group = []
    for key in group_keys:
        table = ranking["by_group"][key]["table"]
        top = [row for row in table if row["rank"] <= SUPPORT_DEPTH]
        by_group.append(
            {
                "key": key,
                "ballots": ranking["by_group"][key]["ballots"],
                "top": top,
                "first": ranking["by_group"][key]["tiers"][0],
            }
        )
    overall_first = set(ranking["overall"]["tiers"][0]) if ranked else set()
    ranking_view = {
        "ballots": ranking["ballots"],
        "groups": group_keys,
        "merged": (ranking.get("groups") or {}).get("merged", []),
        "rows": [
            {
                **row,
                "findings": answers.get(row["code"], []),
                "supported_by": support.get(row["code"], []),
                "supported_by_all": bool(group_keys)
                and len(support.get(row["code"], [])) == len(group_keys),
            }
            for row in (compared["rows"] if compared else [])
        ],
        "borda": {row["code"]: row["borda"] for row in ranking["overall"]["table"]},
        "same_first": compared["same_first"] if compared else True,
        "differences": compared["differences"] if compared else 0,
        "balanced_first": ranking["balanced"]["tiers"][0] if ranked else [],
        "first_place": first_place(ranking["overall"]) if ranked else None,
        "by_group": by_group,
        "differing_groups": [g["key"] for g in by_group if set(g["first"]) != overall_first],
        "top_ranks": [
            [
                next(
                    (
                        row["rank"]
                        for row in ranking["by_group"][key]["table"]
                        if row["code"] == code
                    ),
                    None,
                )
                for key in group_keys
            ]
            for code in (row["code"] for row in ranking["overall"]["table"])
        ],
    }

    finding_groups = [
        key
        for key in [*order, anonymity.OTHER]
        if any(row["key"] == key for f in findings_view for row in f["groups"])
    ]
    for view in findings_view:
        rates = {row["key"]: row["rate"] for row in view["groups"]}
        view["cells"] = [rates.get(key) for key in finding_groups]
    observations = document.get("observations") or {}
    phases = document["phases"]
    current = next((phase for phase in phases if phase["status"] == "open"), None)
    upcoming = next((phase for phase in phases if phase["status"] == "scheduled"), None)
    by_phase = {row["position"]: row for row in document["participation"].get("by_phase", [])}
    return {
        "now": current and {"kind": current["kind"], "ends": current["closes_at"]},
        "next": upcoming and {"kind": upcoming["kind"], "starts": upcoming["opens_at"]},
        "finished": current is None and upcoming is None and bool(phases),
        # The heat map's columns: every group some finding shows, "other" last.
        "finding_groups": finding_groups,
        "findings": findings_view,
        "shared": [f for f in findings_view if f["state"] == SHARED],
        "divided": [f for f in findings_view if f["state"] == DIVIDES],
        "rejected": [f for f in findings_view if f["state"] == REJECTED],
        "agreement": ranking_view,
        "questionnaires": [
            _questionnaire(item, order)
            for item in document["questionnaires"]
            if item["status"] != "scheduled"
        ],
        "observations": {
            **{key: value for key, value in observations.items() if key != "out_of_scope_reasons"},
            "out_of_scope_reasons": grouped_reasons(observations.get("out_of_scope_reasons", [])),
        },
        "proposals": document.get("proposals") or {},
        "meetings": document.get("meetings") or [],
        "by_phase": [
            {
                "kind": phase["kind"],
                "status": phase["status"],
                "starts": phase["opened_at"] or phase["opens_at"],
                "ends": phase["closed_at"] or phase["closes_at"],
                "contributors": by_phase.get(phase["position"], {}).get("contributors", 0),
                "contributions": by_phase.get(phase["position"], {}).get("contributions", 0),
            }
            for phase in phases
        ],
    }
