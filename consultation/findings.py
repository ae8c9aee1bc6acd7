"""Draft findings and the actors' stances on them.

Coordinators draft findings from the observations (each finding lists the observations it draws
on), revise them (a changed text is a new version) and publish them during the review phase.
Each actor confirms, contests (with a reason) or abstains, and may change their answer until the
review phase closes. A stance belongs to one version: when a published finding is revised,
those who answered the version it replaces are asked again, and only them.

Confirmation rate: confirm / (confirm + contest) on the current version; abstentions are counted
apart and do not weigh on it. With no confirm and no contest the rate is None, not zero.

Coordinators may also keep their findings in a Markdown file (`docs/findings-format.md`):
`parse_findings_file` reads it and `apply_drafts` creates, revises and publishes what it says.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import func, null
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, clock, files, outbox, ranking
from consultation.common import (
    actor_of,
    clean_text,
    code_key,
    declined,
    get_consultation,
    lock_consultation,
    next_code,
    normalize_code,
    people_to_tell,
    require_coordinator,
    rules,
)
from consultation.errors import DefinitionError, NotFound, UserError
from consultation.phases import current_phase, require_open
from consultation.preferences import require_consent
from models import (
    Finding,
    FindingObservation,
    FindingStatus,
    FindingVersion,
    MeetingStance,
    Observation,
    Participant,
    PhaseKind,
    ScopeStatus,
    Stance,
    StanceChoice,
)
from models.db import insert_for

logger = logging.getLogger(__name__)

FINDING_MAX_LENGTH = 2000
CODE_PATTERN = re.compile(r"^F([1-9][0-9]{0,5})$")


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FindingView:
    """A finding as one participant sees it: no author, their own answer only."""

    code: str
    text: str
    version: int
    observation_count: int
    choice: str | None
    reason: str | None
    # Their answer to an earlier wording, when the finding was revised since they answered.
    previous_choice: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "text": self.text,
            "version": self.version,
            "observation_count": self.observation_count,
            "choice": self.choice,
            "reason": self.reason,
            "previous_choice": self.previous_choice,
        }


async def get_finding(*, session: AsyncSession, consultation_id: int, code: str) -> Finding:
    finding = (
        await session.exec(
            select(Finding)
            .where(Finding.consultation_id == consultation_id)
            .where(Finding.code == normalize_code(code))
        )
    ).first()
    if finding is None:
        raise NotFound("finding.unknown", finding=normalize_code(code) or code)
    return finding


async def current_text(*, session: AsyncSession, finding: Finding) -> FindingVersion:
    return (
        await session.exec(
            select(FindingVersion)
            .where(FindingVersion.finding_id == finding.id)
            .where(FindingVersion.version == finding.current_version)
        )
    ).one()


async def findings_of(
    *, session: AsyncSession, consultation_id: int, status: str | None = None
) -> list[Finding]:
    query = select(Finding).where(Finding.consultation_id == consultation_id)
    if status is not None:
        query = query.where(Finding.status == status)
    found = (await session.exec(query)).all()
    return sorted(found, key=_code_order)


def _code_order(item: Any) -> tuple[int, str]:
    return code_key(item.code)


async def _current_versions(
    session: AsyncSession, findings: Sequence[Finding]
) -> dict[int, FindingVersion]:
    if not findings:
        return {}
    versions = (
        await session.exec(
            select(FindingVersion).where(
                FindingVersion.finding_id.in_([f.id for f in findings])  # type: ignore[attr-defined]
            )
        )
    ).all()
    wanted = {f.id: f.current_version for f in findings}
    return {v.finding_id: v for v in versions if wanted[v.finding_id] == v.version}


async def _earlier_wordings(
    session: AsyncSession, findings: Sequence[Finding]
) -> dict[int, list[tuple[int, str]]]:
    """Each finding's published wordings before the current one, oldest first."""
    rows = (
        await session.exec(
            select(FindingVersion)
            .where(
                FindingVersion.finding_id.in_([f.id for f in findings])  # type: ignore[attr-defined]
            )
            .where(FindingVersion.published_at.is_not(None))  # type: ignore[union-attr]
            .order_by(FindingVersion.finding_id, FindingVersion.version)
        )
    ).all()
    current = {f.id: f.current_version for f in findings}
    wordings: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for row in rows:
        if row.version < current[row.finding_id]:
            wordings[row.finding_id].append((row.version, row.text))
    return wordings


async def _observation_counts(session: AsyncSession, finding_ids: list[int]) -> dict[int, int]:
    if not finding_ids:
        return {}
    rows = (
        await session.execute(
            select(FindingObservation.finding_id, func.count())
            .where(FindingObservation.finding_id.in_(finding_ids))  # type: ignore[attr-defined]
            .group_by(FindingObservation.finding_id)
        )
    ).all()
    return {finding_id: count for finding_id, count in rows}


async def observation_ids_of(*, session: AsyncSession, finding: Finding) -> list[int]:
    return sorted(
        (
            await session.exec(
                select(FindingObservation.observation_id).where(
                    FindingObservation.finding_id == finding.id
                )
            )
        ).all()
    )


# --- coordinators: drafting, revising, publishing -----------------------------------------


async def _resolve_observations(
    session: AsyncSession, consultation_id: int, ids: Iterable[int]
) -> list[int]:
    """The observations a finding draws on, each duplicate replaced by the one it merged into."""
    resolved: list[int] = []
    for observation_id in ids:
        observation = await session.get(Observation, int(observation_id))
        if observation is None or observation.consultation_id != consultation_id:
            raise NotFound("observation.unknown", id=observation_id)
        if observation.scope_status == ScopeStatus.MERGED and observation.duplicate_of_id:
            observation = await session.get(Observation, observation.duplicate_of_id)
            assert observation is not None
        if observation.scope_status == ScopeStatus.OUT_OF_SCOPE:
            raise UserError("finding.observation_out_of_scope", id=observation.id)
        if observation.id not in resolved:
            resolved.append(observation.id)  # type: ignore[arg-type]
    return resolved


async def _set_observations(session: AsyncSession, finding: Finding, ids: list[int]) -> bool:
    links = (
        await session.exec(
            select(FindingObservation).where(FindingObservation.finding_id == finding.id)
        )
    ).all()
    have = {link.observation_id for link in links}
    if have == set(ids):
        return False
    for link in links:
        if link.observation_id not in ids:
            await session.delete(link)
    for observation_id in ids:
        if observation_id not in have:
            session.add(FindingObservation(finding_id=finding.id, observation_id=observation_id))
    await session.flush()
    return True


async def draft_finding(
    *,
    session: AsyncSession,
    consultation_id: int,
    by: Participant | None,
    text: str,
    observation_ids: Iterable[int] = (),
    code: str | None = None,
    actor_label: str | None = None,
) -> Finding:
    """A new draft finding, coded F1, F2… (or `code`, when a coordinator's file names it)."""
    require_coordinator(by, consultation_id)
    value = clean_text(text, area="finding", limit=FINDING_MAX_LENGTH)
    observations = await _resolve_observations(session, consultation_id, observation_ids)
    await lock_consultation(session=session, consultation_id=consultation_id)
    existing = (
        await session.exec(select(Finding.code).where(Finding.consultation_id == consultation_id))
    ).all()
    if code is None:
        code = next_code("F", existing)
    else:
        code = normalize_code(code)
        if not CODE_PATTERN.match(code):
            raise UserError("finding.bad_code", finding=code)
        if code in existing:
            raise UserError("finding.exists", finding=code)
    current = clock.now()
    finding = Finding(
        consultation_id=consultation_id,
        code=code,
        status=FindingStatus.DRAFT,
        current_version=1,
        created_by_id=by.id if by is not None else None,
        created_at=current,
    )
    session.add(finding)
    await session.flush()
    session.add(FindingVersion(finding_id=finding.id, version=1, text=value, created_at=current))
    for observation_id in observations:
        session.add(FindingObservation(finding_id=finding.id, observation_id=observation_id))
    await session.flush()
    await audit.record(
        session=session,
        consultation_id=consultation_id,
        action="finding.drafted",
        subject=code,
        detail={"observations": observations},
        **actor_of(by, actor_label),
    )
    return finding


async def edit_finding(
    *,
    session: AsyncSession,
    finding_id: int,
    by: Participant | None,
    text: str,
    actor_label: str | None = None,
) -> FindingVersion:
    """A new version of the finding's text; the same text changes nothing.

    A published finding can be revised only while the review phase is open; the new version is
    published at once and everyone who answered the version it replaces is asked again
    ("finding_revised").
    """
    version, _, _ = await _revise(
        session=session, finding_id=finding_id, by=by, text=text, actor_label=actor_label
    )
    return version


async def _revise(
    *,
    session: AsyncSession,
    finding_id: int,
    by: Participant | None,
    text: str,
    actor_label: str | None,
) -> tuple[FindingVersion, int, bool]:
    """The current version, how many people were asked again, and whether anything changed."""
    finding = await session.get(Finding, finding_id)
    if finding is None:
        raise NotFound("finding.unknown", finding=str(finding_id))
    require_coordinator(by, finding.consultation_id)
    value = clean_text(text, area="finding", limit=FINDING_MAX_LENGTH)
    old = await current_text(session=session, finding=finding)
    if old.text == value:
        return old, 0, False
    published = finding.status == FindingStatus.PUBLISHED
    review = None
    if published:
        review = await current_phase(session=session, consultation_id=finding.consultation_id)
        if review is None or review.kind != PhaseKind.REVIEW or clock.now() >= review.closes_at:
            raise UserError("finding.review_closed", finding=finding.code)
    current = clock.now()
    version = FindingVersion(
        finding_id=finding.id,
        version=old.version + 1,
        text=value,
        created_at=current,
        published_at=current if published else None,
    )
    session.add(version)
    finding.current_version = version.version
    session.add(finding)
    await session.flush()
    asked = 0
    if published:
        assert review is not None
        consultation = await get_consultation(
            session=session, consultation_id=finding.consultation_id
        )
        answered = (
            await session.exec(
                select(Stance, Participant)
                .join(Participant, Participant.id == Stance.participant_id)
                .where(Stance.finding_version_id == old.id)
                .order_by(Participant.id)
            )
        ).all()
        for stance, person in answered:
            if not person.reachable or declined(person):
                continue
            told = await outbox.notify(
                session=session,
                participant=person,
                template="finding_revised",
                payload={
                    "code": finding.code,
                    "version": version.version,
                    "text": value,
                    "previous_choice": stance.choice,
                    "deadline": review.closes_at.isoformat(),
                    "timezone": consultation.timezone,
                },
                dedupe_key=f"finding_revised:{finding.id}:{version.version}:{person.id}",
            )
            asked += int(told)
    await audit.record(
        session=session,
        consultation_id=finding.consultation_id,
        action="finding.revised",
        subject=finding.code,
        detail={"version": version.version, "published": published, "asked_again": asked},
        **actor_of(by, actor_label),
    )
    return version, asked, True


async def publish_findings(
    *,
    session: AsyncSession,
    consultation_id: int,
    by: Participant | None,
    codes: Iterable[str] | None = None,
    actor_label: str | None = None,
) -> list[Finding]:
    """Publish draft findings (all of them, or `codes`) during the review phase.

    Each participant who can be reached gets one message for the lot ("findings_published");
    findings already published are left as they are, so publishing again writes nothing.
    Returns the findings published now.
    """
    published, _ = await _publish(
        session=session,
        consultation_id=consultation_id,
        by=by,
        codes=codes,
        actor_label=actor_label,
    )
    return published


async def _publish(
    *,
    session: AsyncSession,
    consultation_id: int,
    by: Participant | None,
    codes: Iterable[str] | None,
    actor_label: str | None,
) -> tuple[list[Finding], int]:
    require_coordinator(by, consultation_id)
    review = await require_open(
        session=session, consultation_id=consultation_id, kind=PhaseKind.REVIEW
    )
    # Two coordinators publishing at once: the second finds nothing left to publish.
    await lock_consultation(session=session, consultation_id=consultation_id)
    if codes is None:
        chosen = await findings_of(
            session=session, consultation_id=consultation_id, status=FindingStatus.DRAFT
        )
    else:
        chosen = [
            await get_finding(session=session, consultation_id=consultation_id, code=code)
            for code in dict.fromkeys(normalize_code(c) for c in codes)
        ]
        chosen = [f for f in chosen if f.status == FindingStatus.DRAFT]
    if not chosen:
        return [], 0
    current = clock.now()
    versions = await _current_versions(session, chosen)
    for finding in chosen:
        finding.status = FindingStatus.PUBLISHED
        finding.published_at = current
        session.add(finding)
        version = versions[finding.id]  # type: ignore[index]
        version.published_at = current
        session.add(version)
    await session.flush()
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    texts = {f.code: versions[f.id].text for f in chosen}  # type: ignore[index]
    batch = hashlib.sha256(",".join(sorted(texts)).encode()).hexdigest()[:16]
    codes = sorted(texts, key=code_key)

    def payload_for(person: Participant) -> dict:
        order = ranking.personal_order(codes, seed=_seed(person, "findings"))
        return {
            "codes": order,
            "count": len(order),
            "deadline": review.closes_at.isoformat(),
            "timezone": consultation.timezone,
            "findings": [{"code": code, "text": texts[code]} for code in order],
        }

    told = await outbox.notify_many(
        session=session,
        participants=await people_to_tell(
            session=session, consultation_id=consultation_id, coordinators=False
        ),
        template="findings_published",
        payload=payload_for,
        dedupe_prefix=f"findings_published:{consultation_id}:{batch}",
        # Not covered by the digest: publication is the moment to answer, so email readers get
        # the findings with their reply links at once; the digest then lists what still awaits.
    )
    await audit.record(
        session=session,
        consultation_id=consultation_id,
        action="findings.published",
        subject=",".join(sorted(texts, key=code_key))[:120],
        detail={"codes": sorted(texts, key=code_key), "told": told},
        **actor_of(by, actor_label),
    )
    return sorted(chosen, key=_code_order), told


def _seed(participant: Participant, purpose: str) -> str:
    # Stable for a person across restarts and workers; different for every purpose.
    return f"{participant.consultation_id}:{participant.id}:{purpose}"


# --- participants: answering ---------------------------------------------------------------


async def record_stance(
    *,
    session: AsyncSession,
    participant: Participant,
    code: str,
    choice: str,
    reason: str | None = None,
    channel: str,
) -> Stance:
    """Confirm, contest (a reason is required) or abstain on a published finding.

    One stance per person and version: answering again replaces the answer, and two answers
    arriving at the same moment leave one row (an `INSERT ... ON CONFLICT DO UPDATE`).
    """
    require_consent(participant)
    await require_open(
        session=session, consultation_id=participant.consultation_id, kind=PhaseKind.REVIEW
    )
    try:
        picked = StanceChoice((choice or "").strip().lower())
    except ValueError as exc:
        raise UserError("stance.bad_choice", choice=choice) from exc
    finding = await get_finding(
        session=session, consultation_id=participant.consultation_id, code=code
    )
    if finding.status != FindingStatus.PUBLISHED:
        # A draft does not exist for participants.
        raise NotFound("finding.unknown", finding=finding.code)
    consultation = await get_consultation(
        session=session, consultation_id=participant.consultation_id
    )
    reason_value = None
    if reason is not None and reason.strip():
        reason_value = clean_text(
            reason, area="stance", limit=rules(consultation).observation_max_length
        )
    if picked == StanceChoice.CONTEST and reason_value is None:
        raise UserError("stance.reason_required", finding=finding.code)
    version = await current_text(session=session, finding=finding)
    current = clock.now()
    statement = insert_for(session)(Stance).values(
        participant_id=participant.id,
        finding_version_id=version.id,
        choice=picked.value,
        reason=reason_value,
        channel=str(channel),
        created_at=current,
        updated_at=current,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["participant_id", "finding_version_id"],
        set_={
            "choice": statement.excluded.choice,
            "reason": statement.excluded.reason,
            "channel": statement.excluded.channel,
            "updated_at": statement.excluded.updated_at,
        },
    )
    await session.execute(statement)
    return (
        await session.exec(
            select(Stance)
            .where(Stance.participant_id == participant.id)
            .where(Stance.finding_version_id == version.id)
            .execution_options(populate_existing=True)
        )
    ).one()


async def stance_of(
    *, session: AsyncSession, participant: Participant, finding: Finding
) -> Stance | None:
    """The person's answer to the finding's current version, if any."""
    version = await current_text(session=session, finding=finding)
    return (
        await session.exec(
            select(Stance)
            .where(Stance.participant_id == participant.id)
            .where(Stance.finding_version_id == version.id)
        )
    ).first()


async def findings_for(
    *, session: AsyncSession, participant: Participant, awaiting_only: bool = True
) -> list[FindingView]:
    """The published findings as this person sees them, in their own stable random order.

    With `awaiting_only`, only those whose current version they have not answered.
    """
    findings = await findings_of(
        session=session,
        consultation_id=participant.consultation_id,
        status=FindingStatus.PUBLISHED,
    )
    if not findings:
        return []
    versions = await _current_versions(session, findings)
    counts = await _observation_counts(session, [f.id for f in findings])  # type: ignore[misc]
    rows = (
        await session.exec(
            select(Stance, FindingVersion)
            .join(FindingVersion, FindingVersion.id == Stance.finding_version_id)
            .where(Stance.participant_id == participant.id)
            .where(
                FindingVersion.finding_id.in_([f.id for f in findings])  # type: ignore[attr-defined]
            )
        )
    ).all()
    current_stance: dict[int, Stance] = {}
    previous: dict[int, tuple[int, str]] = {}
    for stance, version in rows:
        if version.version == versions[version.finding_id].version:
            current_stance[version.finding_id] = stance
        elif version.version > previous.get(version.finding_id, (0, ""))[0]:
            previous[version.finding_id] = (version.version, stance.choice)
    views = []
    for finding in findings:
        stance = current_stance.get(finding.id)  # type: ignore[arg-type]
        if awaiting_only and stance is not None:
            continue
        version = versions[finding.id]  # type: ignore[index]
        views.append(
            FindingView(
                code=finding.code,
                text=version.text,
                version=version.version,
                observation_count=counts.get(finding.id, 0),  # type: ignore[arg-type]
                choice=stance.choice if stance else None,
                reason=stance.reason if stance else None,
                previous_choice=previous.get(finding.id, (0, None))[1],  # type: ignore[arg-type]
            )
        )
    return ranking.personal_order(views, seed=_seed(participant, "findings"))


async def finding_view(
    *, session: AsyncSession, participant: Participant, code: str
) -> FindingView | None:
    """One published finding as this person sees it (as `findings_for` shows each), or None."""
    finding = (
        await session.exec(
            select(Finding)
            .where(Finding.consultation_id == participant.consultation_id)
            .where(Finding.code == code)
        )
    ).first()
    if finding is None or finding.status != FindingStatus.PUBLISHED:
        return None
    version = await current_text(session=session, finding=finding)
    counts = await _observation_counts(session, [finding.id])  # type: ignore[list-item]
    rows = (
        await session.exec(
            select(Stance, FindingVersion)
            .join(FindingVersion, FindingVersion.id == Stance.finding_version_id)
            .where(Stance.participant_id == participant.id)
            .where(FindingVersion.finding_id == finding.id)
        )
    ).all()
    stance = next((s for s, v in rows if v.version == version.version), None)
    earlier = sorted((v.version, s.choice) for s, v in rows if v.version != version.version)
    return FindingView(
        code=finding.code,
        text=version.text,
        version=version.version,
        observation_count=counts.get(finding.id, 0),  # type: ignore[arg-type]
        choice=stance.choice if stance else None,
        reason=stance.reason if stance else None,
        previous_choice=earlier[-1][1] if earlier else None,
    )


async def answer(
    *,
    session: AsyncSession,
    participant: Participant,
    code: str,
    version: int | None,
    choice: str | None = None,
    reason: str | None = None,
    channel: str,
) -> FindingView | None:
    """Answer version `version` of a finding, as a button under its wording does; the finding
    as the person sees it afterwards.

    A button pressed under an older wording records nothing: the view returned carries the
    current version, for the channel to show instead (`version` None answers whatever is
    current). Without `choice` nothing is recorded (the channel only shows the finding). None
    when the finding is not published (a button from an unknown or withdrawn one). The review
    phase must be open.
    """
    await require_open(
        session=session, consultation_id=participant.consultation_id, kind=PhaseKind.REVIEW
    )
    view = await finding_view(session=session, participant=participant, code=code)
    if view is None or choice is None or (version is not None and view.version != version):
        return view
    stance = await record_stance(
        session=session,
        participant=participant,
        code=code,
        choice=choice,
        reason=reason,
        channel=channel,
    )
    return replace(view, choice=stance.choice, reason=stance.reason)


# --- results -------------------------------------------------------------------------------


def confirmation_rate(confirm: int, contest: int) -> float | None:
    """confirm / (confirm + contest); abstentions do not count; None when nobody took a side."""
    sided = confirm + contest
    return round(confirm / sided, 4) if sided else None


def _tally(choices: Counter[str]) -> dict[str, Any]:
    confirm, contest, abstain = (
        choices[StanceChoice.CONFIRM],
        choices[StanceChoice.CONTEST],
        choices[StanceChoice.ABSTAIN],
    )
    return {
        "confirm": confirm,
        "contest": contest,
        "abstain": abstain,
        "answers": confirm + contest + abstain,
        "confirmation_rate": confirmation_rate(confirm, contest),
    }


async def finding_results(*, session: AsyncSession, consultation_id: int) -> list[dict]:
    """Per published finding: answers and confirmation rate overall and per actor category.

    Counts are on the current version; `awaiting_new_answer` counts those who answered an
    earlier version only. Contest reasons come without any name, sorted so their order tells
    nothing about who wrote them or when.
    """
    consultation = await get_consultation(session=session, consultation_id=consultation_id)
    categories = [category["key"] for category in consultation.categories]
    findings = await findings_of(
        session=session, consultation_id=consultation_id, status=FindingStatus.PUBLISHED
    )
    if not findings:
        return []
    versions = await _current_versions(session, findings)
    counts = await _observation_counts(session, [f.id for f in findings])  # type: ignore[misc]
    rows = (
        await session.execute(
            select(
                FindingVersion.finding_id,
                FindingVersion.version,
                Stance.participant_id,
                Stance.choice,
                Stance.reason,
                Participant.category,
            )
            .join(Stance, Stance.finding_version_id == FindingVersion.id)
            .join(Participant, Participant.id == Stance.participant_id)
            .where(
                FindingVersion.finding_id.in_([f.id for f in findings])  # type: ignore[attr-defined]
            )
        )
    ).all()
    # Stances given on paper at a meeting count like any other, under their category.
    said_at_meetings = (
        await session.execute(
            select(
                FindingVersion.finding_id,
                FindingVersion.version,
                null(),
                MeetingStance.choice,
                MeetingStance.reason,
                MeetingStance.category,
            )
            .join(MeetingStance, MeetingStance.finding_version_id == FindingVersion.id)
            .where(
                FindingVersion.finding_id.in_([f.id for f in findings])  # type: ignore[attr-defined]
            )
        )
    ).all()
    from_meetings: Counter[int] = Counter()
    overall: dict[int, Counter[str]] = defaultdict(Counter)
    per_category: dict[int, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    reasons: dict[int, list[str]] = defaultdict(list)
    answered_now: dict[int, set[int]] = defaultdict(set)
    answered_before: dict[int, set[int]] = defaultdict(set)
    earlier: dict[int, dict[int, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for finding_id, version, person_id, choice, reason, category in [*rows, *said_at_meetings]:
        if version != versions[finding_id].version:
            earlier[finding_id][version][choice] += 1
            if person_id is not None:
                answered_before[finding_id].add(person_id)
            continue
        if person_id is None:
            from_meetings[finding_id] += 1
        else:
            answered_now[finding_id].add(person_id)
        overall[finding_id][choice] += 1
        per_category[finding_id][category][choice] += 1
        if choice == StanceChoice.CONTEST and reason:
            reasons[finding_id].append(reason)
    wordings = await _earlier_wordings(session, findings)
    results = []
    for finding in findings:
        fid = finding.id
        version = versions[fid]  # type: ignore[index]
        keys = categories + sorted(set(per_category[fid]) - set(categories))  # type: ignore[index]
        results.append(
            {
                "code": finding.code,
                "text": version.text,
                "version": version.version,
                "published_at": finding.published_at.isoformat() if finding.published_at else None,
                "observation_count": counts.get(fid, 0),  # type: ignore[arg-type]
                **_tally(overall[fid]),  # type: ignore[index]
                "by_category": {key: _tally(per_category[fid][key]) for key in keys},  # type: ignore[index]
                "contest_reasons": sorted(reasons[fid], key=str.casefold),  # type: ignore[index]
                "awaiting_new_answer": len(answered_before[fid] - answered_now[fid]),  # type: ignore[index]
                "from_meetings": from_meetings[fid],  # type: ignore[index]
                "history": [
                    {"version": number, "text": text, **_tally(earlier[fid][number])}  # type: ignore[index]
                    for number, text in wordings.get(fid, [])  # type: ignore[arg-type]
                ],
            }
        )
    return results


# --- the coordinators' findings file -------------------------------------------------------


@dataclass
class DraftSpec:
    """One `## F<n>` section of a findings file."""

    code: str
    text: str
    observation_ids: list[int]
    line: int


@dataclass
class DraftReport:
    created: list[str] = field(default_factory=list)
    revised: list[dict[str, Any]] = field(default_factory=list)
    relinked: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    told: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "revised": self.revised,
            "relinked": self.relinked,
            "unchanged": self.unchanged,
            "published": self.published,
            "told": self.told,
        }


_HEADING = re.compile(r"^##(?!#)\s*(.*?)\s*#*\s*$")
_OBSERVATIONS = re.compile(r"^observations\s*[:=]\s*\[?\s*(.*?)\s*\]?\s*$", re.IGNORECASE)


def parse_findings_file(text: str, source: str = "<findings>") -> list[DraftSpec]:
    """Read a findings file: `## F1` headings, an optional `observations: 3, 7` line, the text.

    Anything before the first `## ` heading is a free preamble. Raises `DefinitionError` naming
    the line of the first problem; a file with a problem is not applied at all.
    """
    files.refuse_controls(text, source=source)
    drafts: list[DraftSpec] = []
    section: dict[str, Any] | None = None

    def finish() -> None:
        if section is None:
            return
        body = "\n".join(section["lines"]).strip()
        body = re.sub(r"\n{3,}", "\n\n", body)
        if not body:
            raise DefinitionError(
                source, f"line {section['line']}", f"{section['code']} has no text"
            )
        drafts.append(
            DraftSpec(
                code=section["code"],
                text=body,
                observation_ids=section["observations"],
                line=section["line"],
            )
        )

    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.rstrip()
        heading = _HEADING.match(line)
        if heading:
            finish()
            code = normalize_code(heading.group(1))
            if not CODE_PATTERN.match(code):
                raise DefinitionError(
                    source,
                    f"line {number}",
                    f"a heading must be a finding code such as '## F1', not {line!r}",
                )
            if any(d.code == code for d in drafts):
                raise DefinitionError(source, f"line {number}", f"{code} appears twice")
            section = {"code": code, "line": number, "lines": [], "observations": []}
            continue
        if section is None:
            continue
        links = _OBSERVATIONS.match(line.strip())
        if links and not any(part.strip() for part in section["lines"]):
            section["observations"] = _parse_ids(links.group(1), source, number)
            continue
        section["lines"].append(line)
    finish()
    if not drafts:
        raise DefinitionError(source, None, "no finding found: start each one with '## F1'")
    return drafts


def _parse_ids(value: str, source: str, line: int) -> list[int]:
    ids = []
    for part in re.split(r"[,\s]+", value.strip()):
        if not part:
            continue
        if not part.lstrip("#").isdigit():
            raise DefinitionError(
                source, f"line {line}", f"observations are numbers (e.g. 3, 7), not {part!r}"
            )
        ids.append(int(part.lstrip("#")))
    return ids


async def apply_drafts(
    *,
    session: AsyncSession,
    consultation_id: int,
    drafts: Sequence[DraftSpec],
    by: Participant | None,
    publish: bool = True,
    actor_label: str | None = None,
) -> DraftReport:
    """Create or revise each finding of a findings file, then publish them; idempotent.

    A new code is drafted; a changed text becomes a new version; the `observations` line sets
    the observations the finding draws on. Findings absent from the file are left alone.
    """
    require_coordinator(by, consultation_id)
    report = DraftReport()
    for draft in drafts:
        try:
            await _apply_draft(session, consultation_id, draft, by, actor_label, report)
        except UserError as exc:
            # Which section of the file the refusal is about, for the command line to say.
            exc.draft = draft  # type: ignore[attr-defined]
            raise
    if publish:
        published, told = await _publish(
            session=session,
            consultation_id=consultation_id,
            by=by,
            codes=[d.code for d in drafts],
            actor_label=actor_label,
        )
        report.published = [f.code for f in published]
        report.told = told
    return report


async def _apply_draft(
    session: AsyncSession,
    consultation_id: int,
    draft: DraftSpec,
    by: Participant | None,
    actor_label: str | None,
    report: DraftReport,
) -> None:
    try:
        finding = await get_finding(
            session=session, consultation_id=consultation_id, code=draft.code
        )
    except NotFound:
        await draft_finding(
            session=session,
            consultation_id=consultation_id,
            by=by,
            text=draft.text,
            observation_ids=draft.observation_ids,
            code=draft.code,
            actor_label=actor_label,
        )
        report.created.append(draft.code)
        return
    observations = await _resolve_observations(session, consultation_id, draft.observation_ids)
    relinked = await _set_observations(session, finding, observations)
    version, asked, changed = await _revise(
        session=session,
        finding_id=finding.id,  # type: ignore[arg-type]
        by=by,
        text=draft.text,
        actor_label=actor_label,
    )
    if changed:
        report.revised.append(
            {"code": draft.code, "version": version.version, "asked_again": asked}
        )
    elif relinked:
        report.relinked.append(draft.code)
    else:
        report.unchanged.append(draft.code)
