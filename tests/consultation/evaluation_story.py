"""Steps shared by the questionnaire, trace, metrics and privacy stories.

They go through the product's own functions (phases, observations, findings, actions), so a story
reads as the consultation would run: a phase closes two days in, the next one opens.
"""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import actions, findings, observations, phases
from consultation.clock import ManualClock
from models import Channel, Consultation, OutboxMessage, Phase, PhaseStatus
from tests.factories import ALL_PHASES, make_consultation, make_coordinator, make_participant

TG = Channel.TELEGRAM


async def move_on(
    session: AsyncSession, consultation: Consultation, kind: str | None, clock: ManualClock
) -> Phase | None:
    """Two days later, close the open phase and open the next phase of `kind` (None: just close)."""
    clock.advance(days=2)
    current = await phases.current_phase(session=session, consultation_id=consultation.id)
    if current is not None:
        await phases.close_phase(session=session, phase_id=current.id, actor_label="test")
    opened = None
    if kind is not None:
        target = next(
            phase
            for phase in await phases.phases_of(session=session, consultation_id=consultation.id)
            if phase.kind == kind and phase.status == PhaseStatus.SCHEDULED
        )
        opened = await phases.open_phase(session=session, phase_id=target.id, actor_label="test")
    clock.advance(minutes=5)
    return opened


async def messages(
    session: AsyncSession, template: str, participant_id: int | None = None
) -> list[OutboxMessage]:
    """The outbox rows of `template` (for one person), oldest first."""
    query = select(OutboxMessage).where(OutboxMessage.template == template)
    if participant_id is not None:
        query = query.where(OutboxMessage.participant_id == participant_id)
    return list((await session.exec(query.order_by(OutboxMessage.id))).all())


async def a_whole_process(
    session,
    clock,
    *,
    finish: bool = True,
    questionnaires: bool = False,
    phases: tuple[str, ...] = ALL_PHASES,
    stance: bool = False,
):
    """Aïcha and Bruno take part from the first observation to the ranking.

    Aïcha observes that small cooperatives get no support (O1), something out of scope (O2) and
    something no finding takes up (O4); Bruno says the same as O1 (O3, merged into it). F1 draws
    on O1; A2 and A3 answer it; Aïcha's proposal A1 is merged into A3; the ranking puts A3 first.
    With `stance`, Bruno confirms F1.
    """
    consultation = await make_consultation(session, questionnaires=questionnaires, phases=phases)
    coordinator = await make_coordinator(session, consultation)
    aicha = await make_participant(session, consultation, name="Aïcha Benali", telegram_chat_id=11)
    bruno = await make_participant(session, consultation, name="Bruno Martin", category="elected")
    chloe = await make_participant(session, consultation, name="Chloé", telegram_chat_id=13)

    async def observe(person, text):
        return await observations.submit_observation(
            session=session, participant=person, text=text, channel=TG
        )

    o1 = await observe(aicha, "Les petites coopératives n'ont aucun accompagnement spécifique.")
    o2 = await observe(aicha, "Il faudrait une subvention pour mon association.")
    o3 = await observe(bruno, "Aucun accompagnement pour les petites coopératives.")
    o4 = await observe(aicha, "Les jeunes bénévoles sont peu écoutés.")
    await observations.decide_scope(
        session=session,
        observation_id=o2.id,
        by=coordinator,
        in_scope=False,
        reason="Les demandes de subvention individuelles sont hors du champ.",
    )
    await observations.merge_observation(
        session=session, observation_id=o3.id, into_id=o1.id, by=coordinator
    )

    await move_on(session, consultation, "review", clock)
    await findings.draft_finding(
        session=session,
        consultation_id=consultation.id,
        by=coordinator,
        text="Les petites coopératives manquent d'accompagnement.",
        observation_ids=[o1.id],
    )
    await findings.draft_finding(
        session=session,
        consultation_id=consultation.id,
        by=coordinator,
        text="Un brouillon jamais publié.",
        observation_ids=[o4.id],
    )
    await findings.publish_findings(
        session=session, consultation_id=consultation.id, by=coordinator, codes=["F1"]
    )
    if stance:
        await findings.record_stance(
            session=session, participant=bruno, code="F1", choice="confirm", channel=TG
        )

    await move_on(session, consultation, "propose", clock)
    await actions.propose_action(
        session=session, participant=aicha, text="Un guichet unique.", channel=TG
    )
    await actions.add_action(
        session=session,
        consultation_id=consultation.id,
        by=coordinator,
        text="Des prêts d'honneur pour les coopératives.",
        finding_codes=["F1"],
    )
    await actions.add_action(
        session=session,
        consultation_id=consultation.id,
        by=coordinator,
        text="Un guichet unique d'accompagnement de l'ESS.",
        finding_codes=["F1"],
    )
    await actions.merge_action(
        session=session, consultation_id=consultation.id, code="A1", into_code="A3", by=coordinator
    )
    await actions.add_action(
        session=session, consultation_id=consultation.id, by=coordinator, text="Une fête de l'ESS."
    )
    await actions.shortlist(
        session=session, consultation_id=consultation.id, by=coordinator, codes=["A2", "A3", "A4"]
    )

    await move_on(session, consultation, "rank", clock)
    for person, ranking in ((aicha, ["A3", "A2"]), (bruno, ["A3"]), (chloe, ["A2", "A3"])):
        await actions.cast_ballot(session=session, participant=person, codes=ranking, channel=TG)
    if finish:
        await move_on(session, consultation, "evaluate", clock)
    return consultation, coordinator, aicha, bruno, chloe
