"""Observations: the same room for every voice, scope decisions told to their author, merges."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlmodel import select

from consultation import findings, observations
from consultation.errors import PermissionDenied, UserError
from models import FindingObservation, Observation, OutboxMessage, ScopeStatus
from tests.factories import make_consultation, make_coordinator, make_participant


async def _submit(db, person, text, **options):
    async with db.session() as session:
        return await observations.submit_observation(
            session=session, participant=person, text=text, channel="telegram", **options
        )


async def _refusal(db, person, text, **options) -> UserError:
    with pytest.raises(UserError) as caught:
        await _submit(db, person, text, **options)
    return caught.value


async def test_an_observation_is_recorded_in_the_open_phase_with_its_theme(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        aicha = await make_participant(session, c, telegram_chat_id=101)
    saved = await _submit(
        db,
        aicha,
        "  Les petites coopératives\r\nn'ont aucun accompagnement\tspécifique.  ",
        theme=" Accompagnement ",
    )
    async with db.session() as session:
        stored = await session.get(Observation, saved.id)
        mine = await observations.observations_of(session=session, participant=aicha)
    assert stored.text == "Les petites coopératives\nn'ont aucun accompagnement\tspécifique."
    assert stored.theme == "Accompagnement"
    assert stored.scope_status == ScopeStatus.PENDING
    assert stored.author_id == aicha.id
    assert stored.phase_id is not None
    assert [o.id for o in mine] == [saved.id]


async def test_an_observation_longer_than_the_limit_is_refused_with_both_numbers(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        small = await make_consultation(
            session, current="observe", rules={"observation_max_length": 50}
        )
        aicha = await make_participant(session, c, telegram_chat_id=101)
        julien = await make_participant(session, small, telegram_chat_id=102)
    await _submit(db, aicha, "é" * 1000)
    error = await _refusal(db, aicha, "é" * 1001)
    assert (error.code, error.params) == ("observation.too_long", {"limit": 1000, "length": 1001})
    error = await _refusal(db, julien, "x" * 51)
    assert error.params == {"limit": 50, "length": 51}


@pytest.mark.parametrize(
    "text",
    ["", "   ", "\n\t \n", "\u200b\u200b", "\u200d\ufeff \u2060", "\u3164", "\u00a0\u2003"],
)
async def test_empty_or_invisible_text_is_refused(db, clock, text):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        aicha = await make_participant(session, c, telegram_chat_id=101)
    assert (await _refusal(db, aicha, text)).code == "observation.empty"


@pytest.mark.parametrize("text", ["Alerte\x07", "\x1b[31mrouge", "fin\x00", "C1\x85ici", "\x7f"])
async def test_control_characters_are_refused_but_line_breaks_and_tabs_are_fine(db, clock, text):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        aicha = await make_participant(session, c, telegram_chat_id=101)
    assert (await _refusal(db, aicha, text)).code == "observation.control_characters"
    assert (await _submit(db, aicha, "ligne 1\nligne 2\tet 👩‍👩‍👧")).id is not None


async def test_the_daily_cap_counts_days_in_the_consultations_time_zone(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe", rules={"daily_cap": 2})
        aicha = await make_participant(session, c, telegram_chat_id=101)
    await _submit(db, aicha, "Une")
    await _submit(db, aicha, "Deux")
    error = await _refusal(db, aicha, "Trois")
    assert (error.code, error.params) == ("observation.daily_cap", {"cap": 2})
    clock.advance(hours=13, minutes=30)  # 23:30 in Paris: still Monday there
    assert (await _refusal(db, aicha, "Trois")).code == "observation.daily_cap"
    clock.advance(minutes=35)  # 00:05 Tuesday in Paris, 23:05 Monday in UTC
    await _submit(db, aicha, "Trois")


async def test_two_observations_at_once_cannot_both_pass_the_last_place_of_the_day(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe", rules={"daily_cap": 1})
        aicha = await make_participant(session, c, telegram_chat_id=101)

    async def attempt(text: str) -> str:
        try:
            await _submit(db, aicha, text)
        except UserError as exc:
            return exc.code
        return "ok"

    outcomes = await asyncio.gather(attempt("Première"), attempt("Seconde"))
    assert sorted(outcomes) == ["observation.daily_cap", "ok"]


async def test_out_of_scope_needs_a_reason_and_the_author_is_told_it_once(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        aicha = await make_participant(session, c, name="Aïcha Benali", telegram_chat_id=101)
        celine = await make_coordinator(session, c)
    noted = await _submit(db, aicha, "Il faudrait subventionner ma structure. " * 10)
    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await observations.decide_scope(
                session=session, observation_id=noted.id, by=celine, in_scope=False
            )
    assert caught.value.code == "observation.reason_required"
    for _ in range(2):
        async with db.session() as session:
            decided = await observations.decide_scope(
                session=session,
                observation_id=noted.id,
                by=celine,
                in_scope=False,
                reason="Les demandes de subvention individuelles sont hors champ.",
            )
    assert decided.scope_status == ScopeStatus.OUT_OF_SCOPE
    async with db.session() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    [row] = rows
    assert (row.participant_id, row.template, row.interactive) == (
        aicha.id,
        "observation_out_of_scope",
        False,
    )
    assert row.payload["reason"] == "Les demandes de subvention individuelles sont hors champ."
    assert row.payload["excerpt"].endswith("…") and len(row.payload["excerpt"]) == 200
    assert "Céline" not in json.dumps(row.payload) and "Aïcha" not in json.dumps(row.payload)


async def test_in_scope_tells_nobody_and_pending_lists_only_the_undecided(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        aicha = await make_participant(session, c, telegram_chat_id=101)
    first = await _submit(db, aicha, "Une")
    second = await _submit(db, aicha, "Deux")
    async with db.session() as session:
        await observations.decide_scope(
            session=session, observation_id=first.id, by=None, actor_label="cli", in_scope=True
        )
        pending = await observations.pending_scope(session=session, consultation_id=c.id)
        told = (await session.exec(select(OutboxMessage))).all()
    assert [o.id for o in pending] == [second.id]
    assert told == []


async def test_duplicates_merge_into_one_observation_and_findings_follow(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        aicha = await make_participant(session, c, telegram_chat_id=101)
        celine = await make_coordinator(session, c)
    a = await _submit(db, aicha, "Pas de foncier pour les coops")
    b = await _submit(db, aicha, "Le foncier manque aux coopératives")
    d = await _submit(db, aicha, "Foncier introuvable")
    async with db.session() as session:
        finding = await findings.draft_finding(
            session=session,
            consultation_id=c.id,
            by=celine,
            text="Le foncier manque à l'ESS.",
            observation_ids=[b.id],
        )
        await observations.merge_observation(
            session=session, observation_id=d.id, into_id=b.id, by=celine
        )
        await observations.merge_observation(
            session=session, observation_id=b.id, into_id=a.id, by=celine
        )
    async with db.session() as session:
        stored = {o.id: o for o in (await session.exec(select(Observation))).all()}
        links = (await session.exec(select(FindingObservation))).all()
    assert stored[b.id].scope_status == ScopeStatus.MERGED
    assert stored[b.id].duplicate_of_id == a.id
    assert stored[d.id].duplicate_of_id == a.id
    assert [(link.finding_id, link.observation_id) for link in links] == [(finding.id, a.id)]

    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await observations.merge_observation(
                session=session, observation_id=a.id, into_id=b.id, by=celine
            )
    assert caught.value.code == "observation.merged"
    with pytest.raises(UserError) as caught:
        async with db.session() as session:
            await observations.merge_observation(
                session=session, observation_id=a.id, into_id=a.id, by=celine
            )
    assert caught.value.code == "observation.merge_self"


async def test_a_participant_cannot_moderate_observations(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        aicha = await make_participant(session, c, telegram_chat_id=101)
        julien = await make_participant(session, c, telegram_chat_id=102)
    noted = await _submit(db, aicha, "Une")
    other = await _submit(db, julien, "Deux")
    with pytest.raises(PermissionDenied):
        async with db.session() as session:
            await observations.decide_scope(
                session=session, observation_id=noted.id, by=julien, in_scope=False, reason="non"
            )
    with pytest.raises(PermissionDenied):
        async with db.session() as session:
            await observations.merge_observation(
                session=session, observation_id=noted.id, into_id=other.id, by=julien
            )


async def test_nothing_is_recorded_from_someone_who_has_not_consented(db, clock):
    async with db.session() as session:
        c = await make_consultation(session, current="observe")
        silent = await make_participant(session, c, telegram_chat_id=101, consented=False)
    assert (await _refusal(db, silent, "Bonjour")).code == "preferences.consent_required"
