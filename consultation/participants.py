"""Participants: importing them from a CSV file, inviting them, and finding them again.

An invitation is a random single-use token; only its SHA-256 is stored, so a database leak does
not leak working links.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, clock, files, preferences
from consultation.common import get_consultation, rules
from consultation.errors import NotFound, UserError
from models import (
    Cadence,
    Channel,
    Consultation,
    ForgottenAddress,
    Invitation,
    Participant,
    Role,
)

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("name", "email", "category")
KNOWN_COLUMNS = {"name", "email", "organisation", "category", "role", "locale", "channel"}


def normalize_email(raw: str) -> str:
    """A syntactically valid address, its domain lower-cased; raises ValueError otherwise."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    return result.normalized.lower()


def new_reply_key() -> str:
    return secrets.token_hex(10)


@dataclass
class ImportRow:
    line: int
    name: str
    email: str
    organisation: str | None
    category: str
    role: str
    locale: str
    channel: str


@dataclass
class ImportReport:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    # Rows of people who asked to be forgotten: skipped, not an error in the file.
    forgotten: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "imported": self.imported,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"line": line, "reason": reason} for line, reason in self.rejected],
            "forgotten": [{"line": line, "email": email} for line, email in self.forgotten],
        }


def read_csv(
    text: str, *, categories: set[str], source: str
) -> tuple[list[ImportRow], ImportReport]:
    """Validate every row; returns the good rows and a report listing the rejected ones."""
    report = ImportReport()
    records = files.csv_records(
        text,
        source=source,
        required=REQUIRED_COLUMNS,
        known=KNOWN_COLUMNS,
    )
    rows: list[ImportRow] = []
    seen: dict[str, int] = {}
    for line, record in records:
        if None in record:
            report.rejected.append((line, "more fields than columns in the header"))
            continue
        values = {key: (value or "").strip() for key, value in record.items()}
        if not any(values.values()):
            continue
        problem, row = _check_row(line, values, categories)
        if problem:
            report.rejected.append((line, problem))
            continue
        assert row is not None
        if row.email in seen:
            report.rejected.append(
                (line, f"duplicate email {row.email} (already on line {seen[row.email]})")
            )
            continue
        seen[row.email] = line
        rows.append(row)
    return rows, report


def _check_row(
    line: int, values: dict[str, str], categories: set[str]
) -> tuple[str | None, ImportRow | None]:
    if not values.get("name"):
        return "name is empty", None
    if len(values["name"]) > 200:
        return "name is longer than 200 characters", None
    if not values.get("email"):
        return "email is empty", None
    try:
        email = normalize_email(values["email"])
    except ValueError as exc:
        return f"invalid email {values['email']!r}: {exc}", None
    category = values.get("category", "").lower()
    if category not in categories:
        return (
            f"unknown category {values.get('category')!r} (known: {', '.join(sorted(categories))})"
        ), None
    role = (values.get("role") or Role.PARTICIPANT).lower()
    if role not in {Role.PARTICIPANT, Role.COORDINATOR}:
        return f"unknown role {values.get('role')!r} (participant or coordinator)", None
    locale = (values.get("locale") or "fr").lower()
    if locale not in {"fr", "en"}:
        return f"unknown locale {values.get('locale')!r} (fr or en)", None
    channel = (values.get("channel") or Channel.TELEGRAM).lower()
    if channel not in {Channel.TELEGRAM, Channel.EMAIL}:
        return f"unknown channel {values.get('channel')!r} (telegram or email)", None
    return None, ImportRow(
        line=line,
        name=values["name"],
        email=email,
        organisation=values.get("organisation") or None,
        category=category,
        role=role,
        locale=locale,
        channel=channel,
    )


def address_digest(erasure_key: str, email: str) -> str:
    """The keyed hash that stands for a forgotten address (HMAC-SHA256 with the secret key)."""
    message = normalize_email(email).lower().encode("utf-8")
    return hmac.new(erasure_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


async def forgotten_digests(*, session: AsyncSession, consultation_id: int) -> set[str]:
    return set(
        (
            await session.exec(
                select(ForgottenAddress.digest).where(
                    ForgottenAddress.consultation_id == consultation_id
                )
            )
        ).all()
    )


async def import_rows(
    *,
    session: AsyncSession,
    consultation: Consultation,
    rows: list[ImportRow],
    report: ImportReport,
    erasure_key: str,
) -> ImportReport:
    """Create or update each participant by email. Nothing else in their record is touched.

    An address whose owner asked to be forgotten is recognised by its keyed hash and refused,
    one line per row: forgetting someone must not last only until the next import.
    """
    current = clock.now()
    forgotten = await forgotten_digests(session=session, consultation_id=consultation.id)
    existing = {
        participant.email: participant
        for participant in (
            await session.exec(
                select(Participant).where(Participant.consultation_id == consultation.id)
            )
        ).all()
        if participant.email
    }
    for row in rows:
        values = {
            "name": row.name,
            "organisation": row.organisation,
            "category": row.category,
            "role": row.role,
            "locale": row.locale,
            "preferred_channel": row.channel,
        }
        participant = existing.get(row.email)
        if participant is None and address_digest(erasure_key, row.email) in forgotten:
            report.forgotten.append((row.line, row.email))
            continue
        if participant is None:
            participant = Participant(
                consultation_id=consultation.id,
                email=row.email,
                reply_key=new_reply_key(),
                digest_cadence=Cadence.WEEKLY,
                created_at=current,
                updated_at=current,
                **values,
            )
            session.add(participant)
            existing[row.email] = participant
            report.imported += 1
            continue
        if participant.erased_at is not None:
            report.rejected.append((row.line, f"{row.email} asked to be forgotten"))
            continue
        changes = {k: v for k, v in values.items() if getattr(participant, k) != v}
        if not changes:
            report.unchanged += 1
            continue
        for name, value in changes.items():
            setattr(participant, name, value)
        participant.updated_at = current
        session.add(participant)
        report.updated += 1
    if report.imported or report.updated:
        await audit.record(
            session=session,
            consultation_id=consultation.id,
            action="participants.imported",
            actor_label="cli",
            detail={"imported": report.imported, "updated": report.updated},
        )
    return report


def read_csv_file(
    path: str | Path, *, categories: set[str]
) -> tuple[list[ImportRow], ImportReport]:
    return read_csv(files.read_text(path), categories=categories, source=str(path))


# --- looking people up --------------------------------------------------------------------


async def by_email(*, session: AsyncSession, consultation_id: int, email: str) -> Participant:
    try:
        address = normalize_email(email)
    except ValueError as exc:
        raise NotFound("participant.bad_email", email=email) from exc
    participant = (
        await session.exec(
            select(Participant)
            .where(Participant.consultation_id == consultation_id)
            .where(Participant.email == address)
        )
    ).first()
    if participant is None:
        raise NotFound("participant.unknown_email", email=address)
    return participant


async def by_chat(*, session: AsyncSession, chat_id: int) -> Participant | None:
    """The participant bound to this Telegram chat (the most recent binding if several)."""
    return (
        await session.exec(
            select(Participant)
            .where(Participant.telegram_chat_id == chat_id)
            .where(Participant.erased_at.is_(None))  # type: ignore[union-attr]
            .order_by(Participant.updated_at.desc())  # type: ignore[union-attr]
        )
    ).first()


async def by_reply_key(*, session: AsyncSession, reply_key: str) -> Participant | None:
    return (
        await session.exec(select(Participant).where(Participant.reply_key == reply_key))
    ).first()


# --- invitations ---------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_invitation(
    *, session: AsyncSession, participant: Participant, days: int | None = None
) -> str:
    """A new personal token for `participant` (the plain token is returned, never stored).

    It is valid `days` days, by default the consultation's `invitation_days`.
    """
    if not participant.reachable:
        raise UserError("invitation.not_reachable")
    if days is None:
        consultation = await get_consultation(
            session=session, consultation_id=participant.consultation_id
        )
        days = rules(consultation).invitation_days
    # 32 URL-safe characters: fits Telegram's 64-character /start payload with room to spare.
    token = secrets.token_urlsafe(24)
    current = clock.now()
    # Only the newest link opens anything: an old one, forwarded or found later, cannot bind.
    await session.execute(
        update(Invitation)
        .where(Invitation.participant_id == participant.id)
        .where(Invitation.used_at.is_(None))  # type: ignore[union-attr]
        .where(Invitation.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=current)
        .execution_options(synchronize_session=False)
    )
    session.add(
        Invitation(
            participant_id=participant.id,
            token_hash=hash_token(token),
            created_at=current,
            expires_at=current + timedelta(days=days),
        )
    )
    return token


async def _open_invitation(session: AsyncSession, token: str) -> tuple[Invitation, Participant]:
    """The invitation `token` opens and its participant, locked; or a `UserError` saying why not:
    `invitation.unknown`, `invitation.used`, `invitation.revoked` or `invitation.expired`."""
    invitation = (
        await session.exec(
            select(Invitation).where(Invitation.token_hash == hash_token(token)).with_for_update()
        )
    ).first()
    if invitation is None:
        raise UserError("invitation.unknown")
    if invitation.used_at is not None:
        raise UserError("invitation.used")
    if invitation.revoked_at is not None:
        raise UserError("invitation.revoked")
    current = clock.now()
    if invitation.expires_at <= current:
        raise UserError("invitation.expired")
    participant = await session.get(Participant, invitation.participant_id)
    if participant is None or not participant.reachable:
        raise UserError("invitation.unknown")
    return invitation, participant


async def bound_elsewhere(*, session: AsyncSession, token: str, chat_id: int) -> int | None:
    """The chat the invitation's participant already uses, when it is not `chat_id`.

    Opening such a link from a new chat must be confirmed there (`redeem_invitation` with
    `move=True`), and the old chat is told: a forwarded or stolen link cannot take an account
    over silently. Raises the same `UserError`s as `redeem_invitation`.
    """
    if await _invitation_of_chat(session, token.strip(), chat_id):
        return None  # her own link, opened again from her own chat
    _invitation, participant = await _open_invitation(session, token.strip())
    current = participant.telegram_chat_id
    return current if current is not None and current != chat_id else None


async def redeem_invitation(
    *, session: AsyncSession, token: str, chat_id: int, move: bool = False
) -> Participant:
    """Bind a Telegram chat to the invited participant; the token then stops working.

    A participant already bound to another chat moves to this one only when `move` says the
    person confirmed it (else `invitation.other_chat`). Raises `UserError` with
    `invitation.unknown`, `invitation.used`, `invitation.revoked` or `invitation.expired`.
    """
    invitation, participant = await _open_invitation(session, token.strip())
    current = clock.now()
    other_chat = participant.telegram_chat_id
    if other_chat is not None and other_chat != chat_id and not move:
        raise UserError("invitation.other_chat")
    # A chat moves to its newest invitation within a consultation.
    previous = (
        await session.exec(
            select(Participant)
            .where(Participant.consultation_id == participant.consultation_id)
            .where(Participant.telegram_chat_id == chat_id)
            .where(Participant.id != participant.id)
        )
    ).all()
    for other in previous:
        other.telegram_chat_id = None
        other.telegram_active = False
        session.add(other)
    await session.flush()
    invitation.used_at = current
    participant.telegram_chat_id = chat_id
    participant.telegram_active = True
    participant.updated_at = current
    session.add(invitation)
    session.add(participant)
    await audit.record(
        session=session,
        consultation_id=participant.consultation_id,
        action="invitation.redeemed",
        actor=participant,
    )
    return participant


async def _invitation_of_chat(session: AsyncSession, token: str, chat_id: int) -> bool:
    """Whether `token` is the invitation that already bound this chat's participant."""
    invitation = (
        await session.exec(select(Invitation).where(Invitation.token_hash == hash_token(token)))
    ).first()
    if invitation is None or invitation.used_at is None:
        return False
    person = await session.get(Participant, invitation.participant_id)
    return person is not None and person.telegram_chat_id == chat_id


async def start_on_telegram(
    *,
    session: AsyncSession,
    chat_id: int,
    token: str | None,
    participant_id: int | None,
    move: bool = False,
) -> Participant:
    """`/start [token]` on Telegram: the participant the chat is bound to from now on.

    A token binds the chat to its invitation, and Telegram becomes where the person wants to be
    reached (their settings change it back); opening one's invitation link a second time (it
    is used by now) is just a /start. Writing to the bot again undoes a STOP and a block.
    """
    again = participant_id is not None and token is not None
    if again and await _invitation_of_chat(session, token or "", chat_id):
        token = None
    if token is not None:
        person = await redeem_invitation(session=session, token=token, chat_id=chat_id, move=move)
        await preferences.set_channel(session=session, participant=person, channel=Channel.TELEGRAM)
        logger.info("chat bound to participant %s by invitation", person.id)
    else:
        found = await session.get(Participant, participant_id) if participant_id else None
        if found is None or found.erased_at is not None:
            raise NotFound("preferences.forgotten")
        person = found
    if person.opted_out_at is not None:
        await preferences.opt_in(session=session, participant=person, channel=Channel.TELEGRAM)
    if not person.telegram_active:
        person.telegram_active = True
        person.updated_at = clock.now()
        session.add(person)
    return person
