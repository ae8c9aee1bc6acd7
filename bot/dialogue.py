"""Where a person is in a short dialogue with the bot, kept in the database (`DialogueState`).

One dialogue per person on Telegram at a time: a contest reason awaited, a ballot being built,
an observation awaiting "Record this?", a questionnaire answer typed as text... Starting a new
one replaces the old. A dialogue left alone for a day has expired: its buttons and the reply it
waited for get a polite "please start again".

Every dialogue carries a short random `nonce` that its buttons repeat, so a button from an older
message never acts on a newer dialogue.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock
from models import Channel, DialogueState, Participant

LIFETIME = timedelta(hours=24)

# The kinds of dialogue.
OBSERVATION = "observation"  # text awaiting "Record this?"
PROPOSAL = "proposal"  # an action awaiting "Record this?", or its text awaited
CONTEST = "contest"  # the reason for contesting a finding awaited
BALLOT = "ballot"  # a ranking being built
QUESTION = "question"  # a questionnaire's free-text answer awaited
BROADCAST = "broadcast"  # a coordinator's message awaiting "Send"
SCOPE_REASON = "scope_reason"  # the reason an observation is out of scope awaited
PHASE_REASON = "phase_reason"  # the reason to close or extend a phase awaited
FORGET = "forget"  # erasure awaiting confirmation
FOLLOWUP_REMARK = "followup_remark"  # an optional remark after a follow-up answer

# Dialogues that wait for the person's next text message.
AWAITS_TEXT = {CONTEST, QUESTION, SCOPE_REASON, PHASE_REASON, FOLLOWUP_REMARK}


@dataclass
class Dialogue:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    expired: bool = False

    @property
    def nonce(self) -> str:
        return str(self.data.get("nonce", ""))

    @property
    def awaits_text(self) -> bool:
        return self.kind in AWAITS_TEXT or (self.kind == PROPOSAL and not self.data.get("text"))


def new_nonce() -> str:
    return secrets.token_hex(3)


async def _row(session: AsyncSession, participant: Participant) -> DialogueState | None:
    return (
        await session.exec(
            select(DialogueState)
            .where(DialogueState.participant_id == participant.id)
            .where(DialogueState.channel == Channel.TELEGRAM)
        )
    ).first()


async def current(session: AsyncSession, participant: Participant) -> Dialogue | None:
    """The person's dialogue, marked `expired` when it was left alone too long."""
    row = await _row(session, participant)
    if row is None:
        return None
    expired = row.updated_at + LIFETIME <= clock.now()
    return Dialogue(row.kind, dict(row.data or {}), expired)


async def begin(
    session: AsyncSession, participant: Participant, kind: str, **data: Any
) -> Dialogue:
    """Start a dialogue (replacing any other); it gets a fresh nonce unless one is given."""
    data.setdefault("nonce", new_nonce())
    row = await _row(session, participant)
    if row is None:
        row = DialogueState(participant_id=participant.id, channel=Channel.TELEGRAM, kind=kind)
    row.kind = kind
    row.data = data
    row.updated_at = clock.now()
    session.add(row)
    await session.flush()
    return Dialogue(kind, data)


async def update(session: AsyncSession, participant: Participant, **changes: Any) -> Dialogue:
    """Change the data of the current dialogue (a ballot growing), keeping its nonce."""
    row = await _row(session, participant)
    if row is None:
        raise LookupError("no dialogue to update")
    row.data = {**(row.data or {}), **changes}
    row.updated_at = clock.now()
    session.add(row)
    await session.flush()
    return Dialogue(row.kind, dict(row.data))


async def end(session: AsyncSession, participant: Participant, kind: str | None = None) -> None:
    """Forget the dialogue (only if it is of `kind`, when given)."""
    row = await _row(session, participant)
    if row is not None and (kind is None or row.kind == kind):
        await session.delete(row)
        await session.flush()


async def expect(
    session: AsyncSession, participant: Participant, kind: str, nonce: str | None = None
) -> Dialogue | None:
    """The live dialogue of `kind` (with `nonce`, when a button gives one), else None."""
    found = await current(session, participant)
    if found is None or found.kind != kind or found.expired:
        return None
    if nonce is not None and found.nonce != nonce:
        return None
    return found
