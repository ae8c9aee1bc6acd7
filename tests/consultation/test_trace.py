"""What became of my contributions: observation → findings → actions with their rank."""

from __future__ import annotations

import pytest

from consultation import trace
from consultation.errors import PermissionDenied, UserError
from models import Channel
from templates.render import message_context, render
from tests.consultation.evaluation_story import a_whole_process, messages
from tests.factories import make_consultation, make_participant

TG = Channel.TELEGRAM


async def test_each_observation_leads_to_its_findings_and_their_ranked_actions(db, clock):
    async with db.session() as session:
        _, _, aicha, bruno, _ = await a_whole_process(session, clock)

        mine = await trace.contributions_of(session=session, participant=aicha)

        assert [item["kind"] for item in mine] == [
            "observation",
            "observation",
            "observation",
            "proposal",
        ]
        o1, o2, o4, proposal = mine
        assert o1["text"].startswith("Les petites coopératives")
        [f1] = o1["findings"]
        assert (f1["code"], f1["status"], f1["version"]) == ("F1", "published", 1)
        assert f1["text"] == "Les petites coopératives manquent d'accompagnement."
        # A3 (first) before A2 (second); A1 was merged into A3 and does not show twice.
        assert [(a["code"], a["rank"], a["tied"], a["of"]) for a in f1["actions"]] == [
            ("A3", 1, False, 3),
            ("A2", 2, False, 3),
        ]
        assert o2["scope_status"] == "out_of_scope"
        assert o2["scope_reason"].startswith("Les demandes de subvention")
        assert o2["findings"] == []
        # The draft drawing on O4 is not public: it does not show.
        assert o4["findings"] == []
        assert (proposal["code"], proposal["status"]) == ("A1", "merged")
        assert (proposal["became"]["code"], proposal["became"]["rank"]) == ("A3", 1)

        # Bruno's duplicate is no dead end: it leads where O1 leads.
        [o3] = await trace.contributions_of(session=session, participant=bruno)
        assert o3["merged"] is True
        assert [f["code"] for f in o3["findings"]] == ["F1"]
        assert [a["code"] for a in o3["findings"][0]["actions"]] == ["A3", "A2"]

        text = str(mine)
        assert "Bruno" not in text and "Chloé" not in text


async def test_no_rank_is_shown_while_the_ranking_is_still_open(db, clock):
    async with db.session() as session:
        consultation, coordinator, aicha, *_ = await a_whole_process(session, clock, finish=False)

        o1 = (await trace.contributions_of(session=session, participant=aicha))[0]
        assert [(a["code"], a["rank"], a["borda"]) for a in o1["findings"][0]["actions"]] == [
            ("A2", None, None),
            ("A3", None, None),
        ]
        assert await trace.final_plan(session=session, consultation_id=consultation.id) == []
        with pytest.raises(UserError) as refused:
            await trace.send_final_plan(
                session=session, consultation_id=consultation.id, by=coordinator
            )
        assert refused.value.code == "trace.ranking_not_over"


async def test_someone_with_no_contribution_has_an_empty_trace(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session)
        silent = await make_participant(session, consultation)
        assert await trace.contributions_of(session=session, participant=silent) == []


async def test_everyone_receives_the_final_plan_with_their_own_trace_once(db, clock):
    async with db.session() as session:
        consultation, coordinator, aicha, bruno, chloe = await a_whole_process(session, clock)

        with pytest.raises(PermissionDenied):
            await trace.send_final_plan(session=session, consultation_id=consultation.id, by=aicha)
        written = await trace.send_final_plan(
            session=session, consultation_id=consultation.id, by=coordinator
        )

        sent = await messages(session, "final_plan")
        assert written == 3
        assert sorted(m.participant_id for m in sent) == sorted([aicha.id, bruno.id, chloe.id])
        for_aicha = next(m for m in sent if m.participant_id == aicha.id).payload
        assert [(a["code"], a["rank"]) for a in for_aicha["plan"]] == [
            ("A3", 1),
            ("A2", 2),
            ("A4", 3),
        ]
        assert for_aicha["ballots"] == 3
        assert (for_aicha["observation_count"], for_aicha["proposal_count"]) == (3, 1)
        first = for_aicha["contributions"][0]
        assert first["excerpt"].startswith("Les petites coopératives")
        assert first["findings"][0]["actions"][0] == {
            "code": "A3",
            "text": "Un guichet unique d'accompagnement de l'ESS.",
            "rank": 1,
            "tied": False,
            "of": 3,
            "status": "shortlisted",
            # No official answer yet: consultation.followup fills these in after the vote.
            "decision": None,
            "progress": None,
            "due": None,
        }
        for message in sent:
            assert "Aïcha" not in str(message.payload) and "Bruno" not in str(message.payload)
        for_chloe = next(m for m in sent if m.participant_id == chloe.id).payload
        assert for_chloe["contributions"] == []

        # Sending it again (a restart, a second click) writes nothing new.
        assert (
            await trace.send_final_plan(
                session=session, consultation_id=consultation.id, actor_label="scheduler"
            )
            == 0
        )
        assert len(await messages(session, "final_plan")) == 3

        # The payload carries everything the templates need, on both channels, in both languages.
        for message in sent:
            person = next(p for p in (aicha, bruno, chloe) if p.id == message.participant_id)
            context = message_context(
                payload=message.payload, consultation=consultation, recipient=person
            )
            for locale in ("fr", "en"):
                for name in (
                    "telegram/final_plan.html",
                    "email/final_plan.subject.txt",
                    "email/final_plan.txt",
                    "email/final_plan.html",
                ):
                    assert render(name, context, locale)
        aicha_text = render(
            "email/final_plan.txt",
            message_context(payload=for_aicha, consultation=consultation, recipient=aicha),
            "en",
        )
        assert "A3" in aicha_text and "rank 1 of 3" in aicha_text
        assert "marked out of the consultation's scope" in aicha_text
