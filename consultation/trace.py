"""Traceability: "what became of my contributions", and the final plan sent with that trace.

For one participant: each observation they made → the published findings that drew on it →
the actions that answer those findings, with their rank once the ranking is over; and each
action they proposed, with what became of it (shortlisted, merged into another, rank). A merged
observation or action is followed to the one it was merged into, so a duplicate is not a dead
end. After the vote, each action also carries the local government's answer and its progress
(`consultation.followup`): the trace goes all the way to what was done.

Ranks are shown only after the rank phase has closed: a provisional rank seen while people still
vote would sway the vote.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import actions, audit, followup, outbox
from consultation.common import (
    actor_of,
    code_key,
    get_consultation,
    people_to_tell,
    require_coordinator,
)
from consultation.errors import UserError
from consultation.observations import observations_of
from models import (
    Action,
    ActionFinding,
    Finding,
    FindingObservation,
    FindingStatus,
    FindingVersion,
    Meeting,
    Observation,
    Participant,
    Phase,
    PhaseKind,
    PhaseStatus,
)

logger = logging.getLogger(__name__)

# How much of a text a message quotes (the person wrote it; a reminder is enough).
EXCERPT = 200
# What an action's view says of the official answer and the progress (None before them).
FATE = ("decision", "progress", "due")


async def ranking_over(*, session: AsyncSession, consultation_id: int) -> bool:
    """Whether the ranking is final: a rank phase has closed and none is open or to come."""
    statuses = (
        await session.exec(
            select(Phase.status)
            .where(Phase.consultation_id == consultation_id)
            .where(Phase.kind == PhaseKind.RANK)
        )
    ).all()
    return bool(statuses) and all(status == PhaseStatus.CLOSED for status in statuses)


async def action_ranks(*, session: AsyncSession, consultation_id: int) -> dict[str, dict[str, Any]]:
    """Shortlisted action code → {rank, tied, borda, of}, from `actions.ranking_results`.

    `rank` is shared by tied actions (1, 2, 2, 4); `of` is the number of shortlisted actions.
    """
    results = await actions.ranking_results(session=session, consultation_id=consultation_id)
    table = results["overall"]["table"]
    return {
        row["code"]: {
            "rank": row["rank"],
            "tied": row["tied"],
            "borda": row["borda"],
            "of": len(table),
        }
        for row in table
    }


async def final_plan(*, session: AsyncSession, consultation_id: int) -> list[dict[str, Any]]:
    """The shortlisted actions in their final order, best first (empty before the ranking ends).

    Each: {code, text, rank, tied, borda, of}.
    """
    if not await ranking_over(session=session, consultation_id=consultation_id):
        return []
    results = await actions.ranking_results(session=session, consultation_id=consultation_id)
    table = results["overall"]["table"]
    return [
        {
            "code": row["code"],
            "text": row["text"],
            "rank": row["rank"],
            "tied": row["tied"],
            "borda": row["borda"],
            "of": len(table),
        }
        for row in table
    ]


class _Tracer:
    """Walks observations and actions to what they became, with the rank when it is known."""

    def __init__(self, session: AsyncSession, consultation_id: int) -> None:
        self.session = session
        self.consultation_id = consultation_id
        self.ranks: dict[str, dict[str, Any]] | None = None
        self.decisions: dict[int, Any] = {}
        # Sending the final plan walks everyone's trace: each finding is looked up once.
        self._finding_views: dict[int, dict[str, Any]] = {}

    async def load(self) -> _Tracer:
        if await ranking_over(session=self.session, consultation_id=self.consultation_id):
            self.ranks = await action_ranks(
                session=self.session, consultation_id=self.consultation_id
            )
            self.decisions = await followup.decisions_of(
                session=self.session, consultation_id=self.consultation_id
            )
        return self

    async def surviving_observation(self, observation: Observation) -> list[int]:
        """The observation's id and those it was merged into, following the chain."""
        chain = [observation.id]
        current = observation
        while current.duplicate_of_id is not None and current.duplicate_of_id not in chain:
            chain.append(current.duplicate_of_id)
            target = await self.session.get(Observation, current.duplicate_of_id)
            if target is None:
                break
            current = target
        return [item for item in chain if item is not None]

    async def surviving_action(self, action: Action) -> Action:
        seen = {action.id}
        current = action
        while current.merged_into_id is not None and current.merged_into_id not in seen:
            seen.add(current.merged_into_id)
            target = await self.session.get(Action, current.merged_into_id)
            if target is None:
                break
            current = target
        return current

    def action_view(self, action: Action) -> dict[str, Any]:
        rank = (self.ranks or {}).get(action.code) if self.ranks is not None else None
        decision = self.decisions.get(action.id)  # type: ignore[arg-type]
        state = followup.action_state(action, decision, [])
        return {
            "code": action.code,
            "text": action.text,
            "status": action.status,
            "rank": rank["rank"] if rank else None,
            "tied": rank["tied"] if rank else False,
            "borda": rank["borda"] if rank else None,
            "of": rank["of"] if rank else None,
            "decision": state["decision"],
            "progress": state["status"],
            "due": state["due"],
        }

    async def actions_for(self, finding_id: int) -> list[dict[str, Any]]:
        rows = (
            await self.session.exec(
                select(Action)
                .join(ActionFinding, ActionFinding.action_id == Action.id)
                .where(ActionFinding.finding_id == finding_id)
                .order_by(Action.id)
            )
        ).all()
        views: dict[str, dict[str, Any]] = {}
        for action in rows:
            survivor = await self.surviving_action(action)
            views.setdefault(survivor.code, self.action_view(survivor))
        return sorted(views.values(), key=_action_order)

    async def findings_for(self, observation: Observation) -> list[dict[str, Any]]:
        ids = await self.surviving_observation(observation)
        findings = (
            await self.session.exec(
                select(Finding)
                .join(FindingObservation, FindingObservation.finding_id == Finding.id)
                .where(FindingObservation.observation_id.in_(ids))  # type: ignore[attr-defined]
                .where(Finding.status != FindingStatus.DRAFT)
                .order_by(Finding.id)
            )
        ).all()
        views = []
        seen: set[int] = set()
        for finding in findings:
            if finding.id in seen:
                continue
            seen.add(finding.id)
            views.append(await self._finding_view(finding))
        return views

    async def _finding_view(self, finding: Finding) -> dict[str, Any]:
        assert finding.id is not None
        if finding.id not in self._finding_views:
            version = (
                await self.session.exec(
                    select(FindingVersion)
                    .where(FindingVersion.finding_id == finding.id)
                    .where(FindingVersion.version == finding.current_version)
                )
            ).first()
            self._finding_views[finding.id] = {
                "code": finding.code,
                "text": version.text if version else "",
                "version": finding.current_version,
                "status": finding.status,
                "actions": await self.actions_for(finding.id),
                "meetings": await self.meetings_for(finding.id),
            }
        # A copy: the caller's document must not share (and so alter) the cached one.
        return copy.deepcopy(self._finding_views[finding.id])

    async def meetings_for(self, finding_id: int) -> list[str]:
        """The days of the meetings whose observations the finding also draws on."""
        days = (
            await self.session.exec(
                select(Meeting.held_on)
                .join(Observation, Observation.meeting_id == Meeting.id)
                .join(FindingObservation, FindingObservation.observation_id == Observation.id)
                .where(FindingObservation.finding_id == finding_id)
                .distinct()
            )
        ).all()
        return sorted(day.isoformat() for day in days)


def _action_order(view: dict[str, Any]) -> tuple[int, tuple[int, str]]:
    rank = view["rank"] if view["rank"] is not None else 10**9
    return rank, code_key(view["code"])


async def contributions_of(*, session: AsyncSession, participant: Participant) -> list[dict]:
    """What became of each of `participant`'s observations and proposals, oldest first.

    Observation: {kind: "observation", text, theme, created_at, scope_status, scope_reason,
    merged (bool), findings: [{code, text, version, status, actions: [action]}]}.
    Proposal: {kind: "proposal", code, text, created_at, status, became: action}, where
    `became` is the action itself or the one it was merged into. An action is {code, text,
    status, rank, tied, borda, of, decision, progress, due}; rank, borda and of are None until
    the ranking is over, decision until the local government answers, progress and due unless
    it retained the action.
    """
    tracer = await _Tracer(session, participant.consultation_id).load()
    return await _contributions(session, participant, tracer)


async def _contributions(
    session: AsyncSession, participant: Participant, tracer: _Tracer
) -> list[dict]:
    items: list[tuple[Any, int, dict[str, Any]]] = []
    for observation in await observations_of(session=session, participant=participant):
        items.append(
            (
                observation.created_at,
                0,
                {
                    "kind": "observation",
                    "text": observation.text,
                    "theme": observation.theme,
                    "created_at": observation.created_at.isoformat(),
                    "scope_status": observation.scope_status,
                    "scope_reason": observation.scope_reason,
                    "merged": observation.duplicate_of_id is not None,
                    "findings": await tracer.findings_for(observation),
                },
            )
        )
    for action in await actions.proposals_of(session=session, participant=participant):
        survivor = await tracer.surviving_action(action)
        items.append(
            (
                action.created_at,
                1,
                {
                    "kind": "proposal",
                    "code": action.code,
                    "text": action.text,
                    "created_at": action.created_at.isoformat(),
                    "status": action.status,
                    "became": tracer.action_view(survivor),
                },
            )
        )
    items.sort(key=lambda item: (item[0], item[1]))
    return [item for _, _, item in items]


def _excerpt(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _action_summary(action: dict[str, Any], limit: int) -> dict[str, Any]:
    return {
        "code": action["code"],
        "text": _excerpt(action["text"], limit),
        **{key: action[key] for key in ("status", "rank", "tied", "of", *FATE)},
    }


def _item_summary(item: dict[str, Any], limit: int) -> dict[str, Any]:
    if item["kind"] == "proposal":
        return {
            "kind": "proposal",
            "code": item["code"],
            "excerpt": _excerpt(item["text"], limit),
            "created_at": item["created_at"],
            "status": item["status"],
            "became": _action_summary(item["became"], limit),
        }
    return {
        "kind": "observation",
        "excerpt": _excerpt(item["text"], limit),
        "created_at": item["created_at"],
        "scope_status": item["scope_status"],
        "scope_reason": _excerpt(item["scope_reason"], limit),
        "merged": item["merged"],
        "findings": [
            {
                "code": finding["code"],
                "text": _excerpt(finding["text"], limit),
                "actions": [_action_summary(action, limit) for action in finding["actions"]],
                "meetings": finding.get("meetings", []),
            }
            for finding in item["findings"]
        ],
    }


def summary(contributions: list[dict], *, excerpt: int = EXCERPT) -> dict[str, Any]:
    """`contributions_of` as a message shows it (Telegram /mine, the email SUIVI answer, the
    final plan): excerpts of what the person wrote, of the findings and actions it led to, with
    their ranks; plain JSON for the outbox.

    {contributions: [item], observation_count, proposal_count, has_actions, ranked}; `ranked`
    once any action shown has a rank, that is once the ranking is over.
    """
    items = [_item_summary(item, excerpt) for item in contributions]
    shown = [
        action
        for item in items
        for action in (
            [item["became"]]
            if item["kind"] == "proposal"
            else [a for finding in item["findings"] for a in finding["actions"]]
        )
    ]
    return {
        "contributions": items,
        "observation_count": sum(1 for item in items if item["kind"] == "observation"),
        "proposal_count": sum(1 for item in items if item["kind"] == "proposal"),
        "has_actions": bool(shown),
        "ranked": any(action["rank"] is not None for action in shown),
    }


async def send_final_plan(
    *,
    session: AsyncSession,
    consultation_id: int,
    by: Participant | None = None,
    actor_label: str | None = None,
) -> int:
    """Send everyone the final plan with what became of their own contributions.

    One message per reachable participant (template "final_plan"); repeating it writes nothing
    new. Refused (`trace.ranking_not_over`) until the rank phase has closed. Returns the number
    of messages written.
    """
    require_coordinator(by, consultation_id)
    await get_consultation(session=session, consultation_id=consultation_id)  # NotFound if unknown
    if not await ranking_over(session=session, consultation_id=consultation_id):
        raise UserError("trace.ranking_not_over")
    plan = await final_plan(session=session, consultation_id=consultation_id)
    results = await actions.ranking_results(session=session, consultation_id=consultation_id)
    ballots = results["ballots"]
    tracer = await _Tracer(session, consultation_id).load()
    written = 0
    for person in await people_to_tell(
        session=session, consultation_id=consultation_id, coordinators=False
    ):
        payload = {
            "plan": plan,
            "ballots": ballots,
            **summary(await _contributions(session, person, tracer)),
        }
        written += await outbox.notify(
            session=session,
            participant=person,
            template="final_plan",
            payload=payload,
            dedupe_key=f"final_plan:{consultation_id}:{person.id}",
        )
    await audit.record(
        session=session,
        consultation_id=consultation_id,
        action="final_plan.sent",
        detail={"messages": written, "actions": len(plan)},
        **actor_of(by, actor_label),
    )
    logger.info("final plan: %d messages written", written)
    return written
