"""Reading and writing the headers that matter: who a message is from, whether a machine wrote it.

Inbound, Palabre must never answer an auto-reply (RFC 3834) nor read a bounce as a reply, so
both are recognised from their headers before any body is parsed. Outbound, the headers that
make a digest behave well in people's mailboxes (List-Id, List-Unsubscribe, Auto-Submitted) are
built here from the config.
"""

from __future__ import annotations

import hashlib
import re
from email.message import Message
from email.utils import parseaddr

from mailer.config import MailConfig

# Subjects of out-of-office and vacation answers, in French and English, at the start.
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:"
    r"auto(?:matic)?[ -]?(?:reply|response|answer)|autoreply|auto:|"
    r"out of (?:the )?office|ooo\b|away from (?:the|my) office|on vacation|on holiday|"
    r"r[ée]ponse automatique|r[ée]ponse auto\b|message automatique|"
    r"absent(?:e)?(?: du bureau)?\b|absence(?: du bureau)?\s*[:(-]|message d'absence|"
    r"je suis absent|en cong[ée]s?\b|hors du bureau|"
    r"\[?(?:absence|absent|absente|cong[ée]s(?: annuels)?|vacances|out of office|"
    r"automatic reply|r[ée]ponse automatique)\s*(?:$|[\]:(-])"
    r")",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailer|bounce[s]?)(?:[+@]|$)", re.I)
_NOREPLY = re.compile(r"^(?:no-?reply|do-?not-?reply|ne-?pas-?repondre)(?:[+@]|$)", re.I)
_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}


def header(message: Message, name: str) -> str:
    """A header as text ('' when absent or too broken to decode)."""
    try:
        value = message.get(name)
    except Exception:  # malformed encoded words in hostile mail
        return ""
    if value is None:
        return ""
    try:
        return str(value).strip()
    except Exception:
        return ""


def sender_address(message: Message) -> str:
    """The address in `From:`, lower-cased ('' when there is none)."""
    _name, address = parseaddr(header(message, "From"))
    return address.strip().lower()


def return_path(message: Message) -> str | None:
    """The envelope sender the receiving server recorded, or None when it did not record one."""
    if "Return-Path" not in message:
        return None
    value = header(message, "Return-Path")
    return value.strip().strip("<>").strip()


def is_bounce(message: Message) -> bool:
    """A delivery status notification: `multipart/report`, or a mailer daemon's message."""
    try:
        content_type = message.get_content_type()
        report_type = (message.get_param("report-type") or "").lower()
    except Exception:
        content_type, report_type = "", ""
    if content_type == "multipart/report" and report_type in {"delivery-status", ""}:
        return True
    return bool(_DAEMON.match(sender_address(message)))


def auto_reply_reason(message: Message) -> str | None:
    """Why this message was written by a machine (and must not be answered), or None."""
    auto_submitted = header(message, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted.split(";", 1)[0].strip() != "no":
        return "auto-submitted"
    path = return_path(message)
    if path is not None and path == "":
        return "empty return path"
    precedence = header(message, "Precedence").lower()
    if precedence in _BULK_PRECEDENCE:
        return f"precedence {precedence}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply"):
        if name in message:
            return name.lower()
    sender = sender_address(message)
    if _DAEMON.match(sender):
        return "mailer daemon"
    if _NOREPLY.match(sender):
        return "no-reply sender"
    if _AUTO_SUBJECT.match(header(message, "Subject")):
        return "out-of-office subject"
    return None


def authentication(message: Message, authserv_id: str | None, domain: str) -> str | None:
    """What our own MX recorded for the From domain (RFC 8601): "fail", "pass" or None.

    Only the topmost Authentication-Results carrying our `authserv_id` counts: our MX adds it
    above everything the sender wrote, and any header with another id (a relay's, or one forged
    by the sender) proves nothing. DMARC decides when present; otherwise a DKIM signature of the
    From domain passes, and a failed SPF or DKIM for that domain fails.
    """
    if not authserv_id or not domain:
        return None
    for value in message.get_all("Authentication-Results") or []:
        served, _, results = " ".join(str(value).split()).partition(";")
        if served.strip().split(" ")[0].lower() == authserv_id.lower():
            return _verdict(results, domain.lower())
    return None


def _verdict(results: str, domain: str) -> str | None:
    verdicts: dict[str, list[tuple[str, str]]] = {}
    found = re.findall(r"\b(spf|dkim|dmarc)\s*=\s*(\w+)([^;]*)", results, re.I)
    for method, result, props in found:
        verdicts.setdefault(method.lower(), []).append((result.lower(), props.lower()))
    dmarc = verdicts.get("dmarc", [("none", "")])[0][0]
    if dmarc in {"pass", "fail"}:
        return dmarc
    dkim = [result for result, props in verdicts.get("dkim", []) if domain in props]
    if "pass" in dkim:
        return "pass"
    spf = [result for result, props in verdicts.get("spf", []) if domain in props]
    if "fail" in dkim or "fail" in spf:
        return "fail"
    return "pass" if dkim or spf else None


def domain_of(address: str) -> str:
    """The domain of an address or of a `Name <address>` string, lower-cased."""
    _name, addr = parseaddr(address)
    return (addr or address).rpartition("@")[2].strip().lower() or "localhost"


def message_id(config: MailConfig, *, outbox_id: int, created: str, dedupe_key: str) -> str:
    """Our Message-ID for one outbox message, the same on every attempt.

    A retry after a dropped connection may deliver a message twice; the same Message-ID lets the
    receiving side recognise the copy.
    """
    digest = hashlib.sha256(f"{dedupe_key}|{created}".encode()).hexdigest()[:12]
    return f"<palabre.{outbox_id}.{digest}@{domain_of(config.mail_from)}>"


def list_id(config: MailConfig, slug: str | None, title: str | None) -> str:
    """`List-Id: "Title" <slug.domain>` (RFC 2919): lets people filter one consultation."""
    label = re.sub(r"[^a-z0-9-]+", "-", (slug or "palabre").lower()).strip("-") or "palabre"
    name = (title or "Palabre").replace('"', "'").replace("\n", " ")[:80]
    return f'"{name}" <{label}.{domain_of(config.reply_address)}>'


def list_unsubscribe(
    config: MailConfig, *, mailto_address: str | None, unsubscribe_token: str | None
) -> tuple[str | None, bool]:
    """The `List-Unsubscribe` value, and whether one-click (RFC 8058) is possible.

    One-click needs an https URL (RFC 8058, 3.1), so `List-Unsubscribe-Post` is only sent when
    `PALABRE_PUBLIC_URL` is set.
    """
    parts = []
    if mailto_address:
        parts.append(f"<mailto:{mailto_address}?subject=unsubscribe>")
    one_click = False
    if config.public_url and unsubscribe_token:
        base = config.public_url.rstrip("/")
        parts.append(f"<{base}/email/unsubscribe/{unsubscribe_token}>")
        one_click = base.startswith("https://")
    return (", ".join(parts) or None), one_click
