"""Every refusal Palabre can raise reaches the person as its own sentence, in their language.

The codes are read from the code itself (every `UserError("area.code")`, `NotFound(...)`,
`say_error(...)`, and the codes `clean_text` builds from its `area`), so a new refusal without a
sentence fails here. Each one is then raised from inside a handler, after `Turn.me()` loaded the
participant and the handler changed them, on the local Bot API server: the rollback must not turn
the refusal into the apology for a fault.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jinja2 import meta
from telegram import Update
from telegram.ext import CommandHandler

from bot.context import PalabreContext
from bot.handlers.common import Turn, participant
from consultation.errors import UserError
from templates.render import environment, render_error
from tests.factories import make_consultation, make_participant

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("consultation", "bot", "mailer", "palabre", "scheduler", "templates")
RAISED = re.compile(
    r"(?:UserError|NotFound|PhaseClosed|PermissionDenied|say_error|render_error)"
    r'\(\s*"([a-z_]+\.[a-z_]+)"'
)
CLEANED = re.compile(r'clean_text\([^)]*?area="([a-z_]+)"', re.S)
WRITTEN = re.compile(r'code == "([a-z_]+\.[a-z_]+)"')
ERRORS = ROOT / "templates" / "common" / "errors"
MOMENTS = {"min_end", "max_end", "when", "closes_at", "opens_at", "deadline", "until"}
AICHA = 5001


def raised_codes() -> set[str]:
    """Every refusal code the code can raise or say."""
    codes = {"permission.coordinator_only"}  # `PermissionDenied()` without a code
    for package in SOURCES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            codes |= set(RAISED.findall(text))
            for area in CLEANED.findall(text):
                codes |= {f"{area}.empty", f"{area}.too_long", f"{area}.control_characters"}
    return codes


def written_codes() -> set[str]:
    """Every code that has a sentence in `templates/common/errors/`."""
    codes: set[str] = set()
    for path in ERRORS.glob("*.txt"):
        codes |= set(WRITTEN.findall(path.read_text(encoding="utf-8")))
    return codes


def sample_params(code: str) -> dict[str, Any]:
    """A value for every variable the code's sentence file uses."""
    area = code.split(".", 1)[0]
    source = (ERRORS / f"{area}.txt").read_text(encoding="utf-8")
    names = meta.find_undeclared_variables(environment("en").parse(source)) - {"code"}
    params: dict[str, Any] = {}
    for name in names:
        if name in MOMENTS:
            params[name] = "2026-03-05T09:00:00+00:00"
        elif name == "timezone":
            params[name] = "Europe/Paris"
        else:
            params[name] = 3
    return params


ALL_CODES = sorted(raised_codes() | written_codes())


def test_every_code_raised_has_its_sentence_in_french_and_english():
    missing = sorted(raised_codes() - written_codes())
    assert not missing, f"codes raised without a sentence: {missing}"
    untranslated = []
    for code in ALL_CODES:
        french = render_error(code, sample_params(code), "fr")
        english = render_error(code, sample_params(code), "en")
        assert french.strip() and english.strip(), code
        if french == english:
            untranslated.append(code)
    assert not untranslated, f"no French sentence for: {untranslated}"


@participant
async def refuse_inside(update: Update, context: PalabreContext, turn: Turn) -> None:
    """`/refuse <code>`: load the sender, change them, hand them to the context, then refuse."""
    code = turn.args[0]
    async with turn.session() as session:
        me = await turn.me(session)
        me.organisation = "changed, then rolled back"
        session.add(me)
        await session.flush()
        context.participant = me  # the rollback expires this object
        raise UserError(code, **sample_params(code))


@pytest.mark.parametrize("locale", ["fr", "en"])
async def test_every_refusal_reaches_the_person_in_their_language(harness, db, clock, locale):
    """Given Aïcha reads Palabre in `locale` (her phone says German), each refusal raised after
    her record was loaded and changed reaches her as its own sentence, in her language."""
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe")
        await make_participant(session, consultation, telegram_chat_id=AICHA, locale=locale)
    harness.application.handlers[0].insert(0, CommandHandler("refuse", refuse_inside))
    phone = harness.phone(AICHA, language="de")

    wrong = []
    for code in ALL_CODES:
        clock.advance(seconds=4)  # stay under the flood gate's 20 messages a minute
        await phone.send(f"/refuse {code}")
        expected = render_error(code, sample_params(code), locale)
        if phone.last().strip() != expected.strip():
            wrong.append((code, phone.last()))

    assert not wrong, wrong
