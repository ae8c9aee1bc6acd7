"""From an outbox row to an email: the subject/text/HTML trio rendered, and every header set.

`templates/email/<name>.subject.txt`, `<name>.txt` and `<name>.html` are rendered with the same
context (the payload, the consultation, the reader, and `mail`: the reader's reply address and a
`mailto(body)` helper for prefilled replies), so the two parts always say the same thing.

A few emails carry a document built from the database when they are sent, not stored in the
payload (`documents_for`, called by the sender right after it claims them): the `data_export` a
person asks for with MYDATA is their `privacy.export_data` as a JSON file. The outbox then never
holds a second copy of their data, and the file is as fresh as the moment it leaves.
"""

from __future__ import annotations

import email.policy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import cached_property
from typing import Any
from urllib.parse import quote

from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import clock, privacy
from mailer import headers, tokens
from mailer.commands import LETTER_TEMPLATES, help_names, reply_words
from mailer.config import MailConfig
from models import Consultation, OutboxMessage, Participant
from templates.i18n import normalize_locale
from templates.render import message_context, render

# Templates that answer a message a person wrote (RFC 3834: "auto-replied", not "auto-generated").
AUTO_REPLIED = frozenset({"email_receipt", "email_sender_mismatch", *LETTER_TEMPLATES})
# The goodbye after an erasure goes to an address no participant holds any more: once the
# message is settled, the sender removes that address (and the payload) from its row.
LAST_WORDS = frozenset({"forgotten"})
# Templates whose email carries a document built at send time (see `documents_for`).
WITH_DOCUMENTS = frozenset({"data_export"})


@dataclass(frozen=True)
class Attachment:
    """A file attached to an email."""

    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "json"


# Headers stored raw keep their own folding: the email package would otherwise RFC 2047-encode
# a List-Unsubscribe longer than a line, which mail clients then ignore.
WIRE = email.policy.SMTP.clone(refold_source="none")


@dataclass(frozen=True)
class Composed:
    """An email ready for the wire."""

    message: EmailMessage
    envelope_from: str
    recipient: str
    message_id: str

    @cached_property
    def raw(self) -> bytes:
        """The message as it goes on the wire (CRLF line ends), serialised once.

        `WIRE` leaves headers set with `set_raw` as written (List-Unsubscribe), and folds the
        others as the SMTP policy does.
        """
        return self.message.as_bytes(policy=WIRE)

    def as_bytes(self) -> bytes:
        return self.raw


class NoAddress(Exception):
    """The message has nobody to go to (no address, or the person was forgotten)."""


async def documents_for(*, session: AsyncSession, message: OutboxMessage) -> list[Attachment]:
    """The files `message` carries, read from the database now; none for most templates.

    Nothing for a person forgotten in the meantime: `compose` refuses to write to them anyway.
    """
    if message.template not in WITH_DOCUMENTS or message.participant_id is None:
        return []
    participant = await session.get(Participant, message.participant_id)
    if participant is None or participant.erased_at is not None:
        return []
    document = await privacy.export_data(session=session, participant=participant)
    content = json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    slug = document["consultation"]["slug"] or "palabre"
    return [Attachment(filename=f"palabre-{slug}-my-data.json", content=content)]


def mailto(address: str | None, body: str = "", subject: str | None = None) -> str:
    """A `mailto:` link that opens a reply prefilled with `body` (RFC 6068 escaping)."""
    if not address:
        return ""
    query = []
    if subject:
        query.append(f"subject={quote(subject, safe='')}")
    if body:
        query.append(f"body={quote(body, safe='')}")
    return f"mailto:{address}" + (f"?{'&'.join(query)}" if query else "")


def mail_context(
    config: MailConfig,
    participant: Participant | None,
    *,
    locale: str = "fr",
    subject: str | None = None,
) -> dict[str, Any]:
    """What templates know about replying: the reader's address, a `mailto()` helper, the
    command words in the reader's language and the commands HELP lists."""
    reply = (
        tokens.reply_address(config, participant.reply_key)
        if participant is not None and participant.reply_key
        else None
    )
    unsubscribe_url = None
    if reply and config.public_url and participant is not None:
        token = tokens.unsubscribe_token(config, participant.reply_key)
        unsubscribe_url = f"{config.public_url.rstrip('/')}/email/unsubscribe/{token}"
    reply_subject = f"Re: {subject}" if subject else None
    return {
        "reply_address": reply,
        "unsubscribe_url": unsubscribe_url,
        "unsubscribe_mailto": mailto(reply, "STOP", "STOP") if reply else "",
        "mailto": lambda body="", subject=None: mailto(reply, body, subject or reply_subject),
        "words": reply_words(locale),
        "commands": help_names(),
    }


def locale_of(
    message: OutboxMessage, participant: Participant | None, consultation: Consultation | None
) -> str:
    if participant is not None:
        return normalize_locale(participant.locale)
    wanted = (message.payload or {}).get("locale")
    return normalize_locale(wanted or (consultation.default_locale if consultation else None))


def compose(
    *,
    config: MailConfig,
    message: OutboxMessage,
    participant: Participant | None,
    consultation: Consultation | None,
    now: datetime | None = None,
    attachments: Sequence[Attachment] = (),
) -> Composed:
    """Render one outbox message into an email with all of Palabre's headers.

    `attachments` are those `documents_for` built; a template that needs one refuses without.
    """
    address = message.address or (participant.email if participant is not None else None)
    if participant is not None and participant.erased_at is not None:
        raise NoAddress("the participant asked to be forgotten")
    if not address:
        raise NoAddress("no email address")
    if message.template in WITH_DOCUMENTS and not attachments:
        raise ValueError(f"{message.template} is sent with its document (see documents_for)")
    locale = locale_of(message, participant, consultation)
    context = message_context(
        payload=message.payload or {}, consultation=consultation, recipient=participant
    )
    # The subject first, with a context that has no subject yet (subjects do not use `mail`).
    subject_context = dict(context, mail=mail_context(config, participant, locale=locale))
    subject = " ".join(
        render(f"email/{message.template}.subject.txt", subject_context, locale).split()
    )
    context["mail"] = mail_context(config, participant, locale=locale, subject=subject)
    text = render(f"email/{message.template}.txt", context, locale)
    html = render(f"email/{message.template}.html", context, locale)

    created = (message.created_at or clock.now()).isoformat()
    our_id = headers.message_id(
        config, outbox_id=message.id or 0, created=created, dedupe_key=message.dedupe_key
    )
    email_message = EmailMessage(policy=email.policy.default)
    email_message["From"] = config.mail_from
    name = participant.name if participant is not None and participant.name else ""
    email_message["To"] = formataddr((name, address)) if name else address
    email_message["Subject"] = subject
    email_message["Date"] = format_datetime(now or clock.now())
    email_message["Message-ID"] = our_id
    reply_to = context["mail"]["reply_address"]
    if reply_to:
        email_message["Reply-To"] = reply_to
    in_reply_to = (message.payload or {}).get("in_reply_to")
    if isinstance(in_reply_to, str) and in_reply_to.startswith("<") and len(in_reply_to) < 900:
        email_message["In-Reply-To"] = in_reply_to
        email_message["References"] = in_reply_to
    email_message["Auto-Submitted"] = (
        "auto-replied" if message.template in AUTO_REPLIED else "auto-generated"
    )
    email_message["X-Auto-Response-Suppress"] = "All"
    email_message["Precedence"] = "bulk"
    if consultation is not None:
        email_message["List-Id"] = headers.list_id(config, consultation.slug, consultation.title)
    if reply_to and participant is not None:
        value, one_click = headers.list_unsubscribe(
            config,
            mailto_address=reply_to,
            unsubscribe_token=tokens.unsubscribe_token(config, participant.reply_key),
        )
        if value:
            # Literal, folded at the comma: URIs in angle brackets, never encoded (RFC 2369).
            email_message.set_raw("List-Unsubscribe", value.replace(", ", ",\r\n "))
        if one_click:
            email_message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email_message.set_content(text + "\n", subtype="plain", charset="utf-8", cte="quoted-printable")
    email_message.add_alternative(
        html + "\n", subtype="html", charset="utf-8", cte="quoted-printable"
    )
    for attachment in attachments:
        email_message.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
        )
    # After the parts: set_content() clears every Content-* header set before it.
    email_message["Content-Language"] = locale

    envelope_from = (
        tokens.verp_address(config, participant.reply_key)
        if participant is not None and participant.reply_key
        else tokens.split_address(config.reply_address)[0]
        + "@"
        + tokens.split_address(config.reply_address)[1]
    )
    composed = Composed(
        message=email_message, envelope_from=envelope_from, recipient=address, message_id=our_id
    )
    composed.raw  # noqa: B018 (serialised now, while rendering, rather than on each attempt)
    return composed
