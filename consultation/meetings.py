"""The meeting loop: what a meeting or a workshop said enters the same pipeline, anonymously.

At a meeting, the room writes observations on cards, says whether it confirms or contests the
findings, and ranks the shortlist on paper. A coordinator types these into one CSV file per
meeting and imports it with the meeting's date, place and attendance by actor category
(`palabre meeting import`). Nothing in it names anyone: each line carries only the category of
the person who gave it, so it counts in every result and every breakdown, and shows in the brief
and the trace as "from the meeting of 12 March".

The rules are those of paper ballots (`actions.import_ballots`): every line is checked as the
same contribution would be from the bot (the phase must be open, a contest needs a reason, a
ballot lists shortlisted actions only), no category gives more answers than it had people in
the room, and a file with any bad line imports nothing and names each bad line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, clock, files
from consultation.actions import actions_of, check_ballot, parse_ballot
from consultation.common import (
    actor_of,
    clean_text,
    get_consultation,
    require_coordinator,
    rules,
)
from consultation.errors import DefinitionError, NotFound, UserError
from consultation.findings import current_text, get_finding
from consultation.phases import require_open
from models import (
    ActionStatus,
    Channel,
    Consultation,
    FindingStatus,
    Meeting,
    MeetingBallot,
    MeetingStance,
    Observation,
    Participant,
    Phase,
    PhaseKind,
    StanceChoice,
)

OBSERVATION, STANCE, BALLOT = "observation", "stance", "ballot"
# The words a secretary may type in the `kind` and `choice` columns, in English or French.
KINDS = {
    "observation": OBSERVATION,
    "stance": STANCE,
    "avis": STANCE,
    "ballot": BALLOT,
    "classement": BALLOT,
    "vote": BALLOT,
}
CHOICES = {
    "confirm": StanceChoice.CONFIRM,
    "confirme": StanceChoice.CONFIRM,
    "confirmé": StanceChoice.CONFIRM,
    "contest": StanceChoice.CONTEST,
    "conteste": StanceChoice.CONTEST,
    "contesté": StanceChoice.CONTEST,
    "abstain": StanceChoice.ABSTAIN,
    "abstention": StanceChoice.ABSTAIN,
}
PHASE_OF = {OBSERVATION: PhaseKind.OBSERVE, STANCE: PhaseKind.REVIEW, BALLOT: PhaseKind.RANK}
COLUMNS = ("kind", "category", "finding", "choice", "ranking", "text")
PLACE_MAX_LENGTH = 200


@dataclass
class MeetingRow:
    line: int
    kind: str
    category: str
    finding: str = ""
    choice: str = ""
    ranking: str = ""
    text: str = ""


@dataclass
class MeetingSpec:
    """The meeting itself: when, where, and how many people of each category were there."""

    held_on: date
    place: str
    attendance: dict[str, int]


@dataclass
class MeetingImportReport:
    meeting_id: int | None = None
    observations: int = 0
    stances: int = 0
    ballots: int = 0
    rejected: list[tuple[int, UserError]] = field(default_factory=list)


def read_meeting_csv(text: str, source: str = "<meeting>") -> list[MeetingRow]:
    """The rows of a meeting file (columns: kind, category, then what the kind needs)."""
    rows = []
    records = files.csv_records(
        text, source=source, required=("kind", "category"), known=set(COLUMNS)
    )
    for line, record in records:
        if None in record:
            raise DefinitionError(source, f"line {line}", "more fields than columns")
        values = {key: (value or "").strip() for key, value in record.items() if key}
        if not any(values.values()):
            continue
        rows.append(MeetingRow(line=line, **{key: values.get(key, "") for key in COLUMNS}))
    return rows


def parse_attendance(text: str, source: str = "--attendance") -> dict[str, int]:
    """'association=12, elected=3' (commas, semicolons or spaces between) → {category: count}."""
    attendance: dict[str, int] = {}
    for part in re.split(r"[\s,;]+", text.strip()):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not value.strip().isdigit():
            raise DefinitionError(source, None, f"{part!r}: write each category as category=number")
        attendance[key.strip().lower()] = attendance.get(key.strip().lower(), 0) + int(value)
    return attendance


async def import_meeting(
    *,
    session: AsyncSession,
    consultation_id: int,
    meeting: MeetingSpec,
    rows: Sequence[MeetingRow],
    by: Participant | None,
    actor_label: str | None = None,
) -> MeetingImportReport:
    """Record what a meeting said; if one row is rejected, nothing is kept.

    A mistake about the meeting itself (an unknown category in the attendance, a date to come,
    the same meeting imported twice) is a `UserError` raised at once.
    """
    require_coordinator(by, consultation_id)
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    categories = [category["key"] for category in consultation.categories]
    await _check_meeting(session, consultation, meeting, categories)

    phases: dict[str, Phase | UserError] = {}
    for kind in PHASE_OF.values():
        try:
            phases[kind] = await require_open(
                session=session, consultation_id=consultation_id, kind=kind
            )
        except UserError as exc:
            phases[kind] = exc
    shortlist = await actions_of(
        session=session, consultation_id=consultation_id, status=ActionStatus.SHORTLISTED
    )
    by_code = {action.code: action for action in shortlist}
    k = rules(consultation).ballot_k
    limit = rules(consultation).observation_max_length

    report = MeetingImportReport()
    given: Counter[tuple[str, str]] = Counter()
    accepted: list[Observation | MeetingStance | MeetingBallot] = []
    for row in rows:
        try:
            kind = KINDS.get(row.kind.lower())
            if kind is None:
                raise UserError("meeting.unknown_kind", kind=row.kind)
            category = row.category.lower()
            if category not in categories:
                raise UserError(
                    "meeting.unknown_category", category=row.category, known=", ".join(categories)
                )
            phase = phases[PHASE_OF[kind]]
            if isinstance(phase, UserError):
                raise phase
            if kind == OBSERVATION:
                text = clean_text(row.text, area="observation", limit=limit)
                accepted.append(
                    Observation(
                        consultation_id=consultation_id,
                        phase_id=phase.id,
                        text=text,
                        channel=Channel.MEETING,
                    )
                )
                continue
            if kind == STANCE:
                made: MeetingStance | MeetingBallot = await _stance(
                    session, consultation_id, row, category, limit
                )
                subject = f"stance:{made.finding_version_id}"
            else:
                picked = check_ballot(parse_ballot(row.ranking), list(by_code), k)
                made = MeetingBallot(
                    category=category, ranking=[by_code[code].id for code in picked]
                )
                subject = "ballot"
            given[subject, category] += 1
            attended = meeting.attendance.get(category, 0)
            if given[subject, category] > attended:
                raise UserError("meeting.more_than_attended", category=category, attended=attended)
            accepted.append(made)
        except UserError as exc:
            report.rejected.append((row.line, exc))
    if report.rejected:
        return report

    now = clock.now()
    record = Meeting(
        consultation_id=consultation_id,
        held_on=meeting.held_on,
        place=meeting.place.strip(),
        attendance={
            key: meeting.attendance[key] for key in categories if key in meeting.attendance
        },
        created_at=now,
    )
    session.add(record)
    await session.flush()
    for item in accepted:
        if isinstance(item, Observation):
            item.meeting_id = record.id
            item.created_at = now
            report.observations += 1
        else:
            item.meeting_id = record.id  # type: ignore[assignment]
            if isinstance(item, MeetingStance):
                report.stances += 1
            else:
                report.ballots += 1
        session.add(item)
    await session.flush()
    report.meeting_id = record.id
    await audit.record(
        session=session,
        consultation_id=consultation_id,
        action="meeting.imported",
        subject=f"{meeting.held_on.isoformat()} {record.place}",
        detail={
            "observations": report.observations,
            "stances": report.stances,
            "ballots": report.ballots,
            "attendance": record.attendance,
        },
        **actor_of(by, actor_label),
    )
    return report


async def _check_meeting(
    session: AsyncSession, consultation: Consultation, meeting: MeetingSpec, categories: list[str]
) -> None:
    place = " ".join(meeting.place.split())
    if not place:
        raise UserError("meeting.no_place")
    if len(place) > PLACE_MAX_LENGTH:
        raise UserError("meeting.place_too_long", limit=PLACE_MAX_LENGTH)
    unknown = [key for key in meeting.attendance if key not in categories]
    if unknown:
        raise UserError(
            "meeting.unknown_category", category=unknown[0], known=", ".join(categories)
        )
    if not sum(meeting.attendance.values()):
        raise UserError("meeting.no_attendance")
    if meeting.held_on > clock.now().astimezone(ZoneInfo(consultation.timezone)).date():
        raise UserError("meeting.in_the_future", held_on=meeting.held_on.isoformat())
    meeting.place = place
    existing = (
        await session.exec(
            select(Meeting)
            .where(Meeting.consultation_id == consultation.id)
            .where(Meeting.held_on == meeting.held_on)
            .where(Meeting.place == place)
        )
    ).first()
    if existing is not None:
        raise UserError(
            "meeting.already_imported", held_on=meeting.held_on.isoformat(), place=place
        )


async def _stance(
    session: AsyncSession, consultation_id: int, row: MeetingRow, category: str, limit: int
) -> MeetingStance:
    choice = CHOICES.get(row.choice.lower())
    if choice is None:
        raise UserError("stance.bad_choice", choice=row.choice)
    finding = await get_finding(session=session, consultation_id=consultation_id, code=row.finding)
    if finding.status != FindingStatus.PUBLISHED:
        raise NotFound("finding.unknown", finding=finding.code)
    reason = clean_text(row.text, area="stance", limit=limit) if row.text.strip() else None
    if choice == StanceChoice.CONTEST and reason is None:
        raise UserError("stance.reason_required", finding=finding.code)
    version = await current_text(session=session, finding=finding)
    return MeetingStance(
        finding_version_id=version.id,  # type: ignore[arg-type]
        category=category,
        choice=choice.value,
        reason=reason,
    )


async def meetings_of(*, session: AsyncSession, consultation_id: int) -> list[Meeting]:
    """The consultation's meetings, oldest first."""
    return list(
        (
            await session.exec(
                select(Meeting)
                .where(Meeting.consultation_id == consultation_id)
                .order_by(Meeting.held_on, Meeting.id)  # type: ignore[arg-type]
            )
        ).all()
    )
