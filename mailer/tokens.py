"""Signed, personal reply addresses: `reply+<key>.<sig>@domain`, and `reply+verp-<key>.<sig>@...`.

The key is the participant's random `reply_key` (never the database id); the signature is an
HMAC-SHA256 of it with `PALABRE_SECRET_KEY`, so an address cannot be guessed or forged from
another one, and the `From:` header is never what identifies a person. The signature is written
in lower-case base32 because some relays lower-case local parts. A token is trusted only when its
signature matches (compared in constant time) AND its key names a participant in the database.

Reply tokens and bounce (VERP) tokens are signed for different purposes, so the envelope sender
of a digest, which the recipient's server may show, cannot be used as a reply address.

The confirmation code of an erasure asked by email (`FORGET`, then `FORGET <code>`) is signed the
same way, from the person's reply key and the hour it was issued: nothing is stored, a code
stops working after `FORGET_CODE_HOURS`, and, since `forget` replaces the reply key, it can
never be used twice.

Separators: the issue asks for `+` and `.` to be accepted between the base local part and the
token, because some mail hosts only deliver `reply.anything@` to `reply@`; the same two are
accepted between key and signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from email.utils import getaddresses

from consultation import clock
from mailer.config import MailConfig

SIGNATURE_LENGTH = 16  # base32 characters: 80 bits
FORGET_CODE_LENGTH = 6  # 31**6, about 30 bits: guessing it by email is hopeless
FORGET_CODE_HOURS = 24
# Base32 without the characters people confuse when they copy a code by hand (I, L, O, 0, 1).
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
REPLY = "reply"
VERP = "verp"
# Headers that may carry the address a message was sent to, most specific first.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc")

_TOKEN = re.compile(
    r"^(?P<base>.+?)[+.](?P<verp>verp-)?(?P<key>[0-9a-f]{8,40})[.+](?P<sig>[a-z2-7]{16})$"
)


@dataclass(frozen=True)
class Token:
    """A verified token: its signature matched. The key may still name no one (check the DB)."""

    key: str
    purpose: str  # REPLY or VERP
    address: str


def split_address(address: str) -> tuple[str, str]:
    """`local@domain` → (local, domain); the domain lower-cased."""
    local, _, domain = address.strip().rpartition("@")
    if not local:
        return address.strip(), ""
    return local, domain.lower()


def _signature(secret: str, purpose: str, key: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), f"{purpose}:{key}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:SIGNATURE_LENGTH]


def _secret(config: MailConfig) -> str:
    return config.secret_key.get_secret_value()


def reply_address(config: MailConfig, reply_key: str) -> str:
    """The address a person's replies go to: `reply+<key>.<sig>@domain`."""
    local, domain = split_address(config.reply_address)
    signature = _signature(_secret(config), REPLY, reply_key)
    return f"{local}+{reply_key}.{signature}@{domain}"


def verp_address(config: MailConfig, reply_key: str) -> str:
    """The envelope sender of a person's emails, so that a bounce names them."""
    local, domain = split_address(config.reply_address)
    signature = _signature(_secret(config), VERP, reply_key)
    return f"{local}+verp-{reply_key}.{signature}@{domain}"


def unsubscribe_token(config: MailConfig, reply_key: str) -> str:
    """The token of the one-click unsubscribe link (`<public_url>/email/unsubscribe/<token>`)."""
    return f"{reply_key}.{_signature(_secret(config), 'unsubscribe', reply_key)}"


def verify_unsubscribe_token(config: MailConfig, token: str) -> str | None:
    """The reply key of a valid unsubscribe token, or None."""
    key, _, signature = (token or "").strip().lower().partition(".")
    if not re.fullmatch(r"[0-9a-f]{8,40}", key) or len(signature) != SIGNATURE_LENGTH:
        return None
    expected = _signature(_secret(config), "unsubscribe", key)
    return key if hmac.compare_digest(expected, signature) else None


def parse(config: MailConfig, address: str) -> Token | None:
    """The verified token in `address`, or None (not ours, malformed, or a bad signature)."""
    if not address or len(address) > 320:
        return None
    local, _domain = split_address(address)
    match = _TOKEN.match(local.lower())
    if match is None:
        return None
    base, _ = split_address(config.reply_address)
    if match.group("base") != base.lower():
        return None
    purpose = VERP if match.group("verp") else REPLY
    key = match.group("key")
    expected = _signature(_secret(config), purpose, key)
    if not hmac.compare_digest(expected, match.group("sig")):
        return None
    return Token(key=key, purpose=purpose, address=address.strip())


def _hour(at: datetime) -> int:
    return int(clock.as_utc(at).timestamp()) // 3600


def _code(secret: str, reply_key: str, hour: int) -> str:
    digest = hmac.new(
        secret.encode("utf-8"), f"forget:{reply_key}:{hour}".encode(), hashlib.sha256
    ).digest()
    number = int.from_bytes(digest[:8], "big")
    characters = []
    for _ in range(FORGET_CODE_LENGTH):
        number, index = divmod(number, len(_CODE_ALPHABET))
        characters.append(_CODE_ALPHABET[index])
    return "".join(characters)


def forget_code(config: MailConfig, reply_key: str, at: datetime | None = None) -> str:
    """The code that confirms an erasure asked by email (see `check_forget_code`)."""
    return _code(_secret(config), reply_key, _hour(at or clock.now()))


def normalize_forget_code(code: str) -> str:
    """An erasure code as typed ("abc-234", "ABC 234") in the form we issue it."""
    return re.sub(r"[\s\-.]", "", code or "").upper()


def check_forget_code(
    config: MailConfig, reply_key: str, code: str, at: datetime | None = None
) -> bool:
    """Whether `code` was issued for this reply key in the last `FORGET_CODE_HOURS` hours.

    Codes are issued per hour; accepting the current hour and the `FORGET_CODE_HOURS` before it
    keeps every code valid for at least that long.
    """
    wanted = normalize_forget_code(code)
    if len(wanted) != FORGET_CODE_LENGTH:
        return False
    now = _hour(at or clock.now())
    secret = _secret(config)
    # Every hour of the window is compared, without stopping at a match (constant work).
    matches = [
        hmac.compare_digest(_code(secret, reply_key, hour), wanted)
        for hour in range(now - FORGET_CODE_HOURS, now + 1)
    ]
    return any(matches)


def candidate_addresses(message: Message) -> list[str]:
    """Every address in the recipient headers, most specific header first, without repeats."""
    seen: list[str] = []
    try:
        # The values as written: Outlook separates recipients with ";", which the parsed header
        # stops at; read it as the "," it means.
        raw = [(name.lower(), str(value).replace(";", ",")) for name, value in message.raw_items()]
    except Exception:  # a header too broken to decode names no one
        raw = []
    for header in RECIPIENT_HEADERS:
        values = [value for name, value in raw if name == header.lower()]
        for _name, address in getaddresses(values):
            address = address.strip().strip("<>")
            if address and address.lower() not in (a.lower() for a in seen):
                seen.append(address)
    return seen


def find_token(config: MailConfig, message: Message, purpose: str = REPLY) -> Token | None:
    """The first verified token of `purpose` among the message's recipients."""
    for address in candidate_addresses(message):
        token = parse(config, address)
        if token is not None and token.purpose == purpose:
            return token
    return None


def find_tokens(config: MailConfig, message: Message, purpose: str = REPLY) -> list[Token]:
    """Every verified token of `purpose` among the recipients (a message sent to two people's
    reply addresses at once carries two), in the order of `find_token`."""
    found = [parse(config, address) for address in candidate_addresses(message)]
    return [token for token in found if token is not None and token.purpose == purpose]


def looks_like_ours(config: MailConfig, address: str) -> bool:
    """Whether `address` has the shape of one of our token addresses (signed or not)."""
    local, _ = split_address(address)
    match = _TOKEN.match(local.lower())
    base, _ = split_address(config.reply_address)
    return match is not None and match.group("base") == base.lower()
