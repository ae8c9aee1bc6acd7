"""Coordinator commands: /publish, /broadcast, /phase, /stats, /moderate, /report.

Each is refused, politely and with an audit line, to anyone who is not a coordinator of the
person's consultation (the `coordinator` decorator; the core checks again). Whatever reaches
participants goes through the outbox, and the Telegram sender is woken to send it at once.

Callback data: `pb:<y|n>`, `bc:<y|n>:<nonce>`, `ph:<phase id>:<close|ext>[:<days>]`,
`md:<observation id>:<in|out>`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from telegram import InputFile, Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import dialogue
from bot.context import PalabreContext
from bot.handlers.common import ONLY_NEW, Turn, coordinator, replies_to
from bot.keyboards import button, keyboard
from bot.text import N_
from bot.views import phase_view
from consultation import broadcasts as broadcasting
from consultation import clock, findings, metrics, observations, phases
from consultation.brief import brief_context
from consultation.errors import UserError
from consultation.results import results
from models import Consultation, FindingStatus, Observation, Phase, PhaseStatus
from templates.pdf import pdf_from_html
from templates.render import render

PUBLISH = N_("Publish and notify everyone")
SEND = N_("Send")
CANCEL = N_("Cancel")
CLOSE_NOW = N_("Close now")
EXTEND_BY = N_("Extend by {days} days")
IN_SCOPE = N_("In scope")
OUT_OF_SCOPE = N_("Out of scope")
EXTENSIONS = (3, 7, 14)
MODERATE_BATCH = 10


def wake_sender(turn: Turn) -> None:
    """Send what was just written to the outbox now rather than at the next poll."""
    sender = turn.context.application.bot_data.get("sender")
    if sender is not None:
        sender.wake()


# --- /publish ------------------------------------------------------------------------------


@coordinator
async def publish_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/publish: the draft findings, and a button to publish them all."""
    async with turn.session() as session:
        drafts = await findings.findings_of(
            session=session, consultation_id=turn.consultation.id, status=FindingStatus.DRAFT
        )
        texts = [
            {
                "code": draft.code,
                "text": (await findings.current_text(session=session, finding=draft)).text,
            }
            for draft in drafts
        ]
    if not texts:
        await turn.send("publish_nothing")
        return
    await turn.send(
        "publish_confirm",
        markup=keyboard(
            [[button(f"📣 {turn.label(PUBLISH)}", "pb:y")], [button(turn.label(CANCEL), "pb:n")]]
        ),
        drafts=texts,
    )


@coordinator
async def publish_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """Publish the drafts (or not)."""
    if turn.data[1:] != ["y"]:
        await turn.edit("cancelled")
        return
    async with turn.session() as session:
        published = await findings.publish_findings(
            session=session, consultation_id=turn.consultation.id, by=await turn.me(session)
        )
    wake_sender(turn)
    await turn.edit("published", codes=[finding.code for finding in published])


# --- /broadcast ----------------------------------------------------------------------------


def _categories(consultation: Consultation) -> list[str]:
    return [category["key"] for category in consultation.categories]


@coordinator
async def broadcast_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/broadcast [@category] text: preview a message to everyone (or one category)."""
    text = turn.text.partition(" ")[2].strip()
    category = None
    if text.startswith("@"):
        first, _, text = text.partition(" ")
        category, text = first[1:].lower(), text.strip()
        if category not in _categories(turn.consultation):
            raise UserError(
                "telegram.unknown_category",
                category=category,
                known=", ".join(_categories(turn.consultation)),
            )
    if not text:
        raise UserError("telegram.broadcast_usage")
    if len(text) > broadcasting.MAX_LENGTH:
        raise UserError("telegram.broadcast_too_long", limit=broadcasting.MAX_LENGTH)
    async with turn.session() as session:
        me = await turn.me(session)
        people = await broadcasting.audience(
            session=session, consultation_id=me.consultation_id, category=category, sender=me
        )
        state = await dialogue.begin(session, me, dialogue.BROADCAST, text=text, category=category)
    await turn.send(
        "broadcast_confirm",
        markup=keyboard(
            [
                [
                    button(f"📣 {turn.label(SEND)}", f"bc:y:{state.nonce}"),
                    button(turn.label(CANCEL), f"bc:n:{state.nonce}"),
                ]
            ]
        ),
        text=text,
        category=category,
        count=len(people),
    )


@coordinator
async def broadcast_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """Send the previewed broadcast (or not)."""
    try:
        _, answer, nonce = turn.data
    except ValueError:
        await turn.stale()
        return
    async with turn.session() as session:
        me = await turn.me(session)
        state = await dialogue.expect(session, me, dialogue.BROADCAST, nonce)
        written = None
        if state is not None and answer == "y":
            written = await broadcasting.broadcast(
                session=session,
                consultation=turn.consultation,
                by=me,
                text=state.data["text"],
                category=state.data.get("category"),
                key=nonce,
            )
        if state is not None:
            await dialogue.end(session, me, dialogue.BROADCAST)
    if state is None:
        await turn.stale()
        return
    if written is None:
        await turn.edit("cancelled")
        return
    wake_sender(turn)
    await turn.edit("broadcast_sent", count=written, category=state.data.get("category"))


# --- /phase --------------------------------------------------------------------------------


def _bounds(phase: Phase) -> dict[str, Any]:
    start = phase.opened_at or phase.opens_at
    return {
        "min_end": (start + timedelta(seconds=phase.min_duration_s)).isoformat(),
        "max_end": (start + timedelta(seconds=phase.max_duration_s)).isoformat(),
    }


def _extensions(phase: Phase) -> list[int]:
    max_end = (phase.opened_at or phase.opens_at) + timedelta(seconds=phase.max_duration_s)
    return [days for days in EXTENSIONS if phase.closes_at + timedelta(days=days) <= max_end]


@coordinator
async def phase_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/phase: the open phase and its bounds; /phase close|extend <days> <reason>."""
    words = turn.text.split(maxsplit=3)[1:]
    async with turn.session() as session:
        phase = await phases.current_phase(session=session, consultation_id=turn.consultation.id)
    if phase is None:
        await turn.send("phase_none")
        return
    if words and words[0] in {"close", "clore", "fermer"}:
        await _change_phase(turn, phase.id, "close", 0, " ".join(words[1:]))
        return
    if words and words[0] in {"extend", "prolonger"}:
        if len(words) < 2 or not words[1].isdigit() or int(words[1]) <= 0:
            raise UserError("telegram.extend_usage")
        await _change_phase(turn, phase.id, "ext", int(words[1]), " ".join(words[2:]))
        return
    # Only what can work is offered: no "close now" before the minimum duration, no extension
    # past the maximum (the typed commands still explain the refusal).
    can_close = phases.may_close(phase, clock.now())
    extensions = _extensions(phase)
    rows = []
    if can_close:
        rows.append([button(f"⏹ {turn.label(CLOSE_NOW)}", f"ph:{phase.id}:close")])
    if extensions:
        rows.append(
            [
                button(turn.label(EXTEND_BY).format(days=days), f"ph:{phase.id}:ext:{days}")
                for days in extensions
            ]
        )
    await turn.send(
        "phase",
        markup=keyboard(rows) if rows else None,
        phase=phase_view(phase, turn.consultation),
        can_close=can_close,
        can_extend=bool(extensions),
        **_bounds(phase),
    )


@coordinator
async def phase_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """Close now / Extend by N days: the reason is asked next."""
    try:
        phase_id, action = int(turn.data[1]), turn.data[2]
        days = int(turn.data[3]) if action == "ext" else 0
    except (IndexError, ValueError):
        await turn.stale()
        return
    async with turn.session() as session:
        phase = await session.get(Phase, phase_id)
        if phase is not None and phase.status == PhaseStatus.OPEN:
            await dialogue.begin(
                session,
                await turn.me(session),
                dialogue.PHASE_REASON,
                phase_id=phase_id,
                action=action,
                days=days,
            )
    if phase is None or phase.status != PhaseStatus.OPEN:
        await turn.stale()
        return
    await turn.drop_buttons()
    await turn.ask("phase_reason_prompt", action=action, days=days, kind=phase.kind)


@replies_to(dialogue.PHASE_REASON)
async def receive_phase_reason(turn: Turn, state: dialogue.Dialogue) -> None:
    """The reason for closing or extending, typed after the button."""
    await _change_phase(
        turn,
        int(state.data["phase_id"]),
        state.data["action"],
        int(state.data.get("days") or 0),
        turn.text,
    )


async def _change_phase(turn: Turn, phase_id: int, action: str, days: int, reason: str) -> None:
    if not reason.strip():
        async with turn.session() as session:
            await dialogue.begin(
                session,
                await turn.me(session),
                dialogue.PHASE_REASON,
                phase_id=phase_id,
                action=action,
                days=days,
            )
        await turn.ask("phase_reason_prompt", action=action, days=days, kind="")
        return
    async with turn.session() as session:
        me = await turn.me(session)
        await dialogue.end(session, me, dialogue.PHASE_REASON)
        if action == "close":
            phase = await phases.close_phase(
                session=session, phase_id=phase_id, by=me, reason=reason
            )
        else:
            phase = await phases.extend_phase_by(
                session=session, phase_id=phase_id, days=days, reason=reason, by=me
            )
    wake_sender(turn)
    await turn.send(
        "phase_changed", action=action, phase=phase_view(phase, turn.consultation), kind=phase.kind
    )


# --- /stats --------------------------------------------------------------------------------


@coordinator
async def stats_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/stats: participation by category, and the answers to the findings."""
    async with turn.session() as session:
        report = await metrics.participation_report(session=session, consultation=turn.consultation)
        results = await findings.finding_results(
            session=session, consultation_id=turn.consultation.id
        )
    labels = {c["key"]: c["label"] for c in turn.consultation.categories}
    current = next(
        (phase for phase in report["by_phase"] if phase["status"] == PhaseStatus.OPEN), None
    )
    rows = []
    for key, row in report["by_category"].items():
        in_phase = current["by_category"].get(key, {}).get("contributors", 0) if current else None
        rows.append(
            {
                "label": labels.get(key, key),
                "invited": row["invited"],
                "consented": row["consented"],
                "contributed": row["contributed"],
                "rate": row["contributed"] / row["invited"] if row["invited"] else None,
                "in_phase": in_phase,
                "under_represented": report["representation"]
                .get(key, {})
                .get("under_represented", False),
            }
        )
    await turn.send(
        "stats",
        rows=rows,
        phase_kind=current["kind"] if current else None,
        findings=[
            {
                "code": result["code"],
                "answers": result["answers"],
                "rate": result["confirmation_rate"],
                "contest": result["contest"],
            }
            for result in results
        ],
    )


# --- /moderate -----------------------------------------------------------------------------


def _observation_view(observation: Observation) -> dict[str, Any]:
    return {"id": observation.id, "text": observation.text, "theme": observation.theme or ""}


@coordinator
async def moderate_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/moderate: the observations awaiting a scope decision, each with In / Out of scope."""
    async with turn.session() as session:
        pending = await observations.pending_scope(
            session=session, consultation_id=turn.consultation.id
        )
    await turn.send("moderate_intro", count=len(pending), shown=min(len(pending), MODERATE_BATCH))
    for observation in pending[:MODERATE_BATCH]:
        await turn.send(
            "moderate_item",
            markup=keyboard(
                [
                    [
                        button(f"✅ {turn.label(IN_SCOPE)}", f"md:{observation.id}:in"),
                        button(f"🚫 {turn.label(OUT_OF_SCOPE)}", f"md:{observation.id}:out"),
                    ]
                ]
            ),
            observation=_observation_view(observation),
        )


@coordinator
async def moderate_button(update: Update, context: PalabreContext, turn: Turn) -> None:
    """In scope (decided at once) / Out of scope (the reason for the author is asked next)."""
    try:
        observation_id, verdict = int(turn.data[1]), turn.data[2]
    except (IndexError, ValueError):
        await turn.stale()
        return
    async with turn.session() as session:
        me = await turn.me(session)
        observation = await observations.get_observation(
            session=session, observation_id=observation_id, consultation_id=me.consultation_id
        )
        if verdict == "in":
            observation = await observations.decide_scope(
                session=session, observation_id=observation_id, by=me, in_scope=True
            )
        else:
            await dialogue.begin(
                session,
                me,
                dialogue.SCOPE_REASON,
                observation_id=observation_id,
                message_id=turn.query.message.message_id if turn.query.message else None,
            )
    if verdict == "in":
        await turn.edit(
            "moderated", observation=_observation_view(observation), in_scope=True, reason=""
        )
        return
    await turn.ask("scope_reason_prompt", observation=_observation_view(observation))


@replies_to(dialogue.SCOPE_REASON)
async def receive_scope_reason(turn: Turn, state: dialogue.Dialogue) -> None:
    """The reason an observation is out of scope: recorded, and sent to its author."""
    async with turn.session() as session:
        me = await turn.me(session)
        observation = await observations.decide_scope(
            session=session,
            observation_id=int(state.data["observation_id"]),
            by=me,
            in_scope=False,
            reason=turn.text,
        )
        await dialogue.end(session, me, dialogue.SCOPE_REASON)
    wake_sender(turn)
    view = _observation_view(observation)
    if state.data.get("message_id"):
        await turn.edit_message(
            state.data["message_id"],
            "moderated",
            observation=view,
            in_scope=False,
            reason=observation.scope_reason,
        )
    await turn.send("scope_recorded", observation=view, reason=observation.scope_reason)


# --- /report -------------------------------------------------------------------------------


@coordinator
async def report_command(update: Update, context: PalabreContext, turn: Turn) -> None:
    """/report: the meeting brief as a PDF, in the coordinator's language."""
    consultation = turn.consultation
    assert consultation is not None
    await turn.send("report_preparing")
    async with turn.session() as session:
        document = await results(session=session, consultation_id=consultation.id)
    brief = brief_context(
        document, scope_in=list(consultation.scope_in), scope_out=list(consultation.scope_out)
    )
    # Drawing the charts and laying out the pages takes seconds of CPU: off the event loop, so
    # the bot keeps answering everyone else meanwhile.
    pdf = await asyncio.to_thread(
        lambda: pdf_from_html(render("report/brief.html", brief, turn.locale))
    )
    day = clock.now().date().isoformat()
    await context.bot.send_document(
        turn.chat_id,
        document=InputFile(pdf, filename=f"palabre-{consultation.slug}-brief-{day}.pdf"),
        caption=turn.render("report", title=consultation.title),
    )


def handlers() -> list:
    return [
        CommandHandler("publish", publish_command, filters=ONLY_NEW),
        CommandHandler("broadcast", broadcast_command, filters=ONLY_NEW),
        CommandHandler("phase", phase_command, filters=ONLY_NEW),
        CommandHandler("stats", stats_command, filters=ONLY_NEW),
        CommandHandler("moderate", moderate_command, filters=ONLY_NEW),
        CommandHandler("report", report_command, filters=ONLY_NEW),
        CallbackQueryHandler(publish_button, pattern=r"^pb:"),
        CallbackQueryHandler(broadcast_button, pattern=r"^bc:"),
        CallbackQueryHandler(phase_button, pattern=r"^ph:"),
        CallbackQueryHandler(moderate_button, pattern=r"^md:"),
    ]
