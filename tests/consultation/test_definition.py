"""The consultation definition file: precise errors, idempotent application."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from consultation import definition, files
from consultation.errors import DefinitionError
from models import Phase, PhaseStatus, Question, Questionnaire

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ess-plan.toml"


def example_with(old: str, new: str) -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_shipped_example_is_valid():
    spec = definition.load(EXAMPLE)
    assert spec.slug == "ess-plan"
    assert [phase.kind.value for phase in spec.phases] == [
        "observe",
        "review",
        "propose",
        "rank",
        "evaluate",
        "follow",
    ]
    assert spec.rules.follow_digest == "monthly" and spec.rules.follow_questionnaire_months == 12
    assert len(spec.categories) == 7
    assert sum(1 for questionnaire in spec.questionnaires if questionnaire.final) == 1
    assert spec.rules.quiet_hours[0].hour == 21


def test_the_follow_phase_comes_last_and_follows_a_ranking():
    text = files.read_text(EXAMPLE)
    follow = text.index('[[phases]]\nkind = "follow"')
    block = text[follow : text.index("[[questionnaires]]", follow)]
    without = text.replace(block, "")
    moved = without.replace("[[phases]]", block + "[[phases]]", 1)
    with pytest.raises(DefinitionError, match="the follow phase comes once, as the last phase"):
        definition.parse(moved)
    no_rank = text.replace('kind = "rank"', 'kind = "propose"', 1)
    with pytest.raises(DefinitionError, match="add a rank phase"):
        definition.parse(no_rank)
    with pytest.raises(DefinitionError, match="follow_digest"):
        definition.parse(text.replace('follow_digest = "monthly"', 'follow_digest = "daily"'))


@pytest.mark.parametrize(
    ("old", "new", "field", "problem"),
    [
        ('slug = "ess-plan"', 'slug = "ESS plan!"', "slug", "String should match pattern"),
        ('key = "mutual"', 'key = "association"', None, "categories: duplicate key"),
        (
            "min_days = 14\nmax_days = 35",
            "min_days = 40\nmax_days = 35",
            "phases.0",
            "min_days is larger than max_days",
        ),
        (
            'timezone = "Europe/Paris"',
            'timezone = "Mars/Olympus"',
            "timezone",
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            'after_phase = "observe"',
            'after_phase = "dance"',
            "questionnaires.0.after_phase",
            "Input should be",
        ),
        (
            'kind = "likert"',
            'kind = "likert"\nchoices = [{ fr = "a", en = "a" }]',
            "questionnaires.0.questions.0",
            "a likert question takes no choices",
        ),
        (
            'label = { fr = "Mutuelle", en = "Mutual society" }',
            'label = { fr = "Mutuelle" }',
            "categories.2.label",
            "missing the en text",
        ),
        ("daily_cap = 10", "daily_cap = 10\nflavour = 3", "rules.flavour", "unknown field"),
    ],
)
def test_each_mistake_is_named_with_its_field(old, new, field, problem):
    with pytest.raises(DefinitionError) as caught:
        definition.parse(example_with(old, new), "ess.toml")
    assert caught.value.source == "ess.toml"
    if field:
        assert caught.value.field == field
    assert problem in caught.value.problem
    assert "\n" not in str(caught.value)


def test_a_phase_opening_before_the_previous_one_closes_is_refused():
    text = example_with("opens = 2027-02-01T18:00:00+01:00", "opens = 2027-01-30T18:00:00+01:00")
    with pytest.raises(DefinitionError, match=r"phases\[1\] \(review\) opens before phases\[0\]"):
        definition.parse(text, "ess.toml")


def test_dates_without_an_offset_are_refused():
    text = example_with("opens = 2027-01-11T09:00:00+01:00", "opens = 2027-01-11T09:00:00")
    with pytest.raises(DefinitionError, match="need a UTC offset"):
        definition.parse(text, "ess.toml")


def test_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(DefinitionError, match="cannot read the file"):
        definition.load(tmp_path / "missing.toml")
    garbled = tmp_path / "garbled.toml"
    # 0x81 is undefined in Windows-1252 and starts no UTF-8 character: no reading fits.
    garbled.write_bytes(b"title = '\x81conomie'")
    with pytest.raises(DefinitionError, match="neither UTF-8 nor Windows-1252"):
        definition.load(garbled)


async def test_applying_twice_changes_nothing_and_an_edit_updates_in_place(db, clock):
    spec = definition.load(EXAMPLE)
    async with db.session() as session:
        consultation, changed = await definition.apply(session=session, spec=spec)
        assert changed
    async with db.session() as session:
        again, changed = await definition.apply(session=session, spec=spec)
        assert not changed
        assert again.id == consultation.id

    edited = definition.parse(
        example_with(
            'prompt = { fr = "Que faudrait-il changer la prochaine fois ?", '
            'en = "What should change next time?" }',
            'prompt = { fr = "Que changer ?", en = "What to change?" }',
        ),
        "ess.toml",
    )
    async with db.session() as session:
        _, changed = await definition.apply(session=session, spec=edited)
        assert changed
        questions = (await session.exec(select(Question))).all()
        assert len(questions) == 9
        assert {"fr": "Que changer ?", "en": "What to change?"} in [q.prompt for q in questions]
        assert len((await session.exec(select(Questionnaire))).all()) == 4


async def test_a_started_phase_cannot_change_kind(db, clock):
    spec = definition.load(EXAMPLE)
    async with db.session() as session:
        await definition.apply(session=session, spec=spec)
        phase = (await session.exec(select(Phase).where(Phase.position == 1))).one()
        phase.status = PhaseStatus.OPEN
        session.add(phase)
    swapped = definition.parse(
        example_with('kind = "observe"', 'kind = "review"').replace(
            'kind = "review"\nopens = 2027-02-01', 'kind = "observe"\nopens = 2027-02-01', 1
        ),
        "ess.toml",
    )
    with pytest.raises(DefinitionError, match="already open; its kind cannot change"):
        async with db.session() as session:
            await definition.apply(session=session, spec=swapped)
