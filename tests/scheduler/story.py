"""The consultation the scheduler's stories run: a month in Paris, five phases, six people.

    observe   Mon 2 March 11:00  → Mon 9 March 18:00
    review    Mon 9 March 18:00  → Mon 16 March 09:00   (its 6 h reminder falls at 03:00)
    propose   Mon 16 March 09:00 → Fri 20 March 18:00
    rank      Fri 20 March 18:00 → Fri 27 March 18:00
    evaluate  Fri 27 March 18:00 → Fri 10 April 18:00   (summer time from 29 March)

Questionnaires: "after-observe" (7 days, after the observe phase) and "final" (7 days).
People: Céline coordinates; Aïcha, Chloé and Farid use Telegram; Bruno reads his email;
Denis said STOP; Emma never consented.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select

from consultation import clock, definition, outbox
from models import Channel, Consultation, OutboxMessage, Participant, Phase
from models.db import Database
from tests.factories import CATEGORIES, make_coordinator, make_participant

PARIS = ZoneInfo("Europe/Paris")
QUESTION = {"kind": "likert", "prompt": {"fr": "J'ai pu m'exprimer.", "en": "I could speak."}}


def paris(text: str) -> datetime:
    """`"2026-03-09 18:00"` in Paris, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


TIMETABLE = [
    ("observe", "2026-03-02 11:00", "2026-03-09 18:00"),
    ("review", "2026-03-09 18:00", "2026-03-16 09:00"),
    ("propose", "2026-03-16 09:00", "2026-03-20 18:00"),
    ("rank", "2026-03-20 18:00", "2026-03-27 18:00"),
    ("evaluate", "2026-03-27 18:00", "2026-04-10 18:00"),
]


def spec(slug: str = "ess-story") -> definition.ConsultationSpec:
    return definition.ConsultationSpec.model_validate(
        {
            "slug": slug,
            "title": "Plan ESS",
            "question": "Comment mieux soutenir l'économie sociale et solidaire ?",
            "scope_in": ["L'accompagnement des structures de l'ESS"],
            "categories": CATEGORIES,
            "phases": [
                {"kind": kind, "opens": paris(opens), "closes": paris(closes), "min_days": 1}
                for kind, opens, closes in TIMETABLE
            ],
            "questionnaires": [
                {
                    "key": "after-observe",
                    "after_phase": "observe",
                    "title": {"fr": "Votre avis", "en": "Your view"},
                    "questions": [QUESTION],
                },
                {
                    "key": "final",
                    "final": True,
                    "title": {"fr": "Évaluation finale", "en": "Final evaluation"},
                    "questions": [QUESTION],
                },
            ],
        }
    )


@dataclass
class Cast:
    consultation: Consultation
    celine: Participant
    aicha: Participant
    bruno: Participant
    chloe: Participant
    denis: Participant
    emma: Participant
    farid: Participant

    def name(self, participant_id: int | None) -> str:
        for name in ("celine", "aicha", "bruno", "chloe", "denis", "emma", "farid"):
            if getattr(self, name).id == participant_id:
                return name
        return f"#{participant_id}"

    def phase_id(self, phases: list[Phase], kind: str) -> int:
        return next(phase.id for phase in phases if phase.kind == kind)


async def set_up(database: Database) -> Cast:
    async with database.session() as session:
        consultation, _ = await definition.apply(session=session, spec=spec())
        await session.flush()
        cast = Cast(
            consultation=consultation,
            celine=await make_coordinator(session, consultation, telegram_chat_id=900),
            aicha=await make_participant(session, consultation, telegram_chat_id=101),
            bruno=await make_participant(session, consultation, category="cooperative"),
            chloe=await make_participant(
                session, consultation, telegram_chat_id=103, category="elected"
            ),
            denis=await make_participant(
                session, consultation, telegram_chat_id=104, category="citizen"
            ),
            emma=await make_participant(
                session, consultation, telegram_chat_id=105, consented=False
            ),
            farid=await make_participant(
                session, consultation, telegram_chat_id=106, category="citizen"
            ),
        )
        cast.denis.opted_out_at = clock.now()
        session.add(cast.denis)
    return cast


async def messages(
    database: Database, template: str | None = None, **payload: Any
) -> list[OutboxMessage]:
    """The outbox, oldest first: of one template, and with these payload values, if given."""
    async with database.session() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if template is not None:
            query = query.where(OutboxMessage.template == template)
        rows = list((await session.exec(query)).all())
    return [
        row for row in rows if all(row.payload.get(key) == value for key, value in payload.items())
    ]


async def phases_by_kind(database: Database, consultation_id: int) -> dict[str, Phase]:
    async with database.session() as session:
        found = (
            await session.exec(select(Phase).where(Phase.consultation_id == consultation_id))
        ).all()
    return {phase.kind: phase for phase in found}


async def deliver(database: Database) -> list[OutboxMessage]:
    """Do what the channels' senders do: take every due message and mark it sent now."""
    delivered: list[OutboxMessage] = []
    for channel in (Channel.TELEGRAM, Channel.EMAIL):
        async with database.session() as session:
            claimed = await outbox.claim(session=session, channel=channel, limit=100_000)
            for message in claimed:
                await outbox.mark_sent(session=session, message_id=message.id)
        delivered.extend(claimed)
    return delivered
