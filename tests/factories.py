"""Factories for the stories the tests tell: a consultation in some phase, people in it.

Everything is built relative to the current clock (the `clock` fixture pins it), through the
same code paths the product uses where one exists.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock, definition
from consultation.participants import new_reply_key
from models import Cadence, Channel, Consultation, Participant, Phase, PhaseStatus, Role

CATEGORIES = [
    {"key": "association", "label": {"fr": "Association", "en": "Association"}},
    {"key": "cooperative", "label": {"fr": "Coopérative", "en": "Cooperative"}},
    {"key": "elected", "label": {"fr": "Élu·e", "en": "Elected official"}},
    {"key": "citizen", "label": {"fr": "Habitant·e", "en": "Resident"}},
]
ALL_PHASES = ("observe", "review", "propose", "rank", "evaluate")
_sequence = itertools.count(1)


async def make_consultation(
    session: AsyncSession,
    *,
    slug: str | None = None,
    phases: tuple[str, ...] = ALL_PHASES,
    current: str | None = "observe",
    phase_days: float = 14,
    min_days: float = 1,
    max_days: float = 60,
    rules: dict[str, Any] | None = None,
    questionnaires: bool = False,
) -> Consultation:
    """A consultation whose phases follow each other from now on; `current` is open.

    Phases before `current` are closed, `current` opened now (its planned close `phase_days`
    later), the later ones scheduled.
    """
    now = clock.now()
    number = next(_sequence)
    current_index = phases.index(current) if current else len(phases)
    start = now - timedelta(days=phase_days * current_index)
    toml_phases = []
    for index, kind in enumerate(phases):
        opens = start + timedelta(days=phase_days * index)
        toml_phases.append(
            {
                "kind": kind,
                "opens": opens,
                "closes": opens + timedelta(days=phase_days),
                "min_days": min_days,
                "max_days": max_days,
            }
        )
    data = {
        "slug": slug or f"test-{number}",
        "title": "Plan ESS de test",
        "question": "Comment mieux soutenir l'économie sociale et solidaire ?",
        "scope_in": ["L'accompagnement des structures de l'ESS"],
        "scope_out": ["Les demandes de subvention individuelles"],
        "categories": CATEGORIES,
        "phases": toml_phases,
        "rules": rules or {},
        "questionnaires": _questionnaires(phases) if questionnaires else [],
    }
    spec = definition.ConsultationSpec.model_validate(data)
    consultation, _ = await definition.apply(session=session, spec=spec, allow_past=True)
    await session.flush()
    for phase in (
        await session.exec(select(Phase).where(Phase.consultation_id == consultation.id))
    ).all():
        if phase.position - 1 < current_index:
            phase.status = PhaseStatus.CLOSED
            phase.opened_at = phase.opens_at
            phase.closed_at = phase.closes_at
        elif phase.position - 1 == current_index:
            phase.status = PhaseStatus.OPEN
            phase.opened_at = now
        session.add(phase)
    await session.flush()
    return consultation


def _questionnaires(phases: tuple[str, ...]) -> list[dict]:
    return [
        {
            "key": f"after-{phases[0]}",
            "after_phase": phases[0],
            "title": {"fr": "Votre avis", "en": "Your view"},
            "questions": [
                {"kind": "likert", "prompt": {"fr": "J'ai pu m'exprimer.", "en": "I could speak."}},
                {
                    "kind": "choice",
                    "prompt": {"fr": "La durée était…", "en": "The length was…"},
                    "choices": [
                        {"fr": "trop courte", "en": "too short"},
                        {"fr": "bonne", "en": "right"},
                        {"fr": "trop longue", "en": "too long"},
                    ],
                },
                {"kind": "text", "prompt": {"fr": "Que changer ?", "en": "What to change?"}},
            ],
        },
        {
            "key": "final",
            "final": True,
            "title": {"fr": "Évaluation finale", "en": "Final evaluation"},
            "questions": [
                {
                    "kind": "likert",
                    "prompt": {"fr": "Ma voix a compté.", "en": "My voice counted."},
                },
            ],
        },
    ]


async def make_participant(
    session: AsyncSession,
    consultation: Consultation,
    *,
    name: str | None = None,
    category: str = "association",
    role: str = Role.PARTICIPANT,
    email: str | None = "",
    locale: str = "fr",
    telegram_chat_id: int | None = None,
    channel: str | None = None,
    consented: bool = True,
    cadence: str = Cadence.WEEKLY,
) -> Participant:
    """A participant; with `telegram_chat_id` they are on Telegram, else email by default."""
    number = next(_sequence)
    now = clock.now()
    if email == "":
        email = f"person{number}@example.org"
    participant = Participant(
        consultation_id=consultation.id,
        name=name or f"Personne {number}",
        organisation=f"Structure {number}",
        category=category,
        role=role,
        email=email,
        locale=locale,
        preferred_channel=channel
        or (Channel.TELEGRAM if telegram_chat_id is not None else Channel.EMAIL),
        digest_cadence=cadence,
        telegram_chat_id=telegram_chat_id,
        telegram_active=telegram_chat_id is not None,
        reply_key=new_reply_key(),
        consent_at=now if consented else None,
        created_at=now,
        updated_at=now,
    )
    session.add(participant)
    await session.flush()
    return participant


async def make_coordinator(
    session: AsyncSession, consultation: Consultation, **kwargs: Any
) -> Participant:
    kwargs.setdefault("category", "association")
    kwargs.setdefault("name", "Céline Coordinatrice")
    return await make_participant(session, consultation, role=Role.COORDINATOR, **kwargs)
