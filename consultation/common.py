"""The shared base under the features: what every part of the core needs and none of them owns.

- looking up a consultation (`get_consultation`) and reading its rules (`rules`, typed by the
  definition's `RulesSpec`, so a rule's default is written once, in the definition);
- who may do what (`require_coordinator`, `actor_of` for the audit trail) and whom Palabre may
  write to (`people_to_tell`);
- cleaning the free text people send (`clean_text`);
- the codes people answer with (F1, A3...): allocating the next one, reading one, ordering
  them, and the locks that keep two allocations (or two submissions past a daily cap) apart.

Feature modules (observations, findings, actions, questionnaires...) import this, not each
other, for their plumbing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock
from consultation.definition import RulesSpec
from consultation.errors import NotFound, PermissionDenied, UserError
from consultation.files import control_character
from models import Consultation, Participant, Role

# --- the consultation and its rules ---------------------------------------------------------


async def get_consultation(
    *, session: AsyncSession, consultation_id: int | None = None, slug: str | None = None
) -> Consultation:
    """The consultation `consultation_id`, else `slug`, else the only one there is.

    Raises `NotFound` (`consultation.unknown`, or `consultation.ambiguous` when no slug is
    given and there are several).
    """
    if consultation_id is not None:
        # `session.get` answers from the identity map after the first call: cheap in a loop.
        consultation = await session.get(Consultation, consultation_id)
        if consultation is None:
            raise NotFound("consultation.unknown", slug=str(consultation_id))
        return consultation
    query = select(Consultation)
    if slug:
        query = query.where(Consultation.slug == slug)
    found = (await session.exec(query.order_by(Consultation.id))).all()
    if not found:
        raise NotFound("consultation.unknown", slug=slug or "")
    if len(found) > 1 and not slug:
        raise NotFound("consultation.ambiguous", slugs=", ".join(c.slug for c in found))
    return found[0]


def rules(consultation: Consultation | None) -> RulesSpec:
    """The consultation's rules, each one it does not set at the definition's default.

    Without a consultation (a person not yet bound to one), every rule is at its default.
    """
    return RulesSpec.model_validate(consultation.rules if consultation else {})


def local_day_start(consultation: Consultation, when: datetime) -> datetime:
    """Midnight of `when`'s day in the consultation's time zone, as UTC (daily caps count so)."""
    zone = ZoneInfo(consultation.timezone)
    local = when.astimezone(zone)
    return clock.as_utc(datetime.combine(local.date(), time(0, 0), tzinfo=zone))


# --- who may do what, and whom to tell --------------------------------------------------------


def require_coordinator(by: Participant | None, consultation_id: int) -> None:
    """Refuse a coordinator operation to anyone but a coordinator of this consultation.

    Core functions take `by` (the coordinator) or, for a trusted process such as the command
    line or the scheduler, `by=None` with an `actor_label` ("cli", "scheduler") for the audit.
    """
    if by is None:
        return
    if (
        by.role != Role.COORDINATOR
        or by.consultation_id != consultation_id
        or by.erased_at is not None
    ):
        raise PermissionDenied()


def actor_of(by: Participant | None, actor_label: str | None) -> dict[str, Any]:
    """The `actor`/`actor_label` pair for `audit.record`."""
    if by is not None:
        return {"actor": by, "actor_label": actor_label}
    return {"actor": None, "actor_label": actor_label or "system"}


async def people_to_tell(
    *, session: AsyncSession, consultation_id: int, coordinators: bool = True
) -> list[Participant]:
    """Everyone Palabre may write to about the process, in a stable order.

    Only people who have given their consent: until then Palabre writes to a person only to
    invite them (GDPR). Coordinators run the process rather than answer it: `coordinators=False`
    leaves them out of the messages that ask for an answer.
    """
    query = (
        select(Participant)
        .where(Participant.consultation_id == consultation_id)
        .where(Participant.erased_at.is_(None))  # type: ignore[union-attr]
        .where(Participant.opted_out_at.is_(None))  # type: ignore[union-attr]
        .where(Participant.consent_at.is_not(None))  # type: ignore[union-attr]
        .order_by(Participant.id)
    )
    if not coordinators:
        query = query.where(Participant.role == Role.PARTICIPANT)
    people = (await session.exec(query)).all()
    return [person for person in people if not declined(person)]


def declined(person: Participant) -> bool:
    """Whether the person's latest word on consent is no: they are not written to."""
    said_no = person.consent_declined_at
    return said_no is not None and (person.consent_at is None or said_no >= person.consent_at)


# --- free text --------------------------------------------------------------------------------

# Characters that show nothing: a text made of these alone is empty, however long.
_INVISIBLE = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\u180e"}


def clean_text(text: str | None, *, area: str, limit: int) -> str:
    """The text as it will be stored, or a `UserError` `<area>.empty|control_characters|too_long`.

    Line breaks and tabs are kept (Windows line ends become plain ones); any other control
    character (C0, DEL, C1) is refused rather than silently dropped, since it usually means a
    paste went wrong. Length is counted in characters after trimming.
    """
    value = unicodedata.normalize("NFC", (text or "").replace("\r\n", "\n").replace("\r", "\n"))
    if control_character(value) is not None:
        raise UserError(f"{area}.control_characters")
    value = value.strip()
    visible = [
        char
        for char in value
        if not char.isspace()
        and unicodedata.category(char) not in {"Cf", "Zs", "Zl", "Zp", "Cc"}
        and char not in _INVISIBLE
    ]
    if not visible:
        raise UserError(f"{area}.empty")
    if len(value) > limit:
        raise UserError(f"{area}.too_long", limit=limit, length=len(value))
    return value


# --- codes and the locks that keep them apart ---------------------------------------------------


async def lock_consultation(*, session: AsyncSession, consultation_id: int) -> None:
    """Serialize changes within a consultation: code allocation (two proposals at once get A7
    and A8), timetable changes (the second sees what the first did)."""
    await session.execute(
        select(Consultation.id).where(Consultation.id == consultation_id).with_for_update()
    )


async def lock_participant(*, session: AsyncSession, participant: Participant) -> None:
    """Serialize one person's submissions, so that two at once cannot both pass the daily cap.

    (SQLite transactions already take the write lock up front; PostgreSQL locks the row.)
    """
    await session.execute(
        select(Participant.id).where(Participant.id == participant.id).with_for_update()
    )


def next_code(prefix: str, existing: Iterable[str]) -> str:
    """The code after the highest of `existing` with this prefix: F1, F2... (call it locked)."""
    numbers = [
        int(code[len(prefix) :])
        for code in existing
        if code.startswith(prefix) and code[len(prefix) :].isdigit()
    ]
    return f"{prefix}{max(numbers, default=0) + 1}"


def normalize_code(code: str) -> str:
    return (code or "").strip().upper()


def code_key(code: str) -> tuple[int, str]:
    """F2 before F10."""
    digits = code[1:]
    return (int(digits) if digits.isdigit() else 10**9, code)
