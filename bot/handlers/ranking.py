"""/rank: build my ranking of the shortlisted actions by tapping, then confirm it.

The shortlist comes in my own stable random order. I tap the most important action, then the
next, until k actions or Done; I see my ranking and confirm it, or start again. A confirmed
ranking can be redone until the rank phase closes. The ranking being built lives in the
database (a `ballot` dialogue), so a restart loses nothing.

Callback data: `rk:<nonce>:p:<code>` (pick), `rk:<nonce>:<done|undo|ok|redo>`, `rk:new`.
"""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import dialogue
from bot.context import PalabreContext
from bot.handlers.common import ONLY_NEW, Turn, participant
from bot.keyboards import GO_RANK, button, keyboard
from bot.text import N_
from bot.views import phase_view
from consultation import actions, phases
from consultation.common import rules
from models import Channel, PhaseKind

DONE = N_("Done")
UNDO = N_("Undo")
CONFIRM = N_("Confirm my ranking")
REDO = N_("Start again")
CHANGE = N_("Change my ranking")
EXCERPT = 280


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1].rstrip() + "…"


def _ballot_k(turn: Turn) -> int:
    return rules(turn.consultation).ballot_k


def building_markup(
    state: dialogue.Dialogue, texts: dict[str, str], turn: Turn
) -> InlineKeyboardMarkup | None:
    nonce, picked = state.nonce, state.data["picked"]
    rows = [
        [button(f"{code} · {texts[code]}", f"rk:{nonce}:p:{code}")]
        for code in state.data["order"]
        if code not in picked
    ]
    controls = []
    if picked:
        controls.append(button(f"↩️ {turn.label(UNDO)}", f"rk:{nonce}:undo"))
        controls.append(button(f"✅ {turn.label(DONE)}", f"rk:{nonce}:done"))
    rows.append(controls)
    return keyboard(rows)


def review_markup(state: dialogue.Dialogue, turn: Turn) -> InlineKeyboardMarkup | None:
    nonce = state.nonce
    return keyboard(
        [
            [button(f"✅ {turn.label(CONFIRM)}", f"rk:{nonce}:ok")],
            [button(f"🔄 {turn.label(REDO)}", f"rk:{nonce}:redo")],
        ]
    )


def _context(state: dialogue.Dialogue, texts: dict[str, str], k: int) -> dict[str, Any]:
    picked = state.data["picked"]
    return {
        "actions": [{"code": code, "text": _excerpt(texts[code])} for code in state.data["order"]],
        "picked": [{"code": code, "text": _excerpt(texts[code])} for code in picked],
        "k": k,
        "remaining": k - len(picked),
    }


async def _shortlist(turn: Turn, session) -> dict[str, str]:
    """code → text of the shortlist, in this person's order (dicts keep insertion order)."""
    shortlisted = await actions.shortlist_for(session=session, participant=await turn.me(session))
    return {action.code: action.text for action in shortlisted}


@participant
async def rank_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/rank: my current ranking with a Change button, or a new ranking to build."""
    async with turn.session() as session:
        phase = await phases.require_open(
            session=session, consultation_id=turn.participant.consultation_id, kind=PhaseKind.RANK
        )
        texts = await _shortlist(turn, session)
        current = await actions.ballot_of(session=session, participant=await turn.me(session))
        state = None
        if texts and not current:
            state = await _begin(turn, session, texts)
    if not texts:
        await turn.send("ballot_no_shortlist")
        return
    k = min(_ballot_k(turn), len(texts))
    if current:
        await turn.send(
            "ballot_current",
            markup=keyboard([[button(f"🔄 {turn.label(CHANGE)}", "rk:new")]]),
            picked=[{"code": code, "text": _excerpt(texts.get(code, ""))} for code in current],
            phase=phase_view(phase, turn.consultation),
        )
        return
    assert state is not None
    await turn.send(
        "ballot", markup=building_markup(state, texts, turn), **_context(state, texts, k)
    )


async def _begin(turn: Turn, session, texts: dict[str, str]) -> dialogue.Dialogue:
    return await dialogue.begin(
        session, await turn.me(session), dialogue.BALLOT, order=list(texts), picked=[]
    )


@participant
async def rank_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """A tap while building a ranking: pick, undo, done, confirm, start again."""
    data = turn.data
    async with turn.session() as session:
        phase = await phases.require_open(
            session=session, consultation_id=turn.participant.consultation_id, kind=PhaseKind.RANK
        )
        texts = await _shortlist(turn, session)
        me = await turn.me(session)
        if data == ["rk", "new"]:
            state = await _begin(turn, session, texts)
            step = "build"
        else:
            nonce, action = (data[1], data[2]) if len(data) >= 3 else ("", "")
            state = await dialogue.expect(session, me, dialogue.BALLOT, nonce)
            step = await _step(session, me, state, action, data[3:], texts, _ballot_k(turn))
            if step != "stale":
                state = await dialogue.current(session, me) if step != "recorded" else state
    if step == "stale" or state is None or not texts:
        await turn.stale()
        return
    k = min(_ballot_k(turn), len(texts))
    if step == "build":
        await turn.edit(
            "ballot", markup=building_markup(state, texts, turn), **_context(state, texts, k)
        )
    elif step == "review":
        await turn.edit(
            "ballot_review", markup=review_markup(state, turn), **_context(state, texts, k)
        )
    else:
        await turn.edit(
            "ballot_recorded",
            markup=keyboard([[button(f"🔄 {turn.label(CHANGE)}", "rk:new")]]),
            phase=phase_view(phase, turn.consultation),
            **_context(state, texts, k),
        )


async def _step(
    session,
    me,
    state: dialogue.Dialogue | None,
    action: str,
    rest: list[str],
    texts: dict[str, str],
    ballot_k: int,
) -> str:
    """Apply one tap to the ballot being built; returns the screen to show next."""
    if state is None or set(state.data.get("order", [])) != set(texts):
        # Expired, replaced by a newer ranking, or the shortlist changed meanwhile.
        return "stale"
    picked: list[str] = list(state.data["picked"])
    k = min(ballot_k, len(texts))
    if action == "p" and rest and rest[0] in texts and rest[0] not in picked and len(picked) < k:
        picked.append(rest[0])
    elif action == "undo" and picked:
        picked.pop()
    elif action == "redo":
        picked = []
    elif action == "done" and picked:
        return "review"
    elif action == "ok" and picked:
        await actions.cast_ballot(
            session=session, participant=me, codes=picked, channel=Channel.TELEGRAM
        )
        await dialogue.end(session, me, dialogue.BALLOT)
        return "recorded"
    elif action not in {"p", "undo", "redo", "done", "ok"}:
        return "stale"
    await dialogue.update(session, me, picked=picked)
    return "review" if len(picked) >= k else "build"


def handlers() -> list:
    return [
        CommandHandler("rank", rank_command, filters=ONLY_NEW),
        CallbackQueryHandler(rank_command, pattern=f"^{GO_RANK}$"),
        CallbackQueryHandler(rank_button, pattern=r"^rk:"),
    ]
