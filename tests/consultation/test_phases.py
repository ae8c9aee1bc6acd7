"""Phases: the timetable's rules, its overrides and what everyone is told."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from consultation import findings, observations, phases
from consultation.errors import PermissionDenied, PhaseClosed, UserError
from models import Action, AuditEvent, Cadence, Channel, OutboxMessage, Phase, PhaseStatus
from tests.factories import make_consultation, make_coordinator, make_participant


async def _not_started(session, **options):
    """A consultation whose first phase is due to open now and has not opened yet."""
    consultation = await make_consultation(session, current="observe", **options)
    for phase in await phases.phases_of(session=session, consultation_id=consultation.id):
        phase.status = PhaseStatus.SCHEDULED
        phase.opened_at = None
        session.add(phase)
    await session.flush()
    return consultation


async def _phase(session, consultation_id: int, kind: str) -> Phase:
    return await phases.find_phase(session=session, consultation_id=consultation_id, kind=kind)


async def _rows(db, template: str) -> list[OutboxMessage]:
    async with db.session() as session:
        return list(
            (
                await session.exec(
                    select(OutboxMessage)
                    .where(OutboxMessage.template == template)
                    .order_by(OutboxMessage.id)
                )
            ).all()
        )


async def _audit(db, action: str) -> list[AuditEvent]:
    async with db.session() as session:
        return list(
            (await session.exec(select(AuditEvent).where(AuditEvent.action == action))).all()
        )


async def test_only_the_open_phase_accepts_its_kind_of_contribution(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        aicha = await make_participant(session, c, telegram_chat_id=101)
    async with db.session() as session:
        await observations.submit_observation(
            session=session, participant=aicha, text="Les petites coops", channel=Channel.TELEGRAM
        )
    with pytest.raises(PhaseClosed) as caught:
        async with db.session() as session:
            await findings.record_stance(
                session=session, participant=aicha, code="F1", choice="confirm", channel="telegram"
            )
    assert caught.value.code == "phase.not_open"
    assert caught.value.params == {"kind": "review", "current": "observe"}


async def test_the_announced_deadline_holds_before_the_scheduler_closes_the_phase(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe", phase_days=14)
        aicha = await make_participant(session, c, telegram_chat_id=101)
    clock.advance(days=14)
    with pytest.raises(PhaseClosed) as caught:
        async with db.session() as session:
            await observations.submit_observation(
                session=session, participant=aicha, text="Trop tard ?", channel="telegram"
            )
    assert caught.value.code == "phase.deadline_passed"


async def test_opening_a_phase_announces_it_once_to_everyone_who_can_be_reached(db, clock):
    async with db.session() as session:
        c = await _not_started(session)
        on_telegram = await make_participant(session, c, telegram_chat_id=101)
        digest_off = await make_participant(session, c, cadence=Cadence.OFF)
        await make_participant(session, c, cadence=Cadence.WEEKLY)  # their digest says it
        stopped = await make_participant(session, c, telegram_chat_id=102)
        stopped.opted_out_at = clock.now()
        session.add(stopped)
        coordinator = await make_coordinator(session, c, telegram_chat_id=103)
        observe = await _phase(session, c.id, "observe")
    async with db.session() as session:
        opened = await phases.open_phase(session=session, phase_id=observe.id, by=coordinator)
        assert opened.status == PhaseStatus.OPEN
    async with db.session() as session:
        await phases.open_phase(session=session, phase_id=observe.id, by=coordinator)

    rows = await _rows(db, "phase_opened")
    assert {(r.participant_id, r.channel) for r in rows} == {
        (on_telegram.id, "telegram"),
        (digest_off.id, "email"),
        (coordinator.id, "telegram"),
    }
    assert rows[0].payload["kind"] == "observe"
    assert rows[0].payload["timezone"] == "Europe/Paris"
    assert rows[0].payload["question"] == c.question
    assert rows[0].payload["limits"] == {
        "observation_max_length": 1000,
        "daily_cap": 10,
        "ballot_k": 5,
    }
    assert len(await _audit(db, "phase.opened")) == 1


async def test_the_scheduler_and_a_coordinator_opening_a_phase_at_once_open_it_once(db, clock):
    async with db.session() as session:
        c = await _not_started(session)
        await make_participant(session, c, telegram_chat_id=101)
        observe = await _phase(session, c.id, "observe")

    async def open_as(label: str) -> None:
        async with db.session() as session:
            await phases.open_phase(session=session, phase_id=observe.id, actor_label=label)

    await asyncio.gather(open_as("scheduler"), open_as("cli"))
    assert len(await _audit(db, "phase.opened")) == 1
    assert len(await _rows(db, "phase_opened")) == 1


async def test_an_early_opening_keeps_the_phase_within_its_maximum_duration(db, clock):
    async with db.session() as session:
        c = await _not_started(session, phase_days=14, max_days=20)
        observe = await _phase(session, c.id, "observe")
        review = await _phase(session, c.id, "review")
        await phases.open_phase(session=session, phase_id=observe.id, actor_label="cli")
        await phases.close_phase(
            session=session, phase_id=observe.id, actor_label="cli", force=True, reason="test"
        )
    # Review was planned from day 14 to day 28; opening it now would make it last 28 days.
    async with db.session() as session:
        opened = await phases.open_phase(session=session, phase_id=review.id, actor_label="cli")
        assert opened.closes_at == clock.now() + timedelta(days=20)


async def test_a_phase_cannot_close_before_its_minimum_duration_unless_forced_with_a_reason(
    db, clock
):
    async with db.session() as session:
        c = await make_consultation(session, current="observe", min_days=7)
        await make_participant(session, c, telegram_chat_id=101)
        observe = await _phase(session, c.id, "observe")
    clock.advance(days=2)
    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await phases.close_phase(session=session, phase_id=observe.id, actor_label="cli")
    assert caught.value.code == "phase.too_early"
    assert caught.value.params["min_end"] == (clock.now() + timedelta(days=5)).isoformat()
    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await phases.close_phase(
                session=session, phase_id=observe.id, actor_label="cli", force=True, reason=" "
            )
    assert caught.value.code == "phase.reason_required"

    async with db.session() as session:
        closed = await phases.close_phase(
            session=session,
            phase_id=observe.id,
            actor_label="cli",
            force=True,
            reason="Le conseil avance la séance",
        )
        assert closed.status == PhaseStatus.CLOSED
    [event] = await _audit(db, "phase.closed")
    assert event.actor_label == "cli"
    assert event.reason == "Le conseil avance la séance"
    assert event.detail["forced"] is True
    assert event.detail["override"] == "min_duration"
    assert len(await _rows(db, "phase_closed")) == 1


async def test_closing_after_the_minimum_needs_no_override_and_closing_again_changes_nothing(
    db, clock
):
    async with db.session() as session:
        c = await make_consultation(session, current="observe", min_days=7)
        await make_participant(session, c, telegram_chat_id=101)
        await make_participant(session, c, telegram_chat_id=102)
        observe = await _phase(session, c.id, "observe")
    clock.advance(days=8)
    async with db.session() as session:
        first = await phases.close_phase(session=session, phase_id=observe.id, actor_label="cli")
    clock.advance(hours=1)
    async with db.session() as session:
        again = await phases.close_phase(session=session, phase_id=observe.id, actor_label="cli")
        assert again.closed_at == first.closed_at
    [event] = await _audit(db, "phase.closed")
    assert event.detail["forced"] is False
    rows = await _rows(db, "phase_closed")
    assert len(rows) == 2
    assert rows[0].payload["next_kind"] == "review"


async def test_extending_past_the_maximum_needs_force_and_every_extension_a_reason(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="review", phase_days=14, max_days=21)
        await make_participant(session, c, telegram_chat_id=101)
        review = await _phase(session, c.id, "review")
    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await phases.extend_phase(
                session=session,
                phase_id=review.id,
                until=clock.now() + timedelta(days=18),
                reason=None,
                actor_label="cli",
            )
    assert caught.value.code == "phase.reason_required"
    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await phases.extend_phase(
                session=session,
                phase_id=review.id,
                until=clock.now() + timedelta(days=25),
                reason="Vacances scolaires",
                actor_label="cli",
            )
    assert caught.value.code == "phase.beyond_max"

    async with db.session() as session:
        extended = await phases.extend_phase(
            session=session,
            phase_id=review.id,
            until=clock.now() + timedelta(days=18),
            reason="Vacances scolaires",
            actor_label="cli",
        )
        assert extended.closes_at == clock.now() + timedelta(days=18)
    async with db.session() as session:
        await phases.extend_phase(
            session=session,
            phase_id=review.id,
            until=clock.now() + timedelta(days=25),
            reason="Le comité de pilotage l'a demandé",
            force=True,
            actor_label="cli",
        )
    events = await _audit(db, "phase.extended")
    assert [(e.detail["forced"], e.detail["override"]) for e in events] == [
        (False, None),
        (True, "max_duration"),
    ]
    assert events[1].reason == "Le comité de pilotage l'a demandé"
    rows = await _rows(db, "phase_extended")
    assert len(rows) == 2
    assert rows[-1].payload["closes_at"] == (clock.now() + timedelta(days=25)).isoformat()


async def test_another_phase_must_close_before_the_next_opens(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        review = await _phase(session, c.id, "review")
    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await phases.open_phase(session=session, phase_id=review.id, actor_label="cli")
    assert caught.value.code == "phase.another_open"
    assert caught.value.params == {"kind": "review", "current": "observe"}


async def test_a_skipped_phase_cannot_be_opened_afterwards_nor_is_it_ever_due(db, clock):
    async with db.session() as session:
        c = await _not_started(session, min_days=0)
        observe = await _phase(session, c.id, "observe")
        review = await _phase(session, c.id, "review")
        propose = await _phase(session, c.id, "propose")
        await phases.open_phase(session=session, phase_id=propose.id, actor_label="cli")
        await phases.close_phase(session=session, phase_id=propose.id, actor_label="cli")
    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await phases.open_phase(session=session, phase_id=observe.id, actor_label="cli")
    assert caught.value.code == "phase.out_of_order"
    clock.advance(days=41)
    async with db.session() as session:
        assert await phases.due_transitions(session=session, consultation_id=c.id) == []
    clock.advance(days=1)  # rank was planned 42 days from now
    async with db.session() as session:
        due = await phases.due_transitions(session=session, consultation_id=c.id)
    assert [(verb, phase.kind) for verb, phase in due] == [("open", "rank")]
    assert review.id not in {phase.id for _, phase in due}


async def test_the_scheduler_is_told_which_phase_closes_and_which_opens_when(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe", phase_days=14)
    async with db.session() as session:
        assert await phases.due_transitions(session=session) == []
    clock.advance(days=14)
    async with db.session() as session:
        due = await phases.due_transitions(session=session)
        # One tick closes the phase whose deadline came and opens the next, in that order.
        assert [(verb, phase.kind) for verb, phase in due] == [
            ("close", "observe"),
            ("open", "review"),
        ]
        await phases.close_phase(session=session, phase_id=due[0][1].id, actor_label="scheduler")
        await phases.open_phase(session=session, phase_id=due[1][1].id, actor_label="scheduler")
        assert (await phases.current_phase(session=session, consultation_id=c.id)).kind == "review"
    async with db.session() as session:
        assert await phases.due_transitions(session=session) == []
    [event] = await _audit(db, "phase.opened")
    assert event.actor_label == "scheduler"


async def test_only_a_coordinator_of_this_consultation_may_change_the_timetable(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe", min_days=0)
        other = await make_consultation(session, current="observe")
        aicha = await make_participant(session, c, telegram_chat_id=101)
        stranger = await make_coordinator(session, other)
        celine = await make_coordinator(session, c)
        observe = await _phase(session, c.id, "observe")
    for intruder in (aicha, stranger):
        with pytest.raises(PermissionDenied):
            async with db.session() as session:
                await phases.close_phase(session=session, phase_id=observe.id, by=intruder)
    async with db.session() as session:
        await phases.close_phase(session=session, phase_id=observe.id, by=celine)
    [event] = await _audit(db, "phase.closed")
    assert event.actor_id == celine.id


async def test_every_message_the_core_writes_renders_on_both_channels_in_both_languages(db, clock):
    from consultation import findings as findings_module
    from mailer.compose import compose
    from models import Consultation, Participant
    from palabre.settings import Settings
    from templates.render import message_context, render

    async with db.session() as session:
        c = await _not_started(session, min_days=0)
        aicha = await make_participant(session, c, telegram_chat_id=101)
        await make_participant(session, c, cadence=Cadence.OFF)
        first = await _phase(session, c.id, "observe")
    async with db.session() as session:
        await phases.open_phase(session=session, phase_id=first.id, actor_label="cli")
        noted = await observations.submit_observation(
            session=session, participant=aicha, text="Hors sujet <b>gras</b>", channel="telegram"
        )
        await observations.decide_scope(
            session=session, observation_id=noted.id, by=None, in_scope=False, reason="Hors champ"
        )
        await phases.extend_phase(
            session=session,
            phase_id=first.id,
            until=clock.now() + timedelta(days=20),
            reason="Vacances",
            actor_label="cli",
        )
        await phases.close_phase(session=session, phase_id=first.id, actor_label="cli")
    for kind in ("review", "propose", "rank", "evaluate"):
        async with db.session() as session:
            phase = await _phase(session, c.id, kind)
            await phases.open_phase(session=session, phase_id=phase.id, actor_label="cli")
            if kind == "review":
                finding = await findings_module.draft_finding(
                    session=session, consultation_id=c.id, by=None, text="Le foncier manque."
                )
                await findings_module.publish_findings(
                    session=session, consultation_id=c.id, by=None
                )
                await findings_module.record_stance(
                    session=session,
                    participant=aicha,
                    code="F1",
                    choice="abstain",
                    channel="telegram",
                )
                await findings_module.edit_finding(
                    session=session, finding_id=finding.id, by=None, text="Le foncier & le bâti."
                )
            await phases.close_phase(session=session, phase_id=phase.id, actor_label="cli")

    async with db.session() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
        consultation = await session.get(Consultation, c.id)
        people = {p.id: p for p in (await session.exec(select(Participant))).all()}
    templates = {row.template for row in rows}
    assert templates == {
        "phase_opened",
        "phase_closed",
        "phase_extended",
        "observation_out_of_scope",
        "findings_published",
        "finding_revised",
    }
    config = Settings().mail_config()
    for row in rows:
        person = people[row.participant_id]
        for locale in ("fr", "en"):
            person.locale = locale
            context = message_context(
                payload=row.payload, consultation=consultation, recipient=person
            )
            assert render(f"telegram/{row.template}.html", context, locale).strip()
            if person.email:
                mail = compose(
                    config=config, message=row, participant=person, consultation=consultation
                )
                assert mail.message["Subject"]
                assert "{{" not in mail.message.get_body(("plain",)).get_content()


async def test_the_rank_announcement_asks_for_no_more_actions_than_were_shortlisted(db, clock):
    """ballot_k is 5, but only four actions made the shortlist: "choose your 4"."""
    async with db.session() as session:
        c = await make_consultation(session, current="propose")
        await make_participant(session, c, telegram_chat_id=101)
        for number, status in enumerate(["shortlisted"] * 4 + ["proposed"], start=1):
            session.add(
                Action(
                    consultation_id=c.id,
                    code=f"A{number}",
                    text=f"Action {number}",
                    status=status,
                    created_at=clock.now(),
                )
            )
        propose, rank = await _phase(session, c.id, "propose"), await _phase(session, c.id, "rank")
        for change in (phases.close_phase, phases.open_phase):
            target = propose if change is phases.close_phase else rank
            await change(
                session=session, phase_id=target.id, actor_label="cli", force=True, reason="Test"
            )

    (announcement,) = [r for r in await _rows(db, "phase_opened") if r.payload["kind"] == "rank"]
    assert announcement.payload["limits"]["ballot_k"] == 4
