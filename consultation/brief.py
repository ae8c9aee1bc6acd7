"""The meeting brief's content: the results document arranged for reading at the table.

`palabre results --html/--markdown` renders `templates/report/brief.html` and `brief.md` with
what `brief_context` returns. This is data shaping only: it knows no transport and no template.
"""

from __future__ import annotations

from typing import Any

from consultation import agreement
from consultation.followup import brief_plan
from consultation.ranking import personal_order


def brief_context(
    document: dict[str, Any], *, scope_in: list[str], scope_out: list[str]
) -> dict[str, Any]:
    """What `templates/report/brief.html` and `brief.md` show, from the results document.

    The figures are the document's; this only arranges them for reading: categories in the
    consultation's order with their labels, each finding's contest reasons in a shuffled order
    (fixed by the finding, so the brief is the same each time it is made, and the order says
    nothing about who wrote a reason or when), each category's ranking set against the overall
    one. Labels stay `{fr, en}` dicts: the templates pick the reader's language.
    """
    info = document["consultation"]
    labels: dict[str, Any] = {item["key"]: item["label"] for item in info["categories"]}

    def label(key: str) -> Any:
        return labels.get(key, key)

    participation = document["participation"]
    representation = participation.get("representation") or {}
    categories = []
    for key, row in participation["by_category"].items():
        flags = representation.get(key) or {}
        categories.append(
            {
                "key": key,
                "label": label(key),
                "invited": row["invited"],
                "contributed": row["contributed"],
                "share": row["contributed"] / row["invited"] if row["invited"] else None,
                "under_represented": bool(flags.get("under_represented")),
            }
        )
    invited = sum(row["invited"] for row in categories)
    contributed = sum(row["contributed"] for row in categories)

    found = []
    for item in document["findings"]:
        reasons = [reason.strip() for reason in item["contest_reasons"]]
        seed = f"{info['slug']}:{item['code']}:{item['version']}:contest-reasons"
        found.append(
            {
                **{key: item[key] for key in _FINDING_FIGURES},
                "rate": item["confirmation_rate"],
                "by_category": [
                    {"key": key, "label": label(key), **row, "rate": row["confirmation_rate"]}
                    for key, row in item["by_category"].items()
                ],
                "reasons": personal_order(reasons, seed),
            }
        )

    ranking = document["ranking"]
    overall = ranking["overall"]
    top = set(overall["tiers"][0]) if ranking["ballots"] and overall["tiers"] else set()
    by_category = []
    order = list(labels) + sorted(set(ranking["by_category"]) - set(labels))
    for key in [key for key in order if key in ranking["by_category"]]:
        result = ranking["by_category"][key]
        first = result["tiers"][0] if result["tiers"] else []
        by_category.append(
            {
                "key": key,
                "label": label(key),
                "ballots": result["ballots"],
                "table": result["table"],
                "top": first,
                "differs": bool(top) and set(first) != top,
            }
        )

    questionnaires = [item for item in document["questionnaires"] if item["status"] != "scheduled"]
    return {
        "brief": agreement.brief_sections(document),
        "category_labels": labels,
        "generated_at": document["generated_at"],
        "consultation": {
            "slug": info["slug"],
            "title": info["title"],
            "question": info["question"],
            "timezone": info["timezone"],
            "scope_in": scope_in,
            "scope_out": scope_out,
        },
        "phases": [
            {
                "kind": phase["kind"],
                "status": phase["status"],
                "starts": phase["opened_at"] or phase["opens_at"],
                "ends": phase["closed_at"] or phase["closes_at"],
            }
            for phase in document["phases"]
        ],
        "participation": {
            "categories": categories,
            "invited": invited,
            "contributed": contributed,
            "share": contributed / invited if invited else None,
            "concentration": participation.get("concentration") or {},
            "under_represented": [row["label"] for row in categories if row["under_represented"]],
            "rules": participation.get("rules") or {},
        },
        "findings": found,
        "ranking": {
            "ballots": ranking["ballots"],
            "k": ranking["k"],
            "candidates": ranking["candidates"],
            "table": overall["table"],
            "condorcet_winner": overall["condorcet_winner"],
            "by_category": by_category,
            "silent": [
                label(key) for key, count in ranking["ballots_by_category"].items() if not count
            ],
        },
        "questionnaires": [
            {
                "title": item["title"],
                "status": item["status"],
                "respondents": item["respondents"],
                "questions": [_question(question) for question in item["questions"]],
            }
            for item in questionnaires
        ],
        "questionnaires_to_come": [
            item["title"] for item in document["questionnaires"] if item["status"] == "scheduled"
        ],
        "plan": brief_plan(document["plan"], label),
    }


_FINDING_FIGURES = ("code", "text", "version", "confirm", "contest", "abstain", "answers")
_FINDING_FIGURES += ("awaiting_new_answer", "observation_count")


def _question(question: dict[str, Any]) -> dict[str, Any]:
    """One question's results for the brief: Likert and choice counts with their shares."""
    row: dict[str, Any] = {
        "position": question["position"],
        "kind": question["kind"],
        "prompt": question["prompt"],
        "answers": question["answers"],
        "skipped": question["skipped"],
    }
    answers = question["answers"]
    if question["kind"] == "likert":
        row["mean"] = question["mean"]
        row["points"] = [
            {"point": point, "count": count, "share": count / answers if answers else 0}
            for point, count in question["distribution"].items()
        ]
    elif question["kind"] == "choice":
        row["choices"] = [
            {"label": choice, "count": count, "share": count / answers if answers else 0}
            for choice, count in zip(question["choices"], question["counts"], strict=True)
        ]
    else:
        row["texts"] = [text.strip() for text in question.get("texts", [])]
    return row
