"""Control characters are refused by every file reader, in one line naming the place."""

from __future__ import annotations

import pytest

from consultation import actions, definition, files, findings, participants
from consultation.errors import DefinitionError
from tests.factories import CATEGORIES

KEYS = {category["key"] for category in CATEGORIES}


@pytest.mark.parametrize(
    ("read", "text", "where"),
    [
        (
            lambda text: participants.read_csv(text, categories=KEYS, source="people.csv"),
            "name,email,category\nAïcha\x00,aicha@example.org,association\n",
            "people.csv: line 2, column 6",
        ),
        (
            lambda text: actions.read_ballots_csv(text, "ballots.csv"),
            "email,ranking\naicha@example.org,A1 A2\x07\n",
            "ballots.csv: line 2, column 24",
        ),
        (
            lambda text: findings.parse_findings_file(text, "findings.md"),
            "## F1\nLes tiers-lieux\x1b manquent de moyens.\n",
            "findings.md: line 2, column 16",
        ),
        (
            lambda text: definition.parse(text, "plan.toml"),
            'slug = "plan"\ntitle = "Plan\\u0000 ESS"\n',
            "plan.toml: title",
        ),
    ],
)
def test_every_file_reader_names_the_control_character(read, text, where):
    with pytest.raises(DefinitionError) as refused:
        read(text)
    assert str(refused.value).startswith(f"{where}: contains the control character U+")
    assert "\n" not in str(refused.value)


def test_line_breaks_and_tabs_are_text(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("a\tb\r\nc\n", encoding="utf-8")
    assert files.read_text(path) == "a\tb\nc\n"
