"""The reply parser fuzzed with hypothesis: no input makes it raise, and nothing is ever applied
without a valid token."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from mailer import commands, reading, replies, tokens
from mailer.reading import html_to_text, parse_bytes, read, reply_lines, unflow
from models import Ballot, InboundRecord, Observation, OutboxMessage, Participant, Stance
from tests.mailer.conftest import SECRET, mail_config, review_story

CONFIG = mail_config(Path("/tmp/palabre-fuzz"), secret_key=SECRET)
KEY = "00aa11bb22cc33dd44ee"
COMMAND_LINES = [
    "F1 oui",
    "F2 non: pas d'accord",
    "F3 ?",
    "CLASSEMENT A1 A2",
    "OBS: les coops",
    "Q1 4",
    "STOP",
    "QUOTIDIEN",
    "J'ACCEPTE",
    "> F1 oui",
    "##- Répondez au-dessus de cette ligne -##",
    "Le lun. 2 mars 2026 à 10:00, X <x@y.z> a écrit :",
    "-- ",
    "Cordialement,",
    "---------- Forwarded message ---------",
    "De : X",
    "Envoyé : lundi",
    "<div>F1 oui</div>",
]
text_lines = st.one_of(st.sampled_from(COMMAND_LINES), st.text(max_size=80))
bodies = st.lists(text_lines, max_size=30).map("\n".join)
header_values = st.one_of(
    st.text(max_size=120),
    st.sampled_from(
        ["=?utf-8?q?=C3=A9?=", "=?bogus?b?////?=", "<>", "auto-replied", "bulk", "no", ""]
    ),
)


def _forged_addresses():
    good = tokens.reply_address(CONFIG, KEY)
    local, domain = good.split("@")
    return st.one_of(
        st.emails().map(str),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=16, max_size=16).map(
            lambda sig: f"reply+{KEY}.{sig}@{domain}"
        ),
        st.just(f"reply+{KEY}@{domain}"),
        st.just(local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain),
        st.just(tokens.verp_address(CONFIG, KEY)),
        st.text(max_size=60),
    )


def _header(name: str, value: str) -> bytes:
    flat = " ".join(value.replace("\r", " ").replace("\n", " ").split())
    return f"{name}: {flat}\r\n".encode("utf-8", "surrogatepass")


@st.composite
def messages(draw, recipients=None):
    """Raw bytes: hypothesis's headers above a well-formed MIME body (plain, HTML or both)."""
    head = [_header("To", draw(recipients if recipients is not None else _forged_addresses()))]
    if draw(st.booleans()):
        head.append(_header("Delivered-To", draw(_forged_addresses())))
    sender = st.sampled_from(["aicha@asso.example", "Aïcha <aicha@asso.example>", "x@y.z", ""])
    head.append(_header("From", draw(sender)))
    head.append(_header("Subject", draw(st.text(max_size=60))))
    for name in draw(
        st.lists(
            st.sampled_from(
                ["Auto-Submitted", "Precedence", "Return-Path", "X-Autoreply", "Message-ID"]
            ),
            max_size=3,
            unique=True,
        )
    ):
        head.append(_header(name, draw(header_values)))
    body = draw(bodies)
    part = EmailMessage()
    kind = draw(st.sampled_from(["plain", "html", "both"]))
    if kind == "html":
        part.set_content(f"<html><body><p>{body}</p></body></html>", subtype="html")
    else:
        part.set_content(body)
        if kind == "both":
            part.add_alternative(f"<div>{body}</div>", subtype="html")
            part.set_boundary("fuzz-boundary")
    return b"".join(head) + part.as_bytes()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_no_bytes_make_the_reader_raise(raw: bytes) -> None:
    reading = read(CONFIG, raw)
    assert reading.kind in {"reply", "auto", "bounce"}
    commands.find_commands(reading.lines, reading.subject)


@settings(max_examples=300, deadline=None)
@given(messages())
def test_no_message_makes_the_reader_raise_and_no_forged_address_verifies(raw: bytes) -> None:
    reading = read(CONFIG, raw)
    if reading.token is not None:
        # Only the address Palabre wrote verifies.
        assert reading.token.key == KEY
        assert reading.token.address.lower() in {
            tokens.reply_address(CONFIG, KEY).lower(),
            tokens.reply_address(CONFIG, KEY).lower().replace("reply+", "reply.", 1),
        }
    commands.find_commands(reading.lines, reading.subject)


@settings(max_examples=300, deadline=None)
@given(bodies, st.text(max_size=200))
def test_no_text_makes_the_line_readers_raise(body: str, html: str) -> None:
    commands.find_commands(reply_lines(body), body[:60])
    reply_lines(html_to_text(html + body))
    unflow(body, delsp=True)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_nothing_is_applied_without_a_valid_token(db, clock, tmp_path, data) -> None:
    async with db.session() as session:
        existing = (await session.exec(select(Participant))).all()
        if not existing:
            story = await review_story(session)
            aicha = story.aicha
        else:
            aicha = next(p for p in existing if p.email == "aicha@asso.example")
        before = len((await session.exec(select(OutboxMessage))).all())
    config = mail_config(tmp_path, secret_key=SECRET)
    good = tokens.reply_address(config, aicha.reply_key)
    _local, domain = good.split("@")
    forged = st.one_of(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=16, max_size=16).map(
            lambda sig: f"reply+{aicha.reply_key}.{sig}@{domain}"
        ),
        st.emails().map(str),
        st.just(f"reply+{aicha.reply_key}@{domain}"),
        st.just(tokens.verp_address(config, aicha.reply_key)),
    )
    raw = data.draw(messages(recipients=forged))
    assert tokens.find_token(config, parse_bytes(raw)) is None or good in str(raw)
    outcome = await replies.handle(config=config, database=db, raw=raw)
    assert outcome.status in {"rejected", "dropped", "bounce", "duplicate", "foreign_sender"}
    async with db.session() as session:
        for model in (Stance, Ballot, Observation):
            assert (await session.exec(select(model))).all() == []
        person = await session.get(Participant, aicha.id)
        assert person.opted_out_at is None and person.digest_cadence == "daily"
        after = len((await session.exec(select(OutboxMessage))).all())
        assert after == before
        records = (await session.exec(select(InboundRecord))).all()
        assert all(r.status != "processed" for r in records)


def test_a_message_id_with_a_nul_byte_is_known_by_its_digest():
    # Found by the fuzzer on PostgreSQL, which cannot store a NUL in a text column.
    raw = b"Message-ID: \x00\r\nFrom: a@example.org\r\nSubject: x\r\n\r\nF1 oui\r\n"
    message = reading.parse_bytes(raw)
    assert reading.external_id(message, raw).startswith("sha256:")
