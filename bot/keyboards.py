"""Inline keyboards: button labels in the reader's language, callback data within 64 bytes.

Callback data is short and positional: `<feature>:<argument>:...`, e.g. `st:F2:c:1` (confirm
version 1 of finding F2). Every handler treats data it cannot parse, or that points at something
gone, as a stale button.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.text import N_, label

MAX_CALLBACK_BYTES = 64
MAX_LABEL = 60

# Shortcuts that run a command from a button (`go:<name>`), offered under notifications.
GO_FINDINGS = "go:findings"
GO_RANK = "go:rank"
GO_QUESTIONNAIRE = "go:questionnaire"
GO_STATUS = "go:status"
GO_OBSERVE = "go:observe"
GO_PROPOSE = "go:propose"
GO_FOLLOWUP = "go:followup"

ANSWER_NOW = N_("Answer now")
RANK_NOW = N_("Rank the actions")
START_QUESTIONNAIRE = N_("Answer the questionnaire")
WHAT_AWAITS = N_("What awaits me")
HOW_TO_OBSERVE = N_("How to contribute")
HOW_TO_PROPOSE = N_("How to propose")


def button(text: str, data: str) -> InlineKeyboardButton:
    encoded = data.encode("utf-8")
    if len(encoded) > MAX_CALLBACK_BYTES:
        raise ValueError(f"callback data over {MAX_CALLBACK_BYTES} bytes: {data!r}")
    if len(text) > MAX_LABEL:
        text = text[: MAX_LABEL - 1].rstrip() + "…"
    return InlineKeyboardButton(text=text, callback_data=data)


def keyboard(rows: Iterable[Sequence[InlineKeyboardButton]]) -> InlineKeyboardMarkup | None:
    built = [list(row) for row in rows if row]
    return InlineKeyboardMarkup(built) if built else None


def single(text: str, data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[button(text, data)]])


def outbox_keyboard(
    template: str, payload: dict[str, Any], locale: str
) -> InlineKeyboardMarkup | None:
    """The button that lets the reader act on a notification in one tap, if there is one."""
    if template in {"findings_published", "finding_revised"}:
        return single(label(ANSWER_NOW, locale), GO_FINDINGS)
    if template == "questionnaire_opened":
        return single(label(START_QUESTIONNAIRE, locale), GO_QUESTIONNAIRE)
    if template == "followup_questionnaire":
        return single(label(START_QUESTIONNAIRE, locale), GO_FOLLOWUP)
    if template == "phase_opened":
        kind = payload.get("kind")
        if kind == "review":
            return single(label(ANSWER_NOW, locale), GO_FINDINGS)
        if kind == "rank":
            return single(label(RANK_NOW, locale), GO_RANK)
        if kind == "observe":
            return single(label(HOW_TO_OBSERVE, locale), GO_OBSERVE)
        if kind == "propose":
            return single(label(HOW_TO_PROPOSE, locale), GO_PROPOSE)
        if kind == "evaluate":
            return single(label(START_QUESTIONNAIRE, locale), GO_QUESTIONNAIRE)
        return None
    if template == "reminder":
        if payload.get("findings"):
            return single(label(ANSWER_NOW, locale), GO_FINDINGS)
        if payload.get("ballot"):
            return single(label(RANK_NOW, locale), GO_RANK)
        if payload.get("questionnaires") and not (
            payload.get("observation") or payload.get("proposal")
        ):
            return single(label(START_QUESTIONNAIRE, locale), GO_QUESTIONNAIRE)
        return single(label(WHAT_AWAITS, locale), GO_STATUS)
    return None
