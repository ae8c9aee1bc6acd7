"""After the vote: the local government's answer to every action, its progress, and who hears it.

Once the ranking has closed, coordinators record the official answer to each proposed or
shortlisted action: retained, retained with changes (the wording as retained), or not retained;
a reason is required for the last two. A retained action gets a lead organisation, a due date and
optional milestones, then progress updates: started, late, done or abandoned (a note is required
for late and abandoned), milestones ticked. Every change is dated (`PlanEvent`) and audited.

Members hear about it in their own channel, in the follow-up digest of the optional `follow`
phase: each member about the actions they touched (proposed, ranked in their top three, or that
answer a finding they confirmed or contested), and everyone about any action not retained, with
its reason. A digest tells each action once, with what changed since the previous digest, and is
not sent to someone for whom nothing changed.

The follow-up questionnaire asks each member, per retained action they touched, whether it
progresses as announced (yes / partly / no / don't know, with an optional remark); its results
are given per actor category.
"""

from __future__ import annotations

import calendar
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, clock, outbox
from consultation.actions import ranking_results
from consultation.common import (
    actor_of,
    clean_text,
    code_key,
    get_consultation,
    normalize_code,
    people_to_tell,
    require_coordinator,
    rules,
)
from consultation.errors import NotFound, PhaseClosed, UserError
from consultation.preferences import has_consented, require_consent
from consultation.ranking import personal_order
from models import (
    Action,
    ActionDecision,
    ActionFinding,
    ActionMilestone,
    ActionStatus,
    Ballot,
    Cadence,
    Channel,
    Decision,
    FindingVersion,
    FollowUpAnswer,
    FollowUpRound,
    FollowUpView,
    Participant,
    Phase,
    PhaseKind,
    PhaseStatus,
    PlanEvent,
    Progress,
    Stance,
    StanceChoice,
)
from models.db import insert_for

logger = logging.getLogger(__name__)

DIGEST_TEMPLATE = "follow_digest"
QUESTIONNAIRE_TEMPLATE = "followup_questionnaire"
TOP = 3
RETAINED = (Decision.RETAINED, Decision.RETAINED_WITH_CHANGES)
# Progress a coordinator reports; `planned` is only the state before the first report.
REPORTED = (Progress.STARTED, Progress.LATE, Progress.DONE, Progress.ABANDONED)
FINISHED = (Progress.DONE, Progress.ABANDONED)
NEEDS_NOTE = (Progress.LATE, Progress.ABANDONED)
DECIDABLE = (ActionStatus.PROPOSED, ActionStatus.SHORTLISTED)
# Events a digest tells.
DECIDED, PROGRESSED, MILESTONE = "decision", "progress", "milestone"

# The words each channel accepts, in both languages.
_DECISION_WORDS = {
    "retained": Decision.RETAINED,
    "retenue": Decision.RETAINED,
    "retenu": Decision.RETAINED,
    "retained-with-changes": Decision.RETAINED_WITH_CHANGES,
    "changed": Decision.RETAINED_WITH_CHANGES,
    "retenue-avec-modifications": Decision.RETAINED_WITH_CHANGES,
    "modifiee": Decision.RETAINED_WITH_CHANGES,
    "modifiée": Decision.RETAINED_WITH_CHANGES,
    "not-retained": Decision.NOT_RETAINED,
    "non-retenue": Decision.NOT_RETAINED,
    "non-retenu": Decision.NOT_RETAINED,
}
_STATUS_WORDS = {
    "started": Progress.STARTED,
    "engagee": Progress.STARTED,
    "engagée": Progress.STARTED,
    "commencee": Progress.STARTED,
    "commencée": Progress.STARTED,
    "late": Progress.LATE,
    "en-retard": Progress.LATE,
    "retard": Progress.LATE,
    "done": Progress.DONE,
    "realisee": Progress.DONE,
    "réalisée": Progress.DONE,
    "faite": Progress.DONE,
    "abandoned": Progress.ABANDONED,
    "abandonnee": Progress.ABANDONED,
    "abandonnée": Progress.ABANDONED,
}
_VIEW_WORDS = {
    "yes": FollowUpView.YES,
    "oui": FollowUpView.YES,
    "partly": FollowUpView.PARTLY,
    "partially": FollowUpView.PARTLY,
    "partiellement": FollowUpView.PARTLY,
    "en-partie": FollowUpView.PARTLY,
    "no": FollowUpView.NO,
    "non": FollowUpView.NO,
    "unknown": FollowUpView.UNKNOWN,
    "dont-know": FollowUpView.UNKNOWN,
    "don't-know": FollowUpView.UNKNOWN,
    "?": FollowUpView.UNKNOWN,
    "nsp": FollowUpView.UNKNOWN,
    "ne-sais-pas": FollowUpView.UNKNOWN,
    "je-ne-sais-pas": FollowUpView.UNKNOWN,
}
VIEWS = [view.value for view in FollowUpView]


def _word(text: str) -> str:
    return re.sub(r"[\s_]+", "-", (text or "").strip().lower().replace("’", "'"))


def parse_decision(text: str) -> Decision:
    """`retained`, `retained-with-changes`, `not-retained` (or their French), any spacing."""
    found = _DECISION_WORDS.get(_word(text)) or _DECISION_WORDS.get(_word(text).rstrip("s"))
    if found is None:
        raise UserError("plan.unknown_decision", value=text)
    return found


def parse_status(text: str) -> Progress:
    """`started`, `late`, `done`, `abandoned` (or their French)."""
    found = _STATUS_WORDS.get(_word(text))
    if found is None:
        raise UserError("plan.unknown_status", value=text)
    return found


def parse_view(text: str) -> FollowUpView:
    """`yes`, `partly`, `no`, `unknown` (don't know), or their French."""
    found = _VIEW_WORDS.get(_word(text))
    if found is None:
        raise UserError("plan.unknown_view", value=text)
    return found


def parse_due(text: str) -> date:
    """A due date: `2028-06` (the end of that month) or `2028-06-15`."""
    value = (text or "").strip()
    month = re.fullmatch(r"(\d{4})-(\d{1,2})", value)
    try:
        if month:
            year, number = int(month.group(1)), int(month.group(2))
            return date(year, number, calendar.monthrange(year, number)[1])
        return date.fromisoformat(value)
    except ValueError as exc:
        raise UserError("plan.bad_due", value=value) from exc


# --- reading the plan ------------------------------------------------------------------------


async def ranking_closed_at(*, session: AsyncSession, consultation_id: int) -> datetime | None:
    """When the ranking ended: the last rank phase's close, once none is open or to come."""
    phases = (
        await session.exec(
            select(Phase)
            .where(Phase.consultation_id == consultation_id)
            .where(Phase.kind == PhaseKind.RANK)
        )
    ).all()
    if not phases or any(phase.status != PhaseStatus.CLOSED for phase in phases):
        return None
    return max(phase.closed_at or phase.closes_at for phase in phases)


async def decidable_actions(*, session: AsyncSession, consultation_id: int) -> list[Action]:
    """The actions that get an official answer: every proposed and shortlisted one."""
    actions = (
        await session.exec(
            select(Action)
            .where(Action.consultation_id == consultation_id)
            .where(Action.status.in_([str(s) for s in DECIDABLE]))  # type: ignore[attr-defined]
        )
    ).all()
    return sorted(actions, key=lambda action: code_key(action.code))


async def decisions_of(*, session: AsyncSession, consultation_id: int) -> dict[int, ActionDecision]:
    """action id → its decision."""
    rows = (
        await session.exec(
            select(ActionDecision).where(ActionDecision.consultation_id == consultation_id)
        )
    ).all()
    return {row.action_id: row for row in rows}


async def milestones_of(
    *, session: AsyncSession, decision_ids: Collection[int]
) -> dict[int, list[ActionMilestone]]:
    """decision id → its milestones, in order."""
    found: dict[int, list[ActionMilestone]] = defaultdict(list)
    if not decision_ids:
        return found
    rows = (
        await session.exec(
            select(ActionMilestone)
            .where(ActionMilestone.decision_id.in_(list(decision_ids)))  # type: ignore[attr-defined]
            .order_by(ActionMilestone.decision_id, ActionMilestone.position)
        )
    ).all()
    for row in rows:
        found[row.decision_id].append(row)
    return found


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def action_state(
    action: Action, decision: ActionDecision | None, milestones: list[ActionMilestone]
) -> dict[str, Any]:
    """One action's answer and progress as plain JSON (what every message and export shows)."""
    retained = decision is not None and decision.decision in RETAINED
    return {
        "code": action.code,
        "text": action.text,
        "shortlisted": action.status == ActionStatus.SHORTLISTED,
        "decision": decision.decision if decision else None,
        "wording": decision.wording if decision else None,
        "reason": decision.reason if decision else None,
        "lead": decision.lead if retained else None,
        "due": _iso(decision.due_on) if retained and decision else None,
        "status": decision.status if retained and decision else None,
        "note": decision.status_note if retained and decision else None,
        "status_at": _iso(decision.status_at) if retained and decision else None,
        "decided_at": _iso(decision.decided_at) if decision else None,
        "milestones": [
            {"position": m.position, "text": m.text, "done": m.done_at is not None}
            for m in milestones
        ]
        if retained
        else [],
    }


async def plan_of(*, session: AsyncSession, consultation_id: int) -> dict[str, Any]:
    """The whole plan: every decidable action with its answer and progress, best ranked first.

    {"ranking_over", "actions": [action_state + rank, members], "missing": [codes],
    "decisions": {decision: count}, "statuses": {status: count}}. `members` is the members'
    view of the latest follow-up questionnaire that asked about it (counts per answer), or None.
    """
    closed = await ranking_closed_at(session=session, consultation_id=consultation_id)
    ranks = await _ranks(session, consultation_id) if closed else {}
    actions = await decidable_actions(session=session, consultation_id=consultation_id)
    decisions = await decisions_of(session=session, consultation_id=consultation_id)
    milestones = await milestones_of(
        session=session, decision_ids=[d.id for d in decisions.values() if d.id is not None]
    )
    views = await _latest_views(session, consultation_id)
    rows = []
    for action in actions:
        decision = decisions.get(action.id)  # type: ignore[arg-type]
        state = action_state(action, decision, milestones.get(decision.id, []) if decision else [])
        state["rank"] = ranks.get(action.code)
        state["members"] = views.get(action.id)  # type: ignore[arg-type]
        rows.append(state)
    rows.sort(
        key=lambda row: (row["rank"] if row["rank"] is not None else 10**9, code_key(row["code"]))
    )
    return {
        "ranking_over": closed is not None,
        "ranking_closed_at": _iso(closed),
        "actions": rows,
        "missing": [row["code"] for row in rows if row["decision"] is None],
        "decisions": dict(Counter(row["decision"] for row in rows if row["decision"])),
        "statuses": dict(Counter(row["status"] for row in rows if row["status"])),
    }


async def _ranks(session: AsyncSession, consultation_id: int) -> dict[str, int]:
    """Shortlisted action code → its final rank (shared by tied actions)."""
    results = await ranking_results(session=session, consultation_id=consultation_id)
    return {row["code"]: row["rank"] for row in results["overall"]["table"]}


async def _latest_views(session: AsyncSession, consultation_id: int) -> dict[int, dict[str, int]]:
    """action id → answer counts in the latest round that has answers about it."""
    rows = (
        await session.exec(
            select(FollowUpAnswer.action_id, FollowUpAnswer.value, FollowUpRound.number)
            .join(FollowUpRound, FollowUpRound.id == FollowUpAnswer.round_id)
            .where(FollowUpRound.consultation_id == consultation_id)
        )
    ).all()
    latest: dict[int, int] = {}
    for action_id, _value, number in rows:
        latest[action_id] = max(latest.get(action_id, 0), number)
    views: dict[int, dict[str, int]] = {}
    for action_id, value, number in rows:
        if number == latest[action_id]:
            counts = views.setdefault(action_id, {view: 0 for view in VIEWS})
            counts[value] = counts.get(value, 0) + 1
    return views


# --- recording the answer and the progress ---------------------------------------------------


async def _decidable(session: AsyncSession, consultation_id: int, code: str) -> Action:
    action = (
        await session.exec(
            select(Action)
            .where(Action.consultation_id == consultation_id)
            .where(Action.code == normalize_code(code))
        )
    ).first()
    if action is None:
        raise NotFound("action.unknown", action=normalize_code(code) or code)
    if action.status == ActionStatus.MERGED and action.merged_into_id is not None:
        into = await session.get(Action, action.merged_into_id)
        raise UserError("action.merged", action=action.code, into=into.code if into else "?")
    if action.status not in DECIDABLE:
        raise UserError("plan.not_decidable", action=action.code)
    return action


def _text(value: str | None, limit: int) -> str | None:
    if value is None or not value.strip():
        return None
    return clean_text(value, area="plan", limit=limit)


async def decide(
    *,
    session: AsyncSession,
    consultation_id: int,
    code: str,
    decision: Decision | str,
    reason: str | None = None,
    wording: str | None = None,
    lead: str | None = None,
    due: date | str | None = None,
    milestones: list[str] | None = None,
    by: Participant | None = None,
    actor_label: str | None = None,
) -> ActionDecision:
    """Record (or change) the official answer to action `code`, once the ranking has closed.

    Not retained and retained with changes need a `reason`; retained with changes needs the
    retained `wording`. A retained action may get a `lead`, a `due` date and `milestones` (the
    list replaces the previous one; a milestone kept by its text keeps its tick). Recording the
    same answer again changes nothing and tells nobody twice.
    """
    require_coordinator(by, consultation_id)
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    if await ranking_closed_at(session=session, consultation_id=consultation_id) is None:
        raise UserError("plan.ranking_not_over")
    action = await _decidable(session, consultation_id, code)
    choice = decision if isinstance(decision, Decision) else parse_decision(decision)
    limit = rules(consultation).observation_max_length
    reason = _text(reason, limit)
    wording = _text(wording, limit)
    if choice != Decision.RETAINED and reason is None:
        raise UserError("plan.reason_required", action=action.code)
    if choice == Decision.RETAINED_WITH_CHANGES and wording is None:
        raise UserError("plan.wording_required", action=action.code)
    retained = choice in RETAINED
    lead = _text(lead, 300) if retained else None
    due_on = (parse_due(due) if isinstance(due, str) else due) if retained else None
    wording = wording if choice == Decision.RETAINED_WITH_CHANGES else None

    current = clock.now()
    row = (
        await session.exec(select(ActionDecision).where(ActionDecision.action_id == action.id))
    ).first()
    values = {
        "decision": str(choice),
        "wording": wording,
        "reason": reason,
        "lead": lead if lead is not None or row is None else row.lead,
        "due_on": due_on if due_on is not None or row is None else row.due_on,
    }
    if not retained:
        values.update(lead=None, due_on=None)
    changed = row is None or any(getattr(row, k) != v for k, v in values.items())
    if row is None:
        row = ActionDecision(
            consultation_id=consultation_id,
            action_id=action.id,
            decided_by_id=by.id if by else None,
            decided_at=current,
            updated_at=current,
            **values,
        )
    elif changed:
        for name, value in values.items():
            setattr(row, name, value)
        row.decided_by_id = by.id if by else None
        row.decided_at = current
        row.updated_at = current
    if not retained:
        row.status = Progress.PLANNED
        row.status_note = None
    session.add(row)
    await session.flush()
    if retained and milestones is not None:
        changed |= await _set_milestones(session, row, milestones, limit)
    if not changed:
        return row
    await _event(session, action, DECIDED, str(choice), reason, by, actor_label)
    await audit.record(
        session=session,
        consultation_id=consultation_id,
        action="plan.decided",
        subject=action.code,
        reason=reason,
        detail={
            "decision": str(choice),
            "wording": wording,
            "lead": row.lead,
            "due": _iso(row.due_on),
        },
        **actor_of(by, actor_label),
    )
    logger.info("action %s: %s", action.code, choice)
    return row


async def _set_milestones(
    session: AsyncSession, row: ActionDecision, texts: list[str], limit: int
) -> bool:
    wanted = [text for text in (_text(t, limit) for t in texts) if text]
    existing = (await milestones_of(session=session, decision_ids=[row.id])).get(row.id, [])  # type: ignore[list-item]
    if [m.text for m in existing] == wanted:
        return False
    done = {m.text: m.done_at for m in existing}
    for milestone in existing:
        await session.delete(milestone)
    await session.flush()
    for position, text in enumerate(wanted, start=1):
        session.add(
            ActionMilestone(
                decision_id=row.id, position=position, text=text, done_at=done.get(text)
            )
        )
    await session.flush()
    return True


async def _event(
    session: AsyncSession,
    action: Action,
    kind: str,
    value: str,
    note: str | None,
    by: Participant | None,
    actor_label: str | None,
) -> None:
    session.add(
        PlanEvent(
            consultation_id=action.consultation_id,
            action_id=action.id,
            kind=kind,
            value=value,
            note=note,
            actor_id=by.id if by else None,
            actor_label=None if by else (actor_label or "system"),
            at=clock.now(),
        )
    )


async def record_progress(
    *,
    session: AsyncSession,
    consultation_id: int,
    code: str,
    status: Progress | str | None = None,
    note: str | None = None,
    tick: Collection[int] = (),
    by: Participant | None = None,
    actor_label: str | None = None,
) -> ActionDecision:
    """Report where a retained action stands (`status`, with a `note`, required for late and
    abandoned) and tick milestones by number. Each change is dated and audited; repeating the
    same report changes nothing."""
    require_coordinator(by, consultation_id)
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    action = await _decidable(session, consultation_id, code)
    row = (
        await session.exec(select(ActionDecision).where(ActionDecision.action_id == action.id))
    ).first()
    if row is None:
        raise UserError("plan.not_decided", action=action.code)
    if row.decision not in RETAINED:
        raise UserError("plan.not_retained", action=action.code)
    chosen = None
    if status is not None:
        chosen = status if isinstance(status, Progress) else parse_status(status)
        if chosen not in REPORTED:
            raise UserError("plan.unknown_status", value=str(status))
    if chosen is None and not tick:
        raise UserError("plan.nothing_to_record", action=action.code)
    note = _text(note, rules(consultation).observation_max_length)
    if chosen in NEEDS_NOTE and note is None:
        raise UserError("plan.note_required", action=action.code, status=str(chosen))
    milestones = (await milestones_of(session=session, decision_ids=[row.id])).get(  # type: ignore[list-item]
        row.id,  # type: ignore[arg-type]
        [],
    )
    by_position = {m.position: m for m in milestones}
    for position in tick:
        if position not in by_position:
            raise UserError(
                "plan.unknown_milestone",
                action=action.code,
                position=position,
                count=len(milestones),
            )
    current = clock.now()
    changed = False
    if chosen is not None and (row.status != chosen or row.status_note != note):
        row.status = str(chosen)
        row.status_note = note
        row.status_at = current
        row.updated_at = current
        session.add(row)
        changed = True
        await _event(session, action, PROGRESSED, str(chosen), note, by, actor_label)
    for position in sorted(set(tick)):
        milestone = by_position[position]
        if milestone.done_at is not None:
            continue
        milestone.done_at = current
        session.add(milestone)
        changed = True
        await _event(session, action, MILESTONE, str(position), milestone.text, by, actor_label)
    if changed:
        row.updated_at = current
        session.add(row)
        await audit.record(
            session=session,
            consultation_id=consultation_id,
            action="plan.progress",
            subject=action.code,
            reason=note,
            detail={"status": row.status, "ticked": sorted(set(tick))},
            **actor_of(by, actor_label),
        )
    return row


# --- who touched what ------------------------------------------------------------------------


async def _survivors(session: AsyncSession, consultation_id: int) -> dict[int, int]:
    """action id → the id of the action it ended up in (itself unless merged)."""
    rows = (
        await session.exec(
            select(Action.id, Action.merged_into_id).where(
                Action.consultation_id == consultation_id
            )
        )
    ).all()
    into = {action_id: merged for action_id, merged in rows}
    survivors = {}
    for action_id in into:
        seen = {action_id}
        current = action_id
        while into.get(current) is not None and into[current] not in seen:
            current = into[current]
            seen.add(current)
        survivors[action_id] = current
    return survivors


async def touched(
    *, session: AsyncSession, consultation_id: int, participant_ids: Collection[int] | None = None
) -> dict[int, dict[int, set[str]]]:
    """participant id → action id → how they touched it: "proposed", "ranked" (in their top
    three), "finding" (it answers a finding they confirmed or contested). Merged actions count
    as the action they were merged into."""
    wanted = set(participant_ids) if participant_ids is not None else None
    survivors = await _survivors(session, consultation_id)
    found: dict[int, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))

    def add(person: int | None, action_id: int | None, how: str) -> None:
        if person is None or action_id is None or (wanted is not None and person not in wanted):
            return
        found[person][survivors.get(action_id, action_id)].add(how)

    for action_id, proposer in (
        await session.exec(
            select(Action.id, Action.proposer_id).where(Action.consultation_id == consultation_id)
        )
    ).all():
        add(proposer, action_id, "proposed")
    for person, ranking in (
        await session.exec(
            select(Ballot.participant_id, Ballot.ranking).where(
                Ballot.consultation_id == consultation_id
            )
        )
    ).all():
        for action_id in list(ranking or [])[:TOP]:
            add(person, action_id, "ranked")
    stances = (
        await session.exec(
            select(Stance.participant_id, ActionFinding.action_id)
            .join(FindingVersion, FindingVersion.id == Stance.finding_version_id)
            .join(ActionFinding, ActionFinding.finding_id == FindingVersion.finding_id)
            .join(Action, Action.id == ActionFinding.action_id)
            .where(Action.consultation_id == consultation_id)
            .where(Stance.choice.in_([StanceChoice.CONFIRM, StanceChoice.CONTEST]))  # type: ignore[attr-defined]
        )
    ).all()
    for person, action_id in stances:
        add(person, action_id, "finding")
    return {person: dict(actions) for person, actions in found.items()}


def members_reached(people: list[Participant]) -> list[Participant]:
    """The members a follow-up message may go to: consented, reachable on some channel, and,
    when it is email, not having turned their digest off."""
    reached = []
    for person in people:
        channel = outbox.channel_for(person)
        if channel is None or not has_consented(person):
            continue
        if channel == Channel.EMAIL and person.digest_cadence == Cadence.OFF:
            continue
        reached.append(person)
    return reached


# --- the follow-up digest --------------------------------------------------------------------


@dataclass
class _Change:
    kinds: set[str]
    milestones: list[int]


async def _changes(
    session: AsyncSession, consultation_id: int, since: datetime | None, until: datetime
) -> dict[int, _Change]:
    query = (
        select(PlanEvent)
        .where(PlanEvent.consultation_id == consultation_id)
        .where(PlanEvent.at <= until)
    )
    if since is not None:
        query = query.where(PlanEvent.at > since)
    changes: dict[int, _Change] = {}
    for event in (await session.exec(query.order_by(PlanEvent.at, PlanEvent.id))).all():  # type: ignore[arg-type]
        change = changes.setdefault(event.action_id, _Change(set(), []))
        change.kinds.add(event.kind)
        if event.kind == MILESTONE:
            change.milestones.append(int(event.value))
    return changes


async def send_follow_digest(
    *,
    session: AsyncSession,
    consultation_id: int,
    since: datetime | None,
    until: datetime,
    participant_ids: Collection[int] | None = None,
) -> int:
    """Write the follow-up digest of the changes in (`since`, `until`] to each member concerned.

    Each member hears about the changed actions they touched, and about every action not
    retained in that time, each action once. Nobody hears anything when nothing changed for
    them. The dedupe key is per person and `until`: running it twice writes it once.
    """
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    changes = await _changes(session, consultation_id, since, until)
    if not changes:
        return 0
    actions = {
        action.id: action
        for action in await decidable_actions(session=session, consultation_id=consultation_id)
        if action.id in changes
    }
    decisions = await decisions_of(session=session, consultation_id=consultation_id)
    milestones = await milestones_of(
        session=session,
        decision_ids=[d.id for a, d in decisions.items() if a in actions and d.id is not None],
    )
    states = {}
    for action_id, action in actions.items():
        decision = decisions.get(action_id)
        if decision is None:
            continue
        state = action_state(action, decision, milestones.get(decision.id, []))  # type: ignore[arg-type]
        state["changes"] = sorted(changes[action_id].kinds)
        state["ticked"] = sorted(set(changes[action_id].milestones))
        states[action_id] = state
    refused = [
        action_id
        for action_id, state in states.items()
        if state["decision"] == Decision.NOT_RETAINED and DECIDED in state["changes"]
    ]
    people = members_reached(
        await people_to_tell(session=session, consultation_id=consultation_id, coordinators=False)
    )
    if participant_ids is not None:
        wanted = set(participant_ids)
        people = [person for person in people if person.id in wanted]
    reach = await touched(
        session=session,
        consultation_id=consultation_id,
        participant_ids=[p.id for p in people if p.id is not None],
    )
    stamp = until.strftime("%Y%m%dT%H%M%S")
    written = 0
    for person in people:
        mine = reach.get(person.id, {})  # type: ignore[arg-type]
        items = []
        for action_id in sorted(states, key=lambda a: code_key(states[a]["code"])):
            if action_id in mine:
                items.append({**states[action_id], "touched": sorted(mine[action_id])})
            elif action_id in refused:
                items.append({**states[action_id], "touched": []})
        if not items:
            continue
        payload = {
            "since": _iso(since),
            "timezone": consultation.timezone,
            "actions": items,
        }
        written += await outbox.notify(
            session=session,
            participant=person,
            template=DIGEST_TEMPLATE,
            payload=payload,
            dedupe_key=f"follow_digest:{consultation_id}:{stamp}:{person.id}",
        )
    logger.info("follow-up digest: %d messages written", written)
    return written


# --- the follow-up questionnaire -------------------------------------------------------------


async def _asked(
    session: AsyncSession, consultation_id: int, people: list[Participant]
) -> dict[int, list[int]]:
    """participant id → the retained actions they touched (what a round asks them about)."""
    decisions = await decisions_of(session=session, consultation_id=consultation_id)
    retained = {a for a, d in decisions.items() if d.decision in RETAINED}
    reach = await touched(
        session=session,
        consultation_id=consultation_id,
        participant_ids=[p.id for p in people if p.id is not None],
    )
    return {
        person: sorted(a for a in actions if a in retained) for person, actions in reach.items()
    }


async def open_round(
    *,
    session: AsyncSession,
    consultation_id: int,
    number: int,
    final: bool = False,
    participant_ids: Collection[int] | None = None,
    actor_label: str = "scheduler",
) -> FollowUpRound:
    """Open follow-up questionnaire `number` (once) and ask each member about the retained
    actions they touched (template "followup_questionnaire"); asking again writes nothing."""
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    current = clock.now()
    days = rules(consultation).follow_questionnaire_days
    statement = (
        insert_for(session)(FollowUpRound)
        .values(
            consultation_id=consultation_id,
            number=number,
            final=final,
            opened_at=current,
            closes_at=current + timedelta(days=days),
        )
        .on_conflict_do_nothing(index_elements=["consultation_id", "number"])
    )
    created = (await session.execute(statement)).rowcount
    found = (
        await session.exec(
            select(FollowUpRound)
            .where(FollowUpRound.consultation_id == consultation_id)
            .where(FollowUpRound.number == number)
        )
    ).one()
    if created:
        await audit.record(
            session=session,
            consultation_id=consultation_id,
            action="followup.opened",
            actor_label=actor_label,
            subject=str(number),
            detail={"final": final},
        )
    people = members_reached(
        await people_to_tell(session=session, consultation_id=consultation_id, coordinators=False)
    )
    if participant_ids is not None:
        wanted = set(participant_ids)
        people = [person for person in people if person.id in wanted]
    asked = await _asked(session, consultation_id, people)
    actions = {
        action.id: action
        for action in await decidable_actions(session=session, consultation_id=consultation_id)
    }
    decisions = await decisions_of(session=session, consultation_id=consultation_id)
    written = 0
    for person in people:
        mine = [a for a in asked.get(person.id, []) if a in actions]  # type: ignore[arg-type]
        if not mine:
            continue
        payload = {
            "number": found.number,
            "final": found.final,
            "closes_at": found.closes_at.isoformat(),
            "timezone": consultation.timezone,
            "actions": [action_state(actions[a], decisions.get(a), []) for a in mine],
        }
        written += await outbox.notify(
            session=session,
            participant=person,
            template=QUESTIONNAIRE_TEMPLATE,
            payload=payload,
            dedupe_key=f"followup_questionnaire:{found.id}:{person.id}",
        )
    logger.info("follow-up questionnaire %s: %d invitations written", number, written)
    return found


async def open_round_for(
    *, session: AsyncSession, participant: Participant
) -> FollowUpRound | None:
    """The follow-up questionnaire open now in the person's consultation, if any."""
    current = clock.now()
    return (
        await session.exec(
            select(FollowUpRound)
            .where(FollowUpRound.consultation_id == participant.consultation_id)
            .where(FollowUpRound.opened_at <= current)
            .where(FollowUpRound.closes_at > current)
            .order_by(FollowUpRound.number.desc())  # type: ignore[attr-defined]
        )
    ).first()


async def questions_for(
    *, session: AsyncSession, participant: Participant
) -> dict[str, Any] | None:
    """What the open follow-up questionnaire asks this person, with their answers so far."""
    found = await open_round_for(session=session, participant=participant)
    if found is None or participant.id is None:
        return None
    asked = (await _asked(session, participant.consultation_id, [participant])).get(
        participant.id, []
    )
    if not asked:
        return None
    actions = {
        a.id: a
        for a in await decidable_actions(
            session=session, consultation_id=participant.consultation_id
        )
    }
    decisions = await decisions_of(session=session, consultation_id=participant.consultation_id)
    answers = {
        answer.action_id: answer
        for answer in (
            await session.exec(
                select(FollowUpAnswer)
                .where(FollowUpAnswer.round_id == found.id)
                .where(FollowUpAnswer.participant_id == participant.id)
            )
        ).all()
    }
    items = []
    for action_id in asked:
        if action_id not in actions:
            continue
        state = action_state(actions[action_id], decisions.get(action_id), [])
        answer = answers.get(action_id)
        state["answer"] = answer.value if answer else None
        state["remark"] = answer.remark if answer else None
        items.append(state)
    return {
        "number": found.number,
        "final": found.final,
        "closes_at": found.closes_at.isoformat(),
        "actions": items,
    }


async def answer_follow_up(
    *,
    session: AsyncSession,
    participant: Participant,
    code: str,
    value: FollowUpView | str,
    remark: str | None = None,
    channel: str,
) -> FollowUpAnswer:
    """Record (or change) the person's view of one action they were asked about, while the
    follow-up questionnaire is open; an answer without a remark keeps an earlier remark."""
    require_consent(participant)
    found = await open_round_for(session=session, participant=participant)
    if found is None:
        raise PhaseClosed("plan.no_followup")
    view = value if isinstance(value, FollowUpView) else parse_view(value)
    consultation = await get_consultation(
        session=session, consultation_id=participant.consultation_id
    )
    action = (
        await session.exec(
            select(Action)
            .where(Action.consultation_id == participant.consultation_id)
            .where(Action.code == normalize_code(code))
        )
    ).first()
    asked = (await _asked(session, participant.consultation_id, [participant])).get(
        participant.id,  # type: ignore[arg-type]
        [],
    )
    if action is None or action.id not in asked:
        raise UserError("plan.not_asked", action=normalize_code(code) or code)
    remark = _text(remark, rules(consultation).observation_max_length)
    current = clock.now()
    statement = insert_for(session)(FollowUpAnswer).values(
        round_id=found.id,
        participant_id=participant.id,
        action_id=action.id,
        value=str(view),
        remark=remark,
        channel=str(channel),
        created_at=current,
        updated_at=current,
    )
    update = {
        "value": statement.excluded.value,
        "channel": statement.excluded.channel,
        "updated_at": statement.excluded.updated_at,
    }
    if remark is not None:
        update["remark"] = statement.excluded.remark
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["round_id", "participant_id", "action_id"], set_=update
        )
    )
    return (
        await session.exec(
            select(FollowUpAnswer)
            .where(FollowUpAnswer.round_id == found.id)
            .where(FollowUpAnswer.participant_id == participant.id)
            .where(FollowUpAnswer.action_id == action.id)
            .execution_options(populate_existing=True)
        )
    ).one()


async def followup_results(*, session: AsyncSession, consultation_id: int) -> list[dict[str, Any]]:
    """Each round's answers per action, overall and per actor category (plain JSON).

    Per round: {number, final, opened_at, closes_at, respondents, actions: [{code, text,
    answers, counts: {view: n}, by_category: {category: {view: n}}, remarks}]}. Remarks are
    listed without names, in a shuffled order fixed by the round, the action and the texts.
    """
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    keys = [category["key"] for category in consultation.categories]
    rounds = (
        await session.exec(
            select(FollowUpRound)
            .where(FollowUpRound.consultation_id == consultation_id)
            .order_by(FollowUpRound.number)  # type: ignore[arg-type]
        )
    ).all()
    results = []
    for found in rounds:
        rows = (
            await session.exec(
                select(FollowUpAnswer, Participant.category, Action.code, Action.text)
                .join(Participant, Participant.id == FollowUpAnswer.participant_id)
                .join(Action, Action.id == FollowUpAnswer.action_id)
                .where(FollowUpAnswer.round_id == found.id)
            )
        ).all()
        per_action: dict[str, dict[str, Any]] = {}
        respondents = set()
        for answer, category, code, text in rows:
            respondents.add(answer.participant_id)
            entry = per_action.setdefault(
                code,
                {
                    "code": code,
                    "text": text,
                    "answers": 0,
                    "counts": {view: 0 for view in VIEWS},
                    "by_category": {key: {view: 0 for view in VIEWS} for key in keys},
                    "remarks": [],
                },
            )
            entry["answers"] += 1
            entry["counts"][answer.value] += 1
            entry["by_category"].setdefault(category, {view: 0 for view in VIEWS})
            entry["by_category"][category][answer.value] += 1
            if answer.remark:
                entry["remarks"].append(answer.remark)
        for code, entry in per_action.items():
            entry["remarks"] = personal_order(
                sorted(entry["remarks"]), f"{consultation_id}:followup:{found.number}:{code}"
            )
        results.append(
            {
                "number": found.number,
                "final": found.final,
                "opened_at": found.opened_at.isoformat(),
                "closes_at": found.closes_at.isoformat(),
                "respondents": len(respondents),
                "actions": sorted(per_action.values(), key=lambda e: code_key(e["code"])),
            }
        )
    return results


async def plan_section(*, session: AsyncSession, consultation_id: int) -> dict[str, Any]:
    """The `plan` section of the results document (docs/results-json.md): `plan_of` with the
    count of decisions still missing, and every follow-up questionnaire's results."""
    plan = await plan_of(session=session, consultation_id=consultation_id)
    return {
        **plan,
        "missing_count": len(plan["missing"]),
        "followup": await followup_results(session=session, consultation_id=consultation_id),
    }


def brief_plan(section: dict[str, Any], label: Any) -> dict[str, Any]:
    """The plan as the meeting brief shows it: each follow-up answer broken down by category
    (only categories that answered), labelled with `label(key)`."""
    rounds = []
    for found in section["followup"]:
        actions = []
        for action in found["actions"]:
            categories = [
                {"key": key, "label": label(key), **counts}
                for key, counts in action["by_category"].items()
                if sum(counts.values())
            ]
            actions.append({**action, "categories": categories})
        rounds.append({**found, "actions": actions})
    return {**section, "followup": rounds}


# --- reminders to coordinators ---------------------------------------------------------------


async def _coordinators(session: AsyncSession, consultation_id: int) -> list[Participant]:
    people = await people_to_tell(session=session, consultation_id=consultation_id)
    return [person for person in people if person.is_coordinator]


async def remind_missing_decisions(*, session: AsyncSession, consultation_id: int, key: str) -> int:
    """Tell the coordinators which actions still await the official answer (template
    "plan_missing"); nothing when none does. `key` names the reminder (once per key)."""
    plan = await plan_of(session=session, consultation_id=consultation_id)
    if not plan["ranking_over"] or not plan["missing"]:
        return 0
    missing = [row for row in plan["actions"] if row["decision"] is None]
    payload = {
        "ranking_closed_at": plan["ranking_closed_at"],
        "actions": [{"code": row["code"], "text": row["text"]} for row in missing],
        "count": len(missing),
        "total": len(plan["actions"]),
    }
    written = 0
    for person in await _coordinators(session, consultation_id):
        written += await outbox.notify(
            session=session,
            participant=person,
            template="plan_missing",
            payload=payload,
            dedupe_key=f"plan_missing:{key}:{person.id}",
        )
    return written


async def overdue(*, session: AsyncSession, consultation_id: int) -> list[ActionDecision]:
    """Retained actions whose due date has passed (in the consultation's zone) with no progress
    reported since, and not finished."""
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    today = clock.now().astimezone(ZoneInfo(consultation.timezone or "Europe/Paris")).date()
    found = []
    for decision in (await decisions_of(session=session, consultation_id=consultation_id)).values():
        if decision.decision not in RETAINED or decision.due_on is None:
            continue
        if decision.due_on >= today or decision.status in FINISHED:
            continue
        zone = ZoneInfo(consultation.timezone or "Europe/Paris")
        reported = decision.status_at and decision.status_at.astimezone(zone).date() > (
            decision.due_on
        )
        if not reported:
            found.append(decision)
    return found


async def remind_overdue(*, session: AsyncSession, consultation_id: int, key: str) -> int:
    """Tell the coordinators about the actions newly overdue without progress (template
    "plan_overdue"); each action once per due date."""
    late = [
        decision
        for decision in await overdue(session=session, consultation_id=consultation_id)
        if decision.overdue_reminded_for != decision.due_on
    ]
    if not late:
        return 0
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    actions = {
        a.id: a for a in await decidable_actions(session=session, consultation_id=consultation_id)
    }
    items = []
    for decision in late:
        action = actions.get(decision.action_id)
        if action is None:
            continue
        items.append(action_state(action, decision, []))
        decision.overdue_reminded_for = decision.due_on
        session.add(decision)
    items.sort(key=lambda item: code_key(item["code"]))
    payload = {"actions": items, "timezone": consultation.timezone}
    written = 0
    for person in await _coordinators(session, consultation_id):
        written += await outbox.notify(
            session=session,
            participant=person,
            template="plan_overdue",
            payload=payload,
            dedupe_key=f"plan_overdue:{key}:{person.id}",
        )
    return written
