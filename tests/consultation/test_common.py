"""The shared base under the features: finding a consultation, reading its rules, codes."""

from __future__ import annotations

from datetime import time

import pytest

from consultation.common import clean_text, code_key, get_consultation, next_code, rules
from consultation.definition import RulesSpec
from consultation.errors import NotFound, UserError
from tests.factories import make_consultation


async def test_a_consultation_is_found_by_id_by_slug_or_as_the_only_one(db, clock):
    async with db.session() as session:
        ess = await make_consultation(session, slug="ess")
        assert (await get_consultation(session=session, consultation_id=ess.id)).slug == "ess"
        assert (await get_consultation(session=session)).id == ess.id
        await make_consultation(session, slug="petite-enfance")
        assert (await get_consultation(session=session, slug="ess")).id == ess.id
        with pytest.raises(NotFound) as ambiguous:
            await get_consultation(session=session)
        assert ambiguous.value.code == "consultation.ambiguous"
        with pytest.raises(NotFound) as unknown:
            await get_consultation(session=session, consultation_id=ess.id + 1000)
        assert unknown.value.code == "consultation.unknown"


async def test_rules_a_consultation_does_not_set_take_the_definitions_defaults(db, clock):
    async with db.session() as session:
        small = await make_consultation(
            session, rules={"daily_cap": 2, "quiet_hours": "22:00-07:00"}
        )
    read = rules(small)
    assert (read.daily_cap, read.quiet_hours) == (2, (time(22, 0), time(7, 0)))
    defaults = RulesSpec()
    assert read.observation_max_length == defaults.observation_max_length
    assert read.ballot_k == defaults.ballot_k
    assert read.invitation_days == defaults.invitation_days
    assert rules(None) == defaults


def test_text_with_nothing_visible_or_a_control_character_is_refused():
    assert clean_text("  Les crèches ferment tôt\r\n", area="observation", limit=100) == (
        "Les crèches ferment tôt"
    )
    for text, code in (
        ("\u200b\u3164 ", "observation.empty"),
        ("Bonjour\x07", "observation.control_characters"),
        ("x" * 11, "observation.too_long"),
    ):
        with pytest.raises(UserError) as refused:
            clean_text(text, area="observation", limit=10)
        assert refused.value.code == code


def test_codes_follow_the_highest_and_sort_by_number():
    assert next_code("F", ["F1", "F9", "A12", "F10"]) == "F11"
    assert next_code("A", []) == "A1"
    assert sorted(["F10", "F2", "F1"], key=code_key) == ["F1", "F2", "F10"]
