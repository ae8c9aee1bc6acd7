"""Every message the bot can send renders in French and in English, as HTML Telegram accepts,
with the text people wrote escaped; every notification the core writes has its template."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.keyboards import outbox_keyboard
from bot.text import MAX_LENGTH, render_html, split_message, visible_length
from templates.render import TEMPLATE_DIR, message_context
from tests.bot.samples import BOT, EVIL, OUTBOX
from tests.servers.botapi import _parse_telegram_html

ROOT = Path(__file__).resolve().parents[2]


class _Consultation:
    slug, title, question = "ess", "Plan ESS", "Comment ?"
    scope_in, scope_out, timezone = ["a"], ["b"], "Europe/Paris"


def templates_written() -> set[str]:
    return {path.stem for path in (TEMPLATE_DIR / "telegram").glob("*.html")} - {"_macros"}


CALL = re.compile(r"\b(notify|enqueue)\((.*?)\n\s*\)", re.S)


def enqueued_by_the_code() -> set[str]:
    """Every outbox template the core, the scheduler, the mailer and the bot may send on
    Telegram: all but those enqueued explicitly on the email channel (a digest, a receipt)."""
    names = set()
    for folder in ("consultation", "scheduler", "mailer", "bot"):
        for path in (ROOT / folder).rglob("*.py"):
            source = path.read_text()
            constant = re.search(r'^TEMPLATE = "(\w+)"', source, re.M)
            for function, arguments in CALL.findall(source):
                found = re.search(r'template=(?:"(\w+)"|(TEMPLATE)\b)', arguments)
                if found is None:
                    continue
                name = found.group(1) or (constant.group(1) if constant else None)
                if name and not (function == "enqueue" and "channel=Channel.EMAIL" in arguments):
                    names.add(name)
    return names


def test_every_template_has_a_sample_and_every_sample_a_template():
    assert templates_written() == set(BOT) | set(OUTBOX)


def test_every_notification_the_code_writes_has_a_telegram_template():
    missing = enqueued_by_the_code() - templates_written()
    assert not missing, f"no templates/telegram/<name>.html for {sorted(missing)}"


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("name", sorted(BOT))
def test_bot_message_renders(name, locale):
    text = render_html(name, locale, **BOT[name])
    check(text)


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("name", sorted(OUTBOX))
def test_notification_renders(name, locale):
    context = message_context(payload=OUTBOX[name], consultation=_Consultation(), recipient=None)
    text = render_html(name, locale, **context)
    check(text)
    outbox_keyboard(name, OUTBOX[name], locale)  # builds (callback data within 64 bytes)


def check(text: str) -> None:
    assert text.strip()
    visible = _parse_telegram_html(text)  # raises where Telegram would refuse the HTML
    assert "<script>" not in text and EVIL not in text  # user text never goes out raw
    assert "\n\n\n" not in visible
    assert visible_length(text) <= MAX_LENGTH


def test_split_keeps_tags_balanced_and_parts_short():
    quote = "<blockquote>" + "\n\n".join(["une phrase assez longue, " * 40] * 8) + "</blockquote>"
    text = "<b>Titre</b>\n\n" + quote + "\n\n<i>fin</i>"
    parts = split_message(text, limit=1000)
    assert len(parts) > 3
    for part in parts:
        _parse_telegram_html(part)
        assert visible_length(part) <= 1000
    assert parts[1].startswith("<blockquote>")


def test_split_cuts_an_endless_line_at_spaces_then_anywhere():
    assert [len(p) for p in split_message("x" * 2500, limit=1000)] == [1000, 1000, 500]
    words = split_message("mot " * 600, limit=1000)
    assert all(len(p) <= 1000 and not p.endswith(" m") for p in words)


def test_findings_after_review_closed_say_so_first_and_await_nothing():
    text = render_html("findings_intro", "fr", count=3, all=False, phase=None)
    assert text.strip().startswith("L’examen des constats est clos")
    assert "attendent votre réponse" not in text
    assert "3 constats auxquels vous n’avez pas répondu" in text


def test_phase_within_its_minimum_offers_only_the_extension():
    context = {**BOT["phase"], "can_close": False, "can_extend": True}
    text = render_html("phase", "fr", **context)
    assert "prolonger ci-dessous" in text and "clore" not in text.split("maximale")[-1]
