"""The digest: for each person who reads Palabre by email, what is new and what still awaits them.

The scheduler decides *when* (each consultation's local morning, `enqueue_due_digests`); this
module decides *who* and *what*:

- who: people reached by email (`outbox.channel_for`), who consented, whose cadence is daily or
  weekly and who have not had a digest today (daily) or this week (weekly, on the consultation's
  `digest_weekday`, or after seven days whatever the day);
- what: the findings still awaiting their answer (new ones marked), the shortlist to rank, the
  open questionnaire's unanswered questions, an invitation to observe or propose, the phase and
  its deadline. A standing invitation to observe or propose is news only when the phase has
  just opened, closes soon, or the reader hears from us weekly; with nothing to say, no email.

The payload is plain JSON with every text the template needs and no other person's name. The
dedupe key is per person and period, so running the job twice writes one digest.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock, outbox, questionnaires
from consultation.actions import shortlist_for
from consultation.common import get_consultation, rules
from consultation.findings import findings_for
from consultation.phases import current_phase
from consultation.preferences import has_consented
from consultation.status import awaiting
from models import (
    Cadence,
    Channel,
    Consultation,
    Finding,
    FindingStatus,
    FindingVersion,
    Participant,
    PhaseKind,
)

logger = logging.getLogger(__name__)

TEMPLATE = "digest"
# A standing invitation (observe, propose) is repeated when the phase closes within this time.
# How long a written digest stays worth sending (a sender down longer drops it).
DIGEST_SHELF = timedelta(days=1)
LAST_CALL = {Cadence.DAILY: timedelta(days=2), Cadence.WEEKLY: timedelta(days=8)}


def _zone(consultation: Consultation) -> ZoneInfo:
    return ZoneInfo(consultation.timezone or "Europe/Paris")


def period_key(participant: Participant, consultation: Consultation, now: datetime) -> str:
    """The digest period `now` falls in: the local day (daily) or ISO week (weekly)."""
    local = now.astimezone(_zone(consultation)).date()
    if participant.digest_cadence == Cadence.DAILY:
        return local.isoformat()
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def is_due(participant: Participant, consultation: Consultation, now: datetime) -> bool:
    """Whether this person's cadence calls for a digest now (not whether there is news)."""
    cadence = participant.digest_cadence
    if cadence not in (Cadence.DAILY, Cadence.WEEKLY):
        return False
    last = participant.last_digest_at
    if last is None:
        return True
    zone = _zone(consultation)
    today, last_day = now.astimezone(zone).date(), last.astimezone(zone).date()
    if today <= last_day:
        return False
    if cadence == Cadence.DAILY:
        return True
    weekday = rules(consultation).digest_weekday
    return (today - last_day).days >= 7 or (
        today.weekday() == weekday and (today - last_day).days >= 2
    )


def reads_by_email(participant: Participant) -> bool:
    """Whether email is how Palabre reaches this person now, and they agreed to take part."""
    return (
        participant.reachable
        and has_consented(participant)
        and outbox.channel_for(participant) == Channel.EMAIL
    )


async def _publication_times(
    session: AsyncSession, consultation_id: int
) -> dict[str, tuple[int, datetime | None]]:
    """code → (current version, when that version was published)."""
    rows = (
        await session.exec(
            select(Finding.code, FindingVersion.version, FindingVersion.published_at)
            .join(FindingVersion, FindingVersion.finding_id == Finding.id)
            .where(Finding.consultation_id == consultation_id)
            .where(Finding.status == FindingStatus.PUBLISHED)
            .where(FindingVersion.version == Finding.current_version)
        )
    ).all()
    return {code: (version, published) for code, version, published in rows}


def _after(moment: datetime | None, since: datetime | None) -> bool:
    return moment is not None and (since is None or moment > since)


async def build_digest(
    *, session: AsyncSession, participant: Participant, now: datetime | None = None
) -> dict[str, Any] | None:
    """The digest `participant` would receive now, as the template's payload; None if empty."""
    now = now or clock.now()
    consultation = await get_consultation(
        session=session, consultation_id=participant.consultation_id
    )
    since = participant.last_digest_at
    waiting = await awaiting(session=session, participant=participant)
    phase = await current_phase(session=session, consultation_id=participant.consultation_id)
    phase_new = phase is not None and _after(phase.opened_at, since)
    payload: dict[str, Any] = {
        "period": participant.digest_cadence,
        "since": since.isoformat() if since else None,
        "first": since is None,
        "timezone": consultation.timezone,
        "phase": None,
        "findings": [],
        "ballot": None,
        "questionnaire": None,
        "observations_welcome": waiting.observations_welcome,
        "proposals_welcome": waiting.proposals_welcome,
        "remaining_today": waiting.remaining_today,
        "limits": {
            "observation_max_length": rules(consultation).observation_max_length,
        },
    }
    if phase is not None and now < phase.closes_at:
        payload["phase"] = {
            "kind": phase.kind,
            "closes_at": phase.closes_at.isoformat(),
            "seconds_left": int((phase.closes_at - now).total_seconds()),
            "new": phase_new,
        }
    news = 0
    if waiting.findings:
        published = await _publication_times(session, participant.consultation_id)
        for view in await findings_for(session=session, participant=participant):
            _version, when = published.get(view.code, (view.version, None))
            new = _after(when, since)
            news += int(new)
            payload["findings"].append(
                {
                    "code": view.code,
                    "text": view.text,
                    "version": view.version,
                    "new": new,
                    "revised": view.previous_choice is not None,
                    "observation_count": view.observation_count,
                }
            )
    if waiting.ballot_needed:
        actions = await shortlist_for(session=session, participant=participant)
        k = min(rules(consultation).ballot_k, len(actions))
        payload["ballot"] = {
            "k": k,
            "actions": [{"code": a.code, "text": a.text} for a in actions],
            "example": " ".join(a.code for a in actions[:k]),
            "new": phase_new,
        }
        news += int(phase_new)
    if waiting.questionnaires:
        payload["questionnaire"] = await _questionnaire(session, participant, since)
        news += int(bool(payload["questionnaire"] and payload["questionnaire"]["new"]))
    standing = waiting.observations_welcome or waiting.proposals_welcome
    closing_soon = (
        phase is not None
        and phase.kind in (PhaseKind.OBSERVE, PhaseKind.PROPOSE)
        and phase.closes_at - now <= LAST_CALL.get(participant.digest_cadence, timedelta(0))
    )
    worth_it = (
        bool(payload["findings"])
        or payload["ballot"] is not None
        or payload["questionnaire"] is not None
        or (
            standing
            and (
                phase_new
                or since is None
                or closing_soon
                or participant.digest_cadence == Cadence.WEEKLY
            )
        )
    )
    if not worth_it:
        return None
    payload["new_count"] = news + int(phase_new and standing)
    payload["awaiting_count"] = (
        len(payload["findings"])
        + int(payload["ballot"] is not None)
        + len((payload["questionnaire"] or {}).get("questions", []))
    )
    return payload


async def _questionnaire(
    session: AsyncSession, participant: Participant, since: datetime | None
) -> dict[str, Any] | None:
    """The questionnaire a "Q2 4" answers, with the questions still unanswered."""
    questionnaire = await questionnaires.current_questionnaire(
        session=session, participant=participant
    )
    if questionnaire is None:
        return None
    answered = await questionnaires.answers_of(
        session=session, participant=participant, questionnaire_id=questionnaire.id
    )
    questions = [
        {
            "position": q.position,
            "kind": q.kind,
            "prompt": q.prompt,
            "choices": list(q.choices or []),
        }
        for q in await questionnaires.questions_of(
            session=session, questionnaire_id=questionnaire.id
        )
        if q.position not in answered
    ]
    if not questions:
        return None
    return {
        "key": questionnaire.key,
        "title": questionnaire.title,
        "closes_at": questionnaire.closes_at.isoformat() if questionnaire.closes_at else None,
        "questions": questions,
        "new": _after(questionnaire.opened_at, since),
    }


async def enqueue_digest(
    *,
    session: AsyncSession,
    participant: Participant,
    now: datetime | None = None,
    force: bool = False,
) -> bool:
    """Write this person's digest to the outbox if there is something to say.

    Without `force`, only when their cadence calls for one (once per period); with it (a
    coordinator sending one by hand), whenever there is news. Never to someone who turned the
    digest off.
    """
    now = now or clock.now()
    consultation = await get_consultation(
        session=session, consultation_id=participant.consultation_id
    )
    if not reads_by_email(participant) or participant.digest_cadence == Cadence.OFF:
        return False
    if not force and not is_due(participant, consultation, now):
        return False
    payload = await build_digest(session=session, participant=participant, now=now)
    if payload is None:
        return False
    key = f"digest:{participant.id}:{period_key(participant, consultation, now)}"
    if force:
        key += f":{now.strftime('%H%M%S')}"
    written = await outbox.enqueue(
        session=session,
        channel=Channel.EMAIL,
        template=TEMPLATE,
        payload=payload,
        dedupe_key=key,
        participant_id=participant.id,
        consultation_id=participant.consultation_id,
        # A day on, the next digest says it better: a sender down longer drops this one.
        not_after=now + DIGEST_SHELF,
    )
    if written:
        participant.last_digest_at = now
        session.add(participant)
    return written


async def enqueue_due_digests(*, session: AsyncSession, consultation_id: int, now: datetime) -> int:
    """Every digest due now in one consultation; returns how many were written."""
    people = (
        await session.exec(
            select(Participant)
            .where(Participant.consultation_id == consultation_id)
            .where(Participant.email.is_not(None))  # type: ignore[union-attr]
            .where(Participant.digest_cadence != Cadence.OFF)
            .order_by(Participant.id)
        )
    ).all()
    written = 0
    for participant in people:
        written += int(await enqueue_digest(session=session, participant=participant, now=now))
    logger.info("consultation %s: %s digest(s) written", consultation_id, written)
    return written
