"""Actions and ballots: proposing, merging, shortlisting, ranking.

Participants propose actions during the propose phase, within the same limits as observations.
Coordinators add their own, link them to the findings they answer, merge duplicates and set the
shortlist. In the rank phase each participant orders the shortlist, all of it or only a top k
(the consultation's `ballot_k`, 5 by default); the listed actions are preferred to every other,
which stay tied. The tally (`consultation.ranking`) is a Schulze order with Borda scores beside
it, overall and per actor category. Paper ballots collected at a meeting are imported from a
CSV file with the same checks, and only if every row passes.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import anonymity, audit, clock, files, participants, ranking
from consultation.common import (
    actor_of,
    clean_text,
    code_key,
    get_consultation,
    local_day_start,
    lock_consultation,
    lock_participant,
    next_code,
    normalize_code,
    require_coordinator,
    rules,
)
from consultation.errors import NotFound, UserError
from consultation.findings import get_finding
from consultation.phases import require_open
from consultation.preferences import require_consent
from models import (
    Action,
    ActionFinding,
    ActionStatus,
    Ballot,
    Channel,
    Finding,
    Meeting,
    MeetingBallot,
    Participant,
    PhaseKind,
)
from models.db import insert_for

logger = logging.getLogger(__name__)

ACTION_MAX_LENGTH = 2000


# --- proposing and curating ----------------------------------------------------------------


async def _new_action(
    session: AsyncSession,
    *,
    consultation_id: int,
    text: str,
    proposer: Participant | None,
    channel: str,
) -> Action:
    await lock_consultation(session=session, consultation_id=consultation_id)
    existing = (
        await session.exec(select(Action.code).where(Action.consultation_id == consultation_id))
    ).all()
    action = Action(
        consultation_id=consultation_id,
        code=next_code("A", existing),
        text=text,
        proposer_id=proposer.id if proposer is not None else None,
        status=ActionStatus.PROPOSED,
        channel=str(channel),
        created_at=clock.now(),
    )
    session.add(action)
    await session.flush()
    return action


async def propose_action(
    *, session: AsyncSession, participant: Participant, text: str, channel: str
) -> Action:
    """A participant's proposal during the propose phase (same limits as observations)."""
    require_consent(participant)
    await require_open(
        session=session, consultation_id=participant.consultation_id, kind=PhaseKind.PROPOSE
    )
    consultation = await get_consultation(
        session=session, consultation_id=participant.consultation_id
    )
    value = clean_text(
        text,
        area="action",
        limit=rules(consultation).observation_max_length,
    )
    await lock_participant(session=session, participant=participant)
    cap = rules(consultation).daily_cap
    today = (
        await session.execute(
            select(func.count())
            .select_from(Action)
            .where(Action.proposer_id == participant.id)
            .where(Action.created_at >= local_day_start(consultation, clock.now()))
        )
    ).scalar_one()
    if today >= cap:
        raise UserError("action.daily_cap", cap=cap)
    return await _new_action(
        session,
        consultation_id=participant.consultation_id,
        text=value,
        proposer=participant,
        channel=channel,
    )


async def get_action(*, session: AsyncSession, consultation_id: int, code: str) -> Action:
    action = (
        await session.exec(
            select(Action)
            .where(Action.consultation_id == consultation_id)
            .where(Action.code == normalize_code(code))
        )
    ).first()
    if action is None:
        raise NotFound("action.unknown", action=normalize_code(code) or code)
    return action


async def actions_of(
    *, session: AsyncSession, consultation_id: int, status: str | None = None
) -> list[Action]:
    """The actions of a consultation in code order (A2 before A10)."""
    query = select(Action).where(Action.consultation_id == consultation_id)
    if status is not None:
        query = query.where(Action.status == status)
    return sorted((await session.exec(query)).all(), key=lambda a: code_key(a.code))


async def proposals_of(*, session: AsyncSession, participant: Participant) -> list[Action]:
    """The actions a person proposed, oldest first."""
    return list(
        (
            await session.exec(
                select(Action)
                .where(Action.proposer_id == participant.id)
                .order_by(Action.created_at, Action.id)  # type: ignore[arg-type]
            )
        ).all()
    )


async def finding_codes_of(*, session: AsyncSession, action: Action) -> list[str]:
    codes = (
        await session.exec(
            select(Finding.code)
            .join(ActionFinding, ActionFinding.finding_id == Finding.id)
            .where(ActionFinding.action_id == action.id)
        )
    ).all()
    return sorted(codes, key=code_key)


async def add_action(
    *,
    session: AsyncSession,
    consultation_id: int,
    by: Participant | None,
    text: str,
    finding_codes: Iterable[str] = (),
    actor_label: str | None = None,
    channel: str = Channel.CLI,
) -> Action:
    """A coordinator's action (from a meeting, say), optionally answering some findings."""
    require_coordinator(by, consultation_id)
    value = clean_text(text, area="action", limit=ACTION_MAX_LENGTH)
    findings = [
        await get_finding(session=session, consultation_id=consultation_id, code=code)
        for code in dict.fromkeys(normalize_code(c) for c in finding_codes if c.strip())
    ]
    action = await _new_action(
        session,
        consultation_id=consultation_id,
        text=value,
        proposer=None,
        channel=channel,
    )
    for finding in findings:
        session.add(ActionFinding(action_id=action.id, finding_id=finding.id))
    await session.flush()
    await audit.record(
        session=session,
        consultation_id=consultation_id,
        action="action.added",
        subject=action.code,
        detail={"findings": [f.code for f in findings]},
        **actor_of(by, actor_label),
    )
    return action


async def link_findings(
    *,
    session: AsyncSession,
    consultation_id: int,
    code: str,
    finding_codes: Iterable[str],
    by: Participant | None,
    actor_label: str | None = None,
) -> Action:
    """Record that an action answers these findings (added to those it answered already)."""
    require_coordinator(by, consultation_id)
    action = await get_action(session=session, consultation_id=consultation_id, code=code)
    have = set(
        (
            await session.exec(
                select(ActionFinding.finding_id).where(ActionFinding.action_id == action.id)
            )
        ).all()
    )
    added = []
    for finding_code in dict.fromkeys(normalize_code(c) for c in finding_codes if c.strip()):
        finding = await get_finding(
            session=session, consultation_id=consultation_id, code=finding_code
        )
        if finding.id not in have:
            session.add(ActionFinding(action_id=action.id, finding_id=finding.id))
            have.add(finding.id)
            added.append(finding.code)
    if added:
        await session.flush()
        await audit.record(
            session=session,
            consultation_id=consultation_id,
            action="action.linked",
            subject=action.code,
            detail={"findings": added},
            **actor_of(by, actor_label),
        )
    return action


async def _ballots_cast(session: AsyncSession, consultation_id: int) -> int:
    return (
        await session.execute(
            select(func.count())
            .select_from(Ballot)
            .where(Ballot.consultation_id == consultation_id)
        )
    ).scalar_one()


async def merge_action(
    *,
    session: AsyncSession,
    consultation_id: int,
    code: str,
    into_code: str,
    by: Participant | None,
    actor_label: str | None = None,
) -> Action:
    """Merge a duplicate action into another; the findings it answered move with it.

    A shortlisted duplicate hands its place on the shortlist to the action it merges into. Once
    ballots have been cast the shortlist is frozen, and so are merges that would touch it.
    """
    require_coordinator(by, consultation_id)
    action = await get_action(session=session, consultation_id=consultation_id, code=code)
    target = await get_action(session=session, consultation_id=consultation_id, code=into_code)
    if action.id == target.id:
        raise UserError("action.merge_self", action=action.code)
    if action.merged_into_id == target.id:
        return action
    for item in (target, action):
        if item.status == ActionStatus.MERGED:
            into = await session.get(Action, item.merged_into_id)
            raise UserError("action.merged", action=item.code, into=into.code if into else "")
    if ActionStatus.SHORTLISTED in (action.status, target.status) and await _ballots_cast(
        session, consultation_id
    ):
        raise UserError("action.shortlist_frozen")
    was_shortlisted = action.status == ActionStatus.SHORTLISTED
    action.status = ActionStatus.MERGED
    action.merged_into_id = target.id
    session.add(action)
    if was_shortlisted:
        target.status = ActionStatus.SHORTLISTED
        session.add(target)
    # Earlier duplicates of this one now point at the target directly.
    for earlier in (
        await session.exec(select(Action).where(Action.merged_into_id == action.id))
    ).all():
        earlier.merged_into_id = target.id
        session.add(earlier)
    links = (
        await session.exec(select(ActionFinding).where(ActionFinding.action_id == action.id))
    ).all()
    target_links = set(
        (
            await session.exec(
                select(ActionFinding.finding_id).where(ActionFinding.action_id == target.id)
            )
        ).all()
    )
    for link in links:
        if link.finding_id not in target_links:
            session.add(ActionFinding(action_id=target.id, finding_id=link.finding_id))
    await session.flush()
    await audit.record(
        session=session,
        consultation_id=consultation_id,
        action="action.merged",
        subject=action.code,
        detail={"into": target.code},
        **actor_of(by, actor_label),
    )
    return action


async def shortlist(
    *,
    session: AsyncSession,
    consultation_id: int,
    by: Participant | None,
    codes: Iterable[str],
    actor_label: str | None = None,
) -> list[Action]:
    """Make the shortlist exactly `codes` (others go back to proposed); returns it in code order.

    Setting the same shortlist again changes nothing; changing it after ballots were cast is
    refused, since it would change what those ballots mean.
    """
    require_coordinator(by, consultation_id)
    wanted = list(dict.fromkeys(normalize_code(c) for c in codes if c.strip()))
    if not wanted:
        raise UserError("action.shortlist_empty")
    chosen = [
        await get_action(session=session, consultation_id=consultation_id, code=code)
        for code in wanted
    ]
    for action in chosen:
        if action.status == ActionStatus.MERGED:
            into = await session.get(Action, action.merged_into_id)
            raise UserError("action.merged", action=action.code, into=into.code if into else "")
    current = await actions_of(
        session=session, consultation_id=consultation_id, status=ActionStatus.SHORTLISTED
    )
    if {a.code for a in current} == set(wanted):
        return current
    if await _ballots_cast(session, consultation_id):
        raise UserError("action.shortlist_frozen")
    for action in current:
        if action.code not in wanted:
            action.status = ActionStatus.PROPOSED
            session.add(action)
    for action in chosen:
        action.status = ActionStatus.SHORTLISTED
        session.add(action)
    await session.flush()
    result = sorted(chosen, key=lambda a: code_key(a.code))
    await audit.record(
        session=session,
        consultation_id=consultation_id,
        action="actions.shortlisted",
        subject=" ".join(a.code for a in result)[:120],
        detail={"codes": [a.code for a in result]},
        **actor_of(by, actor_label),
    )
    return result


async def shortlist_for(*, session: AsyncSession, participant: Participant) -> list[Action]:
    """The shortlist in this person's own stable random order."""
    actions = await actions_of(
        session=session,
        consultation_id=participant.consultation_id,
        status=ActionStatus.SHORTLISTED,
    )
    return ranking.personal_order(
        actions, seed=f"{participant.consultation_id}:{participant.id}:shortlist"
    )


# --- ballots -------------------------------------------------------------------------------


def parse_ballot(text: str) -> list[str]:
    """'A3 A1 A7', 'A3, A1 > A7', 'RANK A3 A1' → ['A3', 'A1', 'A7']."""
    parts = [normalize_code(p) for p in re.split(r"[\s,;>]+", text or "") if p.strip()]
    if parts and parts[0] in {"RANK", "CLASSEMENT", "VOTE"}:
        parts = parts[1:]
    return parts


def check_ballot(codes: Sequence[str], shortlisted: Sequence[str], k: int) -> list[str]:
    """The ballot's codes, or a `UserError` that says exactly what is wrong with it."""
    if not shortlisted:
        raise UserError("ballot.no_shortlist")
    limit = min(k, len(shortlisted))
    picked = [normalize_code(c) for c in codes if normalize_code(c)]
    if not picked:
        raise UserError("ballot.empty", k=limit)
    seen: set[str] = set()
    for code in picked:
        if code in seen:
            raise UserError("ballot.repeated", action=code)
        seen.add(code)
        if code not in shortlisted:
            raise UserError(
                "ballot.not_shortlisted",
                action=code,
                shortlist=" ".join(sorted(shortlisted, key=code_key)),
            )
    if len(picked) > limit:
        raise UserError("ballot.too_long", k=limit, count=len(picked))
    return picked


async def _upsert_ballot(
    session: AsyncSession, participant: Participant, ids: list[int], channel: str
) -> Ballot:
    current = clock.now()
    statement = insert_for(session)(Ballot).values(
        consultation_id=participant.consultation_id,
        participant_id=participant.id,
        ranking=ids,
        channel=str(channel),
        created_at=current,
        updated_at=current,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["consultation_id", "participant_id"],
        set_={
            "ranking": statement.excluded.ranking,
            "channel": statement.excluded.channel,
            "updated_at": statement.excluded.updated_at,
        },
    )
    await session.execute(statement)
    return (
        await session.exec(
            select(Ballot)
            .where(Ballot.consultation_id == participant.consultation_id)
            .where(Ballot.participant_id == participant.id)
            .execution_options(populate_existing=True)
        )
    ).one()


async def cast_ballot(
    *, session: AsyncSession, participant: Participant, codes: Sequence[str], channel: str
) -> Ballot:
    """Record a person's ranking of the shortlist (best first, 1 to k actions, no repeats).

    A new ballot replaces the person's previous one.
    """
    require_consent(participant)
    await require_open(
        session=session, consultation_id=participant.consultation_id, kind=PhaseKind.RANK
    )
    consultation = await get_consultation(
        session=session, consultation_id=participant.consultation_id
    )
    actions = await actions_of(
        session=session,
        consultation_id=participant.consultation_id,
        status=ActionStatus.SHORTLISTED,
    )
    by_code = {a.code: a for a in actions}
    picked = check_ballot(codes, list(by_code), rules(consultation).ballot_k)
    return await _upsert_ballot(
        session,
        participant,
        [by_code[c].id for c in picked],  # type: ignore[misc]
        channel,
    )


async def ballot_of(*, session: AsyncSession, participant: Participant) -> list[str] | None:
    """The codes of a person's ballot, best first, or None if they have not ranked yet."""
    ballot = (
        await session.exec(
            select(Ballot)
            .where(Ballot.consultation_id == participant.consultation_id)
            .where(Ballot.participant_id == participant.id)
        )
    ).first()
    if ballot is None:
        return None
    codes = dict(
        (
            await session.execute(
                select(Action.id, Action.code).where(
                    Action.id.in_(ballot.ranking)  # type: ignore[union-attr]
                )
            )
        ).all()
    )
    return [codes[i] for i in ballot.ranking if i in codes]


async def ranking_results(*, session: AsyncSession, consultation_id: int) -> dict[str, Any]:
    """The Schulze order and Borda scores of the shortlist, overall and per actor category."""
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    actions = await actions_of(
        session=session, consultation_id=consultation_id, status=ActionStatus.SHORTLISTED
    )
    code_of = {a.id: a.code for a in actions}
    codes = [a.code for a in actions]
    rows = (
        await session.execute(
            select(Participant.category, Ballot.ranking)
            .join(Participant, Participant.id == Ballot.participant_id)
            .where(Ballot.consultation_id == consultation_id)
            .order_by(Ballot.id)
        )
    ).all()
    # Ballots filled in on paper at a meeting count like any other, under their category.
    rows += (
        await session.execute(
            select(MeetingBallot.category, MeetingBallot.ranking)
            .join(Meeting, Meeting.id == MeetingBallot.meeting_id)
            .where(Meeting.consultation_id == consultation_id)
            .order_by(MeetingBallot.id)
        )
    ).all()
    tagged = [
        (category, [code_of[i] for i in ranking_ids if i in code_of])
        for category, ranking_ids in rows
    ]
    overall, per_category = ranking.rank_by_category(codes, tagged)
    counts = Counter(category for category, _ in tagged)
    categories = [c["key"] for c in consultation.categories]
    categories += sorted(set(counts) - set(categories))
    # The breakdown a brief may show: categories under five ballots counted together.
    shown = anonymity.groups(counts, categories)
    grouped = [(shown.group(category), ballot) for category, ballot in tagged]
    _, per_group = ranking.rank_by_category(codes, grouped)
    balanced = ranking.balanced(codes, grouped)
    texts = {a.code: a.text for a in actions}
    answers: dict[int, list[str]] = defaultdict(list)
    for action_id, code in (
        await session.execute(
            select(ActionFinding.action_id, Finding.code)
            .join(Finding, Finding.id == ActionFinding.finding_id)
            .where(ActionFinding.action_id.in_(list(code_of)))  # type: ignore[attr-defined]
        )
    ).all():
        answers[action_id].append(code)
    for codes_of_action in answers.values():
        codes_of_action.sort(key=code_key)
    return {
        "k": min(rules(consultation).ballot_k, len(codes)),
        "candidates": [
            {"code": a.code, "text": a.text, "findings": answers.get(a.id, [])}  # type: ignore[arg-type]
            for a in actions
        ],
        "ballots": overall.ballots,
        "ballots_by_category": {key: counts.get(key, 0) for key in categories},
        "overall": {**overall.as_dict(), "table": _table(overall, texts)},
        "by_category": {
            key: {**result.as_dict(), "table": _table(result, texts)}
            for key, result in per_category.items()
        },
        "groups": {"of": shown.of, "merged": list(shown.merged), "counts": shown.counts},
        "by_group": {
            key: {**per_group[key].as_dict(), "table": _table(per_group[key], texts)}
            for key in shown.keys
            if shown.broken_down
        },
        "balanced": {**balanced.as_dict(), "table": _table(balanced, texts)},
    }


def _table(result: ranking.RankingResult, texts: dict[str, str]) -> list[dict[str, Any]]:
    """One row per action in Schulze order: its rank (shared when tied) and Borda score."""
    rows = []
    rank = 1
    for tier in result.tiers:
        for code in sorted(tier, key=lambda c: code_key(str(c))):
            rows.append(
                {
                    "rank": rank,
                    "code": str(code),
                    "text": texts.get(str(code), ""),
                    "tied": len(tier) > 1,
                    "borda": round(float(result.borda[code]), 3),
                }
            )
        rank += len(tier)
    return rows


# --- paper ballots ------------------------------------------------------------------------


@dataclass
class BallotRow:
    line: int
    email: str
    ranking: str


@dataclass
class BallotImportReport:
    imported: int = 0
    replaced: int = 0
    rejected: list[tuple[int, UserError]] = field(default_factory=list)


def read_ballots_csv(text: str, source: str = "<ballots>") -> list[BallotRow]:
    """The rows of a paper-ballot CSV file (columns email,ranking), blank rows skipped."""
    rows = []
    for line, record in files.csv_records(text, source=source, required=("email", "ranking")):
        values = {key: (value or "").strip() for key, value in record.items() if key}
        if not any(values.values()):
            continue
        rows.append(
            BallotRow(line=line, email=values.get("email", ""), ranking=values.get("ranking", ""))
        )
    return rows


async def import_ballots(
    *,
    session: AsyncSession,
    consultation_id: int,
    rows: Sequence[BallotRow],
    by: Participant | None,
    actor_label: str | None = None,
) -> BallotImportReport:
    """Record paper ballots, each checked like any ballot; if one row is rejected, none is kept.

    A paper ballot replaces the person's earlier ballot, as a new ballot from any channel does.
    """
    require_coordinator(by, consultation_id)
    await require_open(session=session, consultation_id=consultation_id, kind=PhaseKind.RANK)
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    actions = await actions_of(
        session=session, consultation_id=consultation_id, status=ActionStatus.SHORTLISTED
    )
    by_code = {a.code: a for a in actions}
    k = rules(consultation).ballot_k
    report = BallotImportReport()
    accepted: list[tuple[Participant, list[int]]] = []
    seen: dict[int, int] = {}
    for row in rows:
        try:
            person = await participants.by_email(
                session=session, consultation_id=consultation_id, email=row.email
            )
            if person.erased_at is not None:
                raise UserError("ballot.forgotten")
            if person.id in seen:
                raise UserError("ballot.duplicate_row", email=person.email, line=seen[person.id])
            picked = check_ballot(parse_ballot(row.ranking), list(by_code), k)
        except UserError as exc:
            report.rejected.append((row.line, exc))
            continue
        seen[person.id] = row.line  # type: ignore[index]
        accepted.append((person, [by_code[c].id for c in picked]))  # type: ignore[misc]
    if report.rejected:
        return report
    for person, ids in accepted:
        existed = await ballot_of(session=session, participant=person) is not None
        await _upsert_ballot(session, person, ids, Channel.PAPER)
        report.imported += 1
        report.replaced += int(existed)
    if accepted:
        await audit.record(
            session=session,
            consultation_id=consultation_id,
            action="ballots.imported",
            detail={"imported": report.imported, "replaced": report.replaced},
            **actor_of(by, actor_label),
        )
    return report
