"""The whole process from a phone, in French and in English.

Aïcha opens her invitation, consents, sends an observation; the coordinators turn it into
findings and publish them; she confirms one, contests the other (first without a reason, which
records nothing, then with one), changes her mind; she ranks the shortlisted actions and redoes
her ranking; she answers the questionnaire; /mine tells her what became of her observation.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from consultation import actions, findings, participants, phases, questionnaires
from models import Answer, Observation, Phase, PhaseStatus, Questionnaire, ScopeStatus
from tests.factories import make_consultation, make_coordinator, make_participant

AICHA, CELINE = 5001, 9000

WORDS = {
    "fr": {
        "welcome": "Bienvenue, Aïcha Benali",
        "record": "Enregistrer ceci comme observation",
        "recorded": "Votre observation est enregistrée",
        "too_long": "la limite est de 1000",
        "published": "projets de constats attendent votre réponse",
        "why": "Pourquoi contestez-vous",
        "confirmed": "Votre réponse\u00a0: Confirmé",
        "contested": "Votre réponse\u00a0: Contesté — Le foncier pèse autant",
        "ranking": "Votre classement est enregistré",
        "likert": "De 1 (pas du tout d’accord) à 5",
        "done": "est terminé",
        "mine": "Ce que sont devenues vos contributions",
        "rank": "sur 3",
    },
    "en": {
        "welcome": "Welcome, Aïcha Benali",
        "record": "Record this as your observation",
        "recorded": "Your observation is recorded",
        "too_long": "the limit is 1000",
        "published": "draft findings await your answer",
        "why": "Why do you contest",
        "confirmed": "Your answer: Confirmed",
        "contested": "Your answer: Contested — Le foncier pèse autant",
        "ranking": "Your ranking is recorded",
        "likert": "From 1 (strongly disagree) to 5",
        "done": "is complete",
        "mine": "What became of your contributions",
        "rank": "of 3",
    },
}


async def next_phase(db, clock, consultation_id: int) -> Phase:
    """The scheduler's work: close the open phase at its deadline, open the next one."""
    async with db.session() as session:
        current = await phases.current_phase(session=session, consultation_id=consultation_id)
        clock.set(current.closes_at)
        await phases.close_phase(session=session, phase_id=current.id, actor_label="scheduler")
        following = (
            await session.exec(
                select(Phase)
                .where(Phase.consultation_id == consultation_id)
                .where(Phase.position == current.position + 1)
            )
        ).one()
        return await phases.open_phase(
            session=session, phase_id=following.id, actor_label="scheduler"
        )


def data_of(phone, prefix: str) -> list[str]:
    return [data for _, data in phone.buttons(phone.last_message_id()) if data.startswith(prefix)]


@pytest.mark.parametrize("locale", ["fr", "en"])
async def test_the_whole_process_from_a_phone(harness, db, clock, locale):
    words = WORDS[locale]
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe", questionnaires=True)
        aicha = await make_participant(session, consultation, name="Aïcha Benali", consented=False)
        await make_coordinator(session, consultation, telegram_chat_id=CELINE)
        token = await participants.create_invitation(session=session, participant=aicha)
    phone = harness.phone(AICHA, language=locale)
    coordinator = harness.phone(CELINE, name="Céline")

    # Invitation → consent → language → welcome.
    await phone.send(f"/start {token}")
    await phone.tap("cs:y")
    await phone.tap(f"lg:{locale}")
    assert words["welcome"] in phone.last()

    # An observation, confirmed before it is recorded; a too-long one is refused at once.
    await phone.send("x" * 1001)
    assert words["too_long"] in phone.last()
    await phone.send("Les petites coopératives n'ont aucun accompagnement <spécifique> & suivi.")
    assert words["record"] in phone.last()
    assert "<spécifique> & suivi" in phone.last()  # shown as written, escaped on the wire
    (record,) = data_of(phone, "ob:y:")
    await phone.tap(record)
    assert words["recorded"] in phone.last()
    async with db.session() as session:
        (observation,) = (await session.exec(select(Observation))).all()
    assert observation.author_id == aicha.id and observation.channel == "telegram"

    # The coordinator moderates it from her phone.
    await coordinator.send("/moderate")
    await coordinator.tap(f"md:{observation.id}:in")
    async with db.session() as session:
        assert (await session.get(Observation, observation.id)).scope_status == ScopeStatus.IN_SCOPE

    # Review: two findings drafted from the observations, published from the bot.
    await next_phase(db, clock, consultation.id)
    async with db.session() as session:
        for text in (
            "Les petites coopératives manquent d'accompagnement.",
            "L'accès au foncier freine les projets.",
        ):
            await findings.draft_finding(
                session=session,
                consultation_id=consultation.id,
                by=None,
                text=text,
                observation_ids=[observation.id],
            )
    await coordinator.send("/publish")
    await coordinator.tap("pb:y")
    await harness.drain()
    assert any(words["published"] in text for text in phone.shown())

    await phone.tap("go:findings")
    f1, f2 = phone.message_with_button("st:F1:c:1"), phone.message_with_button("st:F2:c:1")
    await phone.tap("st:F1:c:1")
    assert words["confirmed"] in phone.text_of(f1)
    assert [data for _, data in phone.buttons(f1)] == ["st:F1:ch:1"]

    # Contesting without a reason records nothing...
    await phone.tap("st:F2:x:1")
    assert words["why"] in phone.last()
    await phone.send("/cancel")
    async with db.session() as session:
        me = await participants.by_chat(session=session, chat_id=AICHA)
        views = {
            v.code: v
            for v in await findings.findings_for(
                session=session, participant=me, awaiting_only=False
            )
        }
    assert views["F2"].choice is None
    # ...with a reason, typed as a reply, it is recorded.
    await phone.tap("st:F2:x:1")
    question = phone.last_message_id()
    await phone.send("Le foncier pèse autant que l'accompagnement.", reply_to=question)
    assert words["contested"] in phone.text_of(f2)

    # A change of mind on F1.
    await phone.tap("st:F1:ch:1", message_id=f1)
    await phone.tap("st:F1:x:1", message_id=f1)
    await phone.send("Le foncier pèse autant, en fait.", reply_to=phone.last_message_id())
    async with db.session() as session:
        views = {
            v.code: v
            for v in await findings.findings_for(
                session=session, participant=me, awaiting_only=False
            )
        }
    assert (views["F1"].choice, views["F1"].reason) == (
        "contest",
        "Le foncier pèse autant, en fait.",
    )
    assert (views["F2"].choice, views["F2"].reason) == (
        "contest",
        "Le foncier pèse autant que l'accompagnement.",
    )

    # Propose, then rank.
    await next_phase(db, clock, consultation.id)
    await phone.send("/propose Un guichet unique pour les coopératives")
    (record,) = data_of(phone, "pp:y:")
    await phone.tap(record)
    async with db.session() as session:
        for text in ("Un fonds d'amorçage ESS", "Ouvrir la commande publique"):
            await actions.add_action(
                session=session, consultation_id=consultation.id, by=None, text=text
            )
        await actions.link_findings(
            session=session,
            consultation_id=consultation.id,
            code="A1",
            finding_codes=["F1"],
            by=None,
        )
        await actions.shortlist(
            session=session, consultation_id=consultation.id, by=None, codes=["A1", "A2", "A3"]
        )
    await next_phase(db, clock, consultation.id)

    await phone.send("/rank")
    picks = data_of(phone, "rk:")
    order = [data.rsplit(":", 1)[1] for data in picks if ":p:" in data]
    assert sorted(order) == ["A1", "A2", "A3"]
    nonce = picks[0].split(":")[1]
    await phone.tap(f"rk:{nonce}:p:{order[2]}")
    await phone.tap(f"rk:{nonce}:p:{order[0]}")
    await phone.tap(f"rk:{nonce}:done")
    await phone.tap(f"rk:{nonce}:ok")
    assert words["ranking"] in phone.last()
    async with db.session() as session:
        assert await actions.ballot_of(session=session, participant=me) == [order[2], order[0]]
    # Redo it, until the phase closes.
    await phone.tap("rk:new")
    nonce = data_of(phone, "rk:")[0].split(":")[1]
    for code in order:  # all three: k = 5, so the review comes after the last one
        await phone.tap(f"rk:{nonce}:p:{code}")
    await phone.tap(f"rk:{nonce}:ok")
    async with db.session() as session:
        assert await actions.ballot_of(session=session, participant=me) == order

    # The questionnaire on the observe phase (late, but she took part in that phase).
    async with db.session() as session:
        after_observe = (
            await session.exec(select(Questionnaire).where(Questionnaire.key == "after-observe"))
        ).one()
        await questionnaires.open_questionnaire(
            session=session, questionnaire_id=after_observe.id, actor_label="scheduler"
        )
    await phone.send("/questionnaire")
    assert words["likert"] in phone.last()
    await phone.tap(f"qa:{after_observe.id}:1:4")
    await phone.tap(f"qa:{after_observe.id}:2:2")
    await phone.send("Plus de temps pour les observations.", reply_to=phone.last_message_id())
    assert words["done"] in phone.last()
    async with db.session() as session:
        answers = (await session.exec(select(Answer).order_by(Answer.question_id))).all()
    assert [(a.value_int, a.value_text) for a in answers] == [
        (4, None),
        (2, None),
        (None, "Plus de temps pour les observations."),
    ]

    # What became of my observation.
    await phone.send("/mine")
    mine = phone.last()
    assert words["mine"] in mine
    assert "F1" in mine and "F2" in mine and "A1" in mine
    assert "<spécifique>" in mine

    # Stale buttons after the rank phase closes get a polite answer, not an error.
    async with db.session() as session:
        rank = await phases.current_phase(session=session, consultation_id=consultation.id)
        clock.set(rank.closes_at)
        await phases.close_phase(session=session, phase_id=rank.id, actor_label="scheduler")
    await phone.tap("rk:new")
    assert "Sorry" not in phone.last() and "Désolé" not in phone.last()
    async with db.session() as session:
        assert (await session.get(Phase, rank.id)).status == PhaseStatus.CLOSED

    # Once the ranking is over, /mine shows where the actions ended up.
    await phone.send("/mine")
    assert words["rank"] in phone.last()
