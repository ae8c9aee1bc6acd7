"""What a phone adds under a reply is a signature, not a command to explain back."""

from __future__ import annotations

import pytest

from mailer.reading import reply_lines


@pytest.mark.parametrize(
    "signature",
    [
        "Envoyé de mon iPhone",
        "Envoyé depuis mon smartphone Samsung Galaxy.",
        "Sent from my iPhone",
        "Sent from Mail for Windows",
        "Obtenir Outlook pour Android",
        "Get Outlook for iOS",
    ],
)
def test_a_phone_signature_under_the_commands_is_dropped(signature):
    lines = reply_lines(f"F1 oui\nF2 non: le foncier pèse plus\n\n{signature}\n")
    assert [line for line in lines if line.strip()] == ["F1 oui", "F2 non: le foncier pèse plus"]


def test_a_sentence_that_merely_mentions_sending_is_kept():
    lines = reply_lines("OBS: les dossiers envoyés de mon association se perdent\n")
    assert lines[0].startswith("OBS: les dossiers envoyés")
