"""The consultation's data out, for a spreadsheet or a statistician (`palabre export`).

Five tables: observations; findings with their versions; stances on them; actions with the
findings they answer; ballots; questionnaire answers. No name, address or organisation: each
participant appears under a pseudonym (`P` and ten hexadecimal digits), the same in every table
of one export so that answers can be linked, and different from one export to the next (a
random key is drawn each time), so two exports cannot be joined to follow a person. A category
with fewer than `anonymity.MIN_GROUP` invited people is given as "other", so a pseudonym never
points at the one elected official of a small consultation. What a meeting said has no
pseudonym: it carries the meeting's date instead, and its category is "other" when fewer than
`MIN_GROUP` people of that category were in the room.

`csv_text` writes a table as CSV with every cell a spreadsheet would take for a formula
neutralised (OWASP's "CSV injection"): a text starting with `=`, `+`, `-`, `@`, a tab or a
carriage return gets a leading apostrophe, which spreadsheets show as text and do not run.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import anonymity
from consultation.common import get_consultation
from models import (
    Action,
    ActionFinding,
    Answer,
    Ballot,
    Finding,
    FindingObservation,
    FindingVersion,
    Meeting,
    MeetingBallot,
    MeetingStance,
    Observation,
    Participant,
    Phase,
    Question,
    Questionnaire,
    Role,
    Stance,
)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

COLUMNS: dict[str, tuple[str, ...]] = {
    "observations": (
        "id", "created_at", "phase", "participant", "category", "meeting", "theme", "text",
        "scope", "scope_reason", "duplicate_of", "findings",
    ),
    "findings": ("code", "version", "status", "created_at", "published_at", "observations", "text"),
    "stances": (
        "finding", "version", "participant", "category", "meeting", "choice", "reason", "channel",
        "updated_at",
    ),
    "actions": (
        "code", "status", "merged_into", "participant", "category", "findings", "created_at",
        "text",
    ),
    "ballots": ("participant", "category", "meeting", "ranking", "channel", "updated_at"),
    "answers": (
        "questionnaire", "question", "kind", "participant", "category", "value", "text",
        "channel", "updated_at",
    ),
}  # fmt: skip


def neutralise(value: Any) -> Any:
    """A cell value a spreadsheet will show as it is: texts that start a formula are quoted."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str], delimiter: str = ",") -> str:
    """The table as CSV (a header line, then one line per row), every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else neutralise(row.get(c)) for c in columns])
    return buffer.getvalue()


def json_text(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(rows), ensure_ascii=False, indent=2) + "\n"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class Pseudonyms:
    """`P` + ten hex digits of an HMAC of the participant's id under a key drawn per export."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def __call__(self, participant_id: int | None) -> str | None:
        if participant_id is None:
            return None
        digest = hmac.new(self.key, str(participant_id).encode(), hashlib.sha256).hexdigest()
        return "P" + digest[:10]


async def export_tables(
    *, session: AsyncSession, consultation_id: int, key: bytes | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every table of the export, as lists of plain rows (see `COLUMNS`)."""
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    pseudonym = Pseudonyms(key)
    people = (
        await session.exec(
            select(Participant).where(Participant.consultation_id == consultation_id)
        )
    ).all()
    invited = Counter(p.category for p in people if p.role == Role.PARTICIPANT)
    order = [c["key"] for c in consultation.categories]
    shown = anonymity.groups(invited, order)
    category_of = {p.id: shown.group(p.category) for p in people}
    held = (
        await session.exec(select(Meeting).where(Meeting.consultation_id == consultation_id))
    ).all()
    meetings = {m.id: m.held_on.isoformat() for m in held}
    # At a meeting, the people of a category are those in the room: two elected officials
    # present are as easy to tell apart as two on the list.
    in_room = {m.id: anonymity.groups(m.attendance, order) for m in held}
    phase_of = {
        p.id: p.kind
        for p in (
            await session.exec(select(Phase).where(Phase.consultation_id == consultation_id))
        ).all()
    }

    findings = (
        await session.exec(
            select(Finding).where(Finding.consultation_id == consultation_id).order_by(Finding.id)
        )
    ).all()
    finding_code = {f.id: f.code for f in findings}
    links = (
        await session.exec(
            select(FindingObservation).where(
                FindingObservation.finding_id.in_(list(finding_code))  # type: ignore[attr-defined]
            )
        )
    ).all()
    cited: dict[int, list[str]] = {}
    cites: dict[int, list[int]] = {}
    for link in links:
        cited.setdefault(link.observation_id, []).append(finding_code[link.finding_id])
        cites.setdefault(link.finding_id, []).append(link.observation_id)

    observations = [
        {
            "id": o.id,
            "created_at": _iso(o.created_at),
            "phase": phase_of.get(o.phase_id),
            "participant": pseudonym(o.author_id),
            "category": category_of.get(o.author_id),
            "meeting": meetings.get(o.meeting_id),
            "theme": o.theme,
            "text": o.text,
            "scope": o.scope_status,
            "scope_reason": o.scope_reason,
            "duplicate_of": o.duplicate_of_id,
            "findings": " ".join(cited.get(o.id, [])),  # type: ignore[arg-type]
        }
        for o in (
            await session.exec(
                select(Observation)
                .where(Observation.consultation_id == consultation_id)
                .order_by(Observation.id)
            )
        ).all()
    ]

    versions = (
        await session.exec(
            select(FindingVersion)
            .where(FindingVersion.finding_id.in_(list(finding_code)))  # type: ignore[attr-defined]
            .order_by(FindingVersion.finding_id, FindingVersion.version)
        )
    ).all()
    version_of = {v.id: v for v in versions}
    status_of = {f.id: f for f in findings}
    finding_rows = [
        {
            "code": finding_code[v.finding_id],
            "version": v.version,
            "status": status_of[v.finding_id].status,
            "created_at": _iso(v.created_at),
            "published_at": _iso(v.published_at),
            "observations": " ".join(str(i) for i in sorted(cites.get(v.finding_id, []))),
            "text": v.text,
        }
        for v in versions
    ]

    stances = [
        {
            "finding": finding_code[version_of[s.finding_version_id].finding_id],
            "version": version_of[s.finding_version_id].version,
            "participant": pseudonym(s.participant_id),
            "category": category_of.get(s.participant_id),
            "meeting": None,
            "choice": s.choice,
            "reason": s.reason,
            "channel": s.channel,
            "updated_at": _iso(s.updated_at),
        }
        for s in (
            await session.exec(
                select(Stance)
                .where(Stance.finding_version_id.in_(list(version_of)))  # type: ignore[attr-defined]
                .order_by(Stance.id)
            )
        ).all()
    ]
    for s in (
        await session.exec(
            select(MeetingStance)
            .where(MeetingStance.finding_version_id.in_(list(version_of)))  # type: ignore[attr-defined]
            .order_by(MeetingStance.id)
        )
    ).all():
        version = version_of[s.finding_version_id]
        stances.append(
            {
                "finding": finding_code[version.finding_id],
                "version": version.version,
                "participant": None,
                "category": in_room[s.meeting_id].group(s.category),
                "meeting": meetings.get(s.meeting_id),
                "choice": s.choice,
                "reason": s.reason,
                "channel": "meeting",
                "updated_at": None,
            }
        )

    actions = (
        await session.exec(
            select(Action).where(Action.consultation_id == consultation_id).order_by(Action.id)
        )
    ).all()
    action_code = {a.id: a.code for a in actions}
    answers_of: dict[int, list[str]] = {}
    for link in (
        await session.exec(
            select(ActionFinding).where(
                ActionFinding.action_id.in_(list(action_code))  # type: ignore[attr-defined]
            )
        )
    ).all():
        answers_of.setdefault(link.action_id, []).append(finding_code.get(link.finding_id, ""))
    action_rows = [
        {
            "code": a.code,
            "status": a.status,
            "merged_into": action_code.get(a.merged_into_id),  # type: ignore[arg-type]
            "participant": pseudonym(a.proposer_id),
            "category": category_of.get(a.proposer_id),
            "findings": " ".join(sorted(answers_of.get(a.id, []))),  # type: ignore[arg-type]
            "created_at": _iso(a.created_at),
            "text": a.text,
        }
        for a in actions
    ]

    def codes(ranking: list[int]) -> str:
        return " ".join(action_code.get(i, "?") for i in ranking)

    ballots = [
        {
            "participant": pseudonym(b.participant_id),
            "category": category_of.get(b.participant_id),
            "meeting": None,
            "ranking": codes(b.ranking),
            "channel": b.channel,
            "updated_at": _iso(b.updated_at),
        }
        for b in (
            await session.exec(
                select(Ballot).where(Ballot.consultation_id == consultation_id).order_by(Ballot.id)
            )
        ).all()
    ]
    ballots += [
        {
            "participant": None,
            "category": in_room[b.meeting_id].group(b.category),
            "meeting": meetings.get(b.meeting_id),
            "ranking": codes(b.ranking),
            "channel": "meeting",
            "updated_at": None,
        }
        for b in (
            await session.exec(
                select(MeetingBallot)
                .where(MeetingBallot.meeting_id.in_(list(meetings)))  # type: ignore[attr-defined]
                .order_by(MeetingBallot.id)
            )
        ).all()
    ]

    answers = [
        {
            "questionnaire": questionnaire.key,
            "question": question.position,
            "kind": question.kind,
            "participant": pseudonym(answer.participant_id),
            "category": category_of.get(answer.participant_id),
            "value": answer.value_int,
            "text": answer.value_text,
            "channel": answer.channel,
            "updated_at": _iso(answer.updated_at),
        }
        for answer, question, questionnaire in (
            await session.exec(
                select(Answer, Question, Questionnaire)
                .join(Question, Question.id == Answer.question_id)
                .join(Questionnaire, Questionnaire.id == Question.questionnaire_id)
                .where(Questionnaire.consultation_id == consultation_id)
                .order_by(Questionnaire.id, Question.position, Answer.id)
            )
        ).all()
    ]
    return {
        "observations": observations,
        "findings": finding_rows,
        "stances": stances,
        "actions": action_rows,
        "ballots": ballots,
        "answers": answers,
    }
