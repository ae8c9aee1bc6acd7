"""Reading an inbound email, without asking the database anything.

`read(config, raw)` is pure and never raises: it sorts a message into a bounce, an automatic
answer or a reply, finds and verifies the token, and extracts the lines the person wrote (quoted
text, the part below our "reply above this line" marker, forwarded messages and signatures are
cut away; an HTML-only reply is turned into text first). `mailer.replies` acts on what it read.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email.message import Message
from html.parser import HTMLParser
from typing import ClassVar

from mailparser_reply.parser import EmailMessage as ReplyText

from mailer import commands, headers, tokens
from mailer.config import MailConfig

logger = logging.getLogger(__name__)

LANGUAGES = ["fr", "en"]
MAX_TEXT = 20_000
MAX_RAW = 10_000_000

# Our marker, in every language we write it in (see templates/email/base.*).
_MARKER = re.compile(
    r"reply above this line|r[ée]pondez au-dessus de cette ligne|"
    r"r[ée]pondre au-dessus de cette ligne|write above this line|"
    r"[ée]crivez au-dessus de cette ligne",
    re.IGNORECASE,
)
# Where a forwarded or pasted-in original message begins.
_FORWARD = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|message transf[ée]r[ée]|original message|"
    r"message d'origine|message original|mail original)\s*-{2,}|begin forwarded message\s*:|"
    r"d[ée]but du message (?:r[ée]exp[ée]di[ée]|transf[ée]r[ée])\s*:)",
    re.IGNORECASE,
)
# What phones and mail apps add under a reply. mail-parser-reply does not know the French ones,
# and without this they come back in the receipt as lines "not understood".
_DEVICE_SIGNATURE = re.compile(
    r"^\s*(?:envoy[ée] (?:de|depuis) (?:mon|un|l['’]application)\b|sent from (?:my|mail|outlook)\b|"
    r"get outlook for\b|obtenir outlook pour\b|t[ée]l[ée]charger outlook pour\b|"
    r"envoy[ée] avec (?:la messagerie s[ée]curis[ée]e )?\[?proton ?mail\b|"
    r"sent with \[?proton ?mail\b)",
    re.IGNORECASE,
)
# What an automatic answer says in its first lines when its headers do not (no RFC 3834
# `Auto-Submitted`, a subject starting with "Re:"): "Ceci est un message automatique".
_AUTOMATIC_BODY = re.compile(
    r"(?:ceci est un (?:message|courriel|mail) automatique|ceci est une r[ée]ponse automatique|"
    r"this is an automatic (?:reply|response|message)|je suis (?:actuellement )?absente? "
    r"(?:du bureau )?(?:jusqu|du \d)|i am (?:currently )?out of (?:the )?office|"
    r"i'm (?:currently )?out of (?:the )?office)",
    re.IGNORECASE,
)
# A heading of our own email, quoted back: a finding ("F2 (nouveau) — …") or a question
# ("Q1. …"), never indented like the examples under it. An answer typed just below it is about it.
_QUOTED_HEADING = re.compile(r"^\s*>+ ?(?P<code>[FQ]\d{1,4})\b(?! +\S+ +\|)", re.IGNORECASE)
_QUOTED_END = re.compile(r"^\s*>+ ?(?:-- ?$|==)")
# Outlook's unprefixed original with answers marked by an arrow: "==> NON, la ligne 32 …".
_ARROW = re.compile(r"^\s*(?:=+>|-+>|>>>)\s*(?P<answer>\S.*)$")
_HEADING = re.compile(r"^(?P<code>[FQ]\d{1,4})\b(?! +\S+ +\|)", re.IGNORECASE)
_ATTRIBUTION_HINT = re.compile(r"wrote|[ée]crit|@|schrieb|<", re.IGNORECASE)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_DELAY_SUBJECT = re.compile(r"delay|delayed|retard|warning|avertissement|still trying", re.I)


@dataclass
class Incoming:
    """What an inbound message is, before the database is asked anything."""

    message_id: str
    kind: str  # "reply", "auto", "bounce"
    reason: str | None = None
    token: tokens.Token | None = None
    # Every reply token the message carries (sent to two people's addresses, it has two).
    reply_tokens: list[tokens.Token] = field(default_factory=list)
    verp: tokens.Token | None = None
    sender: str = ""
    subject: str = ""
    # The Message-IDs of the emails it answers (In-Reply-To first, then References, newest first).
    answers: list[str] = field(default_factory=list)
    # What our own MX recorded of SPF/DKIM/DMARC for the From domain: "pass", "fail" or None.
    authentication: str | None = None
    lines: list[str] = field(default_factory=list)
    # For a bounce: (final recipient, permanent?) per recipient, and the Message-IDs it quotes.
    failures: list[tuple[str, bool]] = field(default_factory=list)
    original_ids: list[str] = field(default_factory=list)


def parse_bytes(raw: bytes) -> Message:
    return email.message_from_bytes(raw[:MAX_RAW], policy=email.policy.default)


def external_id(message: Message, raw: bytes) -> str:
    """The message's Message-ID, or a digest of its bytes when it has none (or a broken one).

    A Message-ID is printable ASCII (RFC 5322); one with a NUL or another control character
    cannot be stored on PostgreSQL, so such a message is known by its digest instead.
    """
    value = headers.header(message, "Message-ID")
    value = " ".join(value.split())
    if value and len(value) <= 250 and value.isprintable():
        return value
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def read(config: MailConfig, raw: bytes) -> Incoming:
    """Sort and read one message; never raises, whatever the bytes."""
    try:
        message = parse_bytes(raw)
    except Exception:  # email's parser is meant not to raise; be sure
        return Incoming(
            message_id="sha256:" + hashlib.sha256(raw).hexdigest(),
            kind="auto",
            reason="unparseable",
        )
    try:
        return _read(config, message, raw)
    except Exception as exc:  # a hostile message must never stop the poller
        logger.warning("could not read an inbound message: %s", type(exc).__name__)
        return Incoming(
            message_id=external_id_safe(message, raw),
            kind="auto",
            reason=f"unreadable ({type(exc).__name__})",
        )


def external_id_safe(message: Message, raw: bytes) -> str:
    try:
        return external_id(message, raw)
    except Exception:
        return "sha256:" + hashlib.sha256(raw).hexdigest()


def _read(config: MailConfig, message: Message, raw: bytes) -> Incoming:
    reading = Incoming(
        message_id=external_id(message, raw),
        kind="reply",
        sender=headers.sender_address(message),
        subject=headers.header(message, "Subject")[:300],
    )
    reading.verp = tokens.find_token(config, message, tokens.VERP)
    if headers.is_bounce(message):
        reading.kind = "bounce"
        reading.failures, reading.original_ids = delivery_failures(message)
        return reading
    reason = headers.auto_reply_reason(message)
    if reason is not None:
        reading.kind, reading.reason = "auto", reason
        return reading
    reading.answers = answered_ids(message)
    reading.authentication = headers.authentication(
        message, config.trusted_authserv_id, headers.domain_of(reading.sender)
    )
    reading.reply_tokens = tokens.find_tokens(config, message, tokens.REPLY)
    reading.token = reading.reply_tokens[0] if reading.reply_tokens else None
    if reading.token is None:
        reading.reason = (
            "forged token"
            if any(tokens.looks_like_ours(config, a) for a in tokens.candidate_addresses(message))
            else "no token"
        )
        return reading
    reading.lines = reply_lines(body_text(message))
    first = [line for line in reading.lines if line.strip()][:3]
    # "F1 oui. Je suis absente jusqu'au 10" is a person's reply: only a text without any
    # command is taken for an automatic one.
    if any(_AUTOMATIC_BODY.search(line) for line in first) and not any(
        commands.parse_line(line) for line in reading.lines[: commands.MAX_LINES]
    ):
        reading.kind, reading.reason, reading.lines = "auto", "automatic text", []
    return reading


def answered_ids(message: Message) -> list[str]:
    """The Message-IDs a reply answers: In-Reply-To first, then References from the newest."""
    ids = re.findall(r"<[^<>\s]{1,250}>", headers.header(message, "In-Reply-To"))
    ids += reversed(re.findall(r"<[^<>\s]{1,250}>", headers.header(message, "References")))
    return list(dict.fromkeys(ids))[:20]


def _leaf_parts(message: Message):
    """The body parts of a message, not descending into attached messages."""
    if message.is_multipart():
        for part in message.get_payload():
            if isinstance(part, Message):
                if part.get_content_type() in {"message/rfc822", "message/delivery-status"}:
                    continue
                yield from _leaf_parts(part)
        return
    yield message


def _part_text(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except Exception:  # an unknown charset, broken base64...
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    if not isinstance(content, str):
        return ""
    if (part.get_param("format") or "").lower() == "flowed":
        content = unflow(content, delsp=(part.get_param("delsp") or "").lower() == "yes")
    return content


def body_text(message: Message) -> str:
    """The text the person wrote: the first text/plain part, else the HTML one as text."""
    plain = html = None
    for part in _leaf_parts(message):
        disposition = (part.get_content_disposition() or "").lower()
        if disposition == "attachment":
            continue
        content_type = part.get_content_type()
        if content_type == "text/plain" and plain is None:
            plain = _part_text(part)
        elif content_type == "text/html" and html is None:
            html = _part_text(part)
    if plain is not None and plain.strip():
        return plain[: MAX_TEXT * 2]
    if html is not None:
        return html_to_text(html[: MAX_TEXT * 5])
    return ""


def unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676 format=flowed: join soft line breaks, undo space-stuffing."""
    out: list[str] = []
    buffer = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(" "):
            line = line[1:]
        if line.endswith(" ") and line != "-- " and not line.startswith(">"):
            buffer += line[:-1] if delsp else line
            continue
        out.append(buffer + line)
        buffer = ""
    if buffer:
        out.append(buffer)
    return "\n".join(out)


class _HtmlText(HTMLParser):
    """HTML to text that keeps lines, marks quotations with '>' and stops at quoted history."""

    BLOCKS: ClassVar[frozenset[str]] = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "ul",
            "ol",
            "pre",
            "hr",
            "section",
            "article",
            "header",
            "footer",
        ]
    )
    SKIP: ClassVar[frozenset[str]] = frozenset({"style", "script", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.quote = 0
        self.skip = 0
        self.stopped = False
        self.stack: list[str] = []

    def _newline(self) -> None:
        if self.lines[-1].strip():
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        values = {name: (value or "") for name, value in attrs}
        marks = f"{values.get('class', '')} {values.get('id', '')}".lower()
        # Gmail, Outlook and Apple Mail put the quoted history in these containers.
        if any(
            m in marks
            for m in (
                "gmail_quote",
                "divrplyfwdmsg",
                "appendonsend",
                "moz-cite-prefix",
                "yahoo_quoted",
                "ms-outlook",
            )
        ):
            self.stopped = True
            return
        if tag in self.SKIP:
            self.skip += 1
        elif tag == "blockquote":
            self._newline()
            self.quote += 1
        elif tag in self.BLOCKS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if self.stopped:
            return
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote":
            self.quote = max(0, self.quote - 1)
            self._newline()
        elif tag in self.BLOCKS:
            self._newline()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"br", "hr"} and not self.stopped:
            self.lines.append("")

    def handle_data(self, data: str) -> None:
        if self.stopped or self.skip:
            return
        text = " ".join(data.split())
        current = self.lines[-1]
        if not text:
            if data and current and not current.endswith(" "):
                self.lines[-1] = current + " "
            return
        if not current and self.quote:
            current = "> " * self.quote
        elif current and data[:1].isspace() and not current.endswith(" "):
            current += " "
        current += text
        if data[-1:].isspace():
            current += " "
        self.lines[-1] = current


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except Exception as exc:  # html.parser is lenient; a failure keeps what was read
        logger.info("HTML reply only partly read: %s", type(exc).__name__)
    return "\n".join(line.rstrip() for line in parser.lines)


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def strip_quotes(lines: list[str]) -> list[str]:
    """Drop quoted lines ('>') and the attribution paragraph ("Le ... a écrit :") before them.

    An answer typed just under a quoted finding or question ("> F2 (nouveau) — …", then
    "Non : raison") is about it: its first line is given the heading's code ("F2 Non : raison").
    """
    kept: list[str] = []
    heading: str | None = None
    in_answer = False
    for line in lines:
        if _is_quoted(line):
            _drop_attribution(kept)
            if match := _QUOTED_HEADING.match(line):
                heading = match.group("code").upper()
            elif _QUOTED_END.match(line):
                heading = None
            in_answer = False
            continue
        if not line.strip():
            in_answer = False
        elif heading is not None and not in_answer:
            if not _HEADING.match(line.strip()):
                line = f"{heading} {line.strip()}"
            heading, in_answer = None, True
        kept.append(line)
    return kept


def arrow_answers(lines: list[str]) -> list[str]:
    """Answers marked with an arrow inside an unprefixed original (Outlook): "==> OUI" under
    "F2 (nouveau) — …" is "F2 OUI"."""
    found: list[str] = []
    heading: str | None = None
    for line in lines:
        if match := _HEADING.match(line):
            heading = match.group("code").upper()
        elif (arrow := _ARROW.match(line)) is not None and heading is not None:
            found.append(f"{heading} {arrow.group('answer').strip()}")
            heading = None
    return found


def _drop_attribution(kept: list[str]) -> None:
    """Remove the paragraph that introduces a quotation, if `kept` ends with one."""
    end = len(kept)
    while end and not kept[end - 1].strip():
        end -= 1
    start = end
    while start and kept[start - 1].strip() and end - start < 3:
        start -= 1
    if start == end:
        return
    paragraph = " ".join(line.strip() for line in kept[start:end])
    if start > 0 and kept[start - 1].strip():
        return  # more than three lines: not an attribution
    if (
        paragraph.endswith(":")
        and _ATTRIBUTION_HINT.search(paragraph)
        and commands.parse_line(kept[start]) is None
    ):
        del kept[start:]


def reply_lines(text: str) -> list[str]:
    """The lines the person wrote, in order, ready for the command reader."""
    text = text[:MAX_TEXT].translate(_INVISIBLE)
    text = (
        text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ").replace("\u202f", " ")
    )
    text_lines = text.split("\n")
    lines = strip_quotes(text_lines)
    cut: list[str] = []
    for line in lines:
        if _MARKER.search(line) or _FORWARD.match(line):
            break
        cut.append(line)
    text = "\n".join(cut).strip()
    if not text:
        return []
    parsed = ReplyText(text=text, languages=list(LANGUAGES), keep_hyphen_lists=True)
    header = parsed.HEADER_REGEX.search(parsed.text)
    head = parsed.text[: header.start()] if header else parsed.text
    if not head.strip():
        return []
    latest = ReplyText(text=head, languages=list(LANGUAGES), keep_hyphen_lists=True).read()
    body = latest.replies[0].body if latest.replies else head
    lines = body.split("\n")
    for index, line in enumerate(lines):
        if _DEVICE_SIGNATURE.match(line):
            lines = lines[:index]
            break
    arrows = arrow_answers(text_lines)
    return [*lines, "", *arrows] if arrows else lines


def delivery_failures(message: Message) -> tuple[list[tuple[str, bool]], list[str]]:
    """From a DSN: (final recipient, permanent failure?) per recipient, and quoted Message-IDs."""
    failures: list[tuple[str, bool]] = []
    ids: list[str] = []
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            for block in _status_blocks(part):
                recipient = block.get("final-recipient") or block.get("original-recipient") or ""
                recipient = recipient.split(";", 1)[-1].strip().strip("<>").lower()
                action = block.get("action", "").lower()
                status = block.get("status", "")
                if recipient:
                    failures.append((recipient, action == "failed" and status.startswith("5")))
        elif content_type in {"message/rfc822", "text/rfc822-headers"}:
            ids.extend(_quoted_message_ids(part))
    if not failures:
        # A plain-text bounce (old relays): permanent unless it says it is only delayed.
        failures.append(("", not _DELAY_SUBJECT.search(headers.header(message, "Subject"))))
    return failures, ids


def _status_blocks(part: Message) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    payload = part.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                blocks.append({k.lower(): str(v) for k, v in sub.items()})
        return blocks
    text = payload if isinstance(payload, str) else ""
    for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        fields = {}
        for line in chunk.split("\n"):
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _quoted_message_ids(part: Message) -> list[str]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [
            headers.header(sub, "Message-ID")
            for sub in payload
            if isinstance(sub, Message) and headers.header(sub, "Message-ID")
        ]
    text = payload if isinstance(payload, str) else ""
    return re.findall(r"(?im)^message-id:\s*(<[^>\s]+>)", text)
