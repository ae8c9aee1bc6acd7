"""Eighty-two replies as real mail clients write them (tests/data/replies/real): how many Palabre
understands exactly, as a careful person would read them.

`expected.toml` says, for each message, what a human reader takes from it; README.md beside it
describes the schema. Understanding is measured here, without a database: the message is read
(`mailer.reading.read`) and its lines turned into commands (`commands.find_commands`) knowing
what the consultation awaits from the person in that phase (`commands.Expecting`). Trusting
(forged senders, closed questionnaires) is tested with the database in `test_replies_real.py`.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from typing import Any

from mailer import commands, tokens
from mailer.reading import read
from tests.mailer.conftest import DATA, mail_config, reply_message

REAL = DATA / "real"
TARGET = 0.95
IDS = {
    "DIGEST_ID": "<palabre.7.0123456789ab@mairie.example>",
    "FINDINGS_ID": "<palabre.8.1123456789ab@mairie.example>",
    "INVITATION_ID": "<palabre.1.2123456789ab@mairie.example>",
    "QUESTIONNAIRE_ID": "<palabre.21.3123456789ab@mairie.example>",
    "OLD_QUESTIONNAIRE_ID": "<palabre.12.4123456789ab@mairie.example>",
}
AUTHSERV_ID = "mx.mairie.example"


@dataclass
class Corpus:
    consultation: dict[str, Any]
    personas: dict[str, dict[str, str]]
    files: dict[str, dict[str, Any]]


def load_corpus() -> Corpus:
    data = tomllib.loads((REAL / "expected.toml").read_text(encoding="utf-8"))
    return Corpus(data["consultation"], data["personas"], data["files"])


def key_of(persona: str) -> str:
    """A stable reply key per persona, as `Participant.reply_key` would be."""
    return hashlib.sha256(persona.encode()).hexdigest()[:20]


def raw_message(config, corpus: Corpus, name: str) -> bytes:
    """The file's bytes as they reach the mailbox, placeholders replaced."""
    entry = corpus.files[name]
    text = (REAL / name).read_text(encoding="utf-8")
    values = {
        "%%REPLY%%": tokens.reply_address(config, key_of(entry["persona"])),
        "%%VERP%%": tokens.verp_address(config, key_of(entry["persona"])),
        "%%AUTHSERV_ID%%": AUTHSERV_ID,
        **{f"%%{name}%%": value for name, value in IDS.items()},
    }
    if "second_persona" in entry:
        values["%%REPLY2%%"] = tokens.reply_address(config, key_of(entry["second_persona"]))
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def expecting(corpus: Corpus, phase: str) -> commands.Expecting:
    """What the consultation awaits in `phase`, as `replies` asks the database for it."""
    questions = corpus.consultation["questions"]
    return commands.Expecting(
        consent=phase == "consent-pending",
        findings=tuple(corpus.consultation["findings"]) if phase == "review" else (),
        ballot=phase == "rank",
        welcome={"observe": "observation", "propose": "proposal"}.get(phase),
        questions={
            int(q["code"][1:]): commands.Question(
                kind=q["kind"],
                labels=tuple(
                    tuple(labels[i] for labels in q.get("choices", {}).values())
                    for i in range(len(next(iter(q.get("choices", {"": []}).values()))))
                ),
            )
            for q in questions
        }
        if phase == "questionnaire"
        else {},
    )


def _flat(text: str) -> str:
    return " ".join(str(text).split())


def expected_commands(corpus: Corpus, name: str) -> tuple:
    entry = corpus.files[name]
    if entry["kind"] != "reply":
        return (entry["kind"], ())
    found = []
    for command in entry["commands"]:
        kind = command["command"]
        if kind == "stance":
            found += [
                ("stance", code, command["choice"], _flat(command["reason"]))
                for code in command["codes"]
            ]
        elif kind == "rank":
            found.append(("rank", tuple(command["codes"])))
        elif kind == "answer":
            found.append(
                (
                    "answer",
                    command["question"],
                    _flat(command["value"]),
                    _flat(command.get("remark", "")),
                )
            )
        elif kind in {"observation", "proposal", "suggest_observation", "suggest_proposal"}:
            found.append((kind, _flat(command["text"])))
        elif kind == "daily":
            found.append(("cadence", "daily"))
        else:
            found.append((kind,))
    return ("reply", tuple(sorted(found)))


def as_read(parsed: commands.Parsed) -> list[tuple]:
    name, args = parsed.command.name, parsed.args
    if name == "stance":
        return [("stance", code, args["choice"], _flat(args["reason"])) for code in args["codes"]]
    if name == "rank":
        return [("rank", tuple(args["codes"]))]
    if name == "answer":
        return [("answer", f"Q{args['position']}", _flat(args["value"]), _flat(args["remark"]))]
    if name in {"observation", "proposal"}:
        return [(name, _flat(args["text"]))]
    if name == "suggest":
        return [(f"suggest_{args['kind']}", _flat(args["text"]))]
    if name == "cadence":
        return [("cadence", args["cadence"])]
    return [(name,)]


def read_commands(config, corpus: Corpus, name: str) -> tuple:
    entry = corpus.files[name]
    reading = read(config, raw_message(config, corpus, name))
    kind = {"auto": "auto-reply"}.get(reading.kind, reading.kind)
    if kind != "reply":
        return (kind, ())
    found = commands.find_commands(
        reading.lines, reading.subject, expecting(corpus, entry["phase"])
    )
    return ("reply", tuple(sorted(item for parsed in found.commands for item in as_read(parsed))))


def test_at_least_95_percent_of_real_replies_are_understood_exactly(tmp_path) -> None:
    config = mail_config(tmp_path)
    corpus = load_corpus()
    misread = {
        name: (read_commands(config, corpus, name), expected_commands(corpus, name))
        for name in corpus.files
        if read_commands(config, corpus, name) != expected_commands(corpus, name)
    }
    share = 1 - len(misread) / len(corpus.files)
    assert len(corpus.files) == 82
    assert share >= TARGET, misread


def test_every_kind_of_message_is_recognised(tmp_path) -> None:
    """Vacation messages without RFC 3834 headers are automatic; bounces are bounces."""
    config = mail_config(tmp_path)
    corpus = load_corpus()
    for name, entry in corpus.files.items():
        kind = read(config, raw_message(config, corpus, name)).kind
        assert {"auto": "auto-reply"}.get(kind, kind) == entry["kind"], name


def test_a_reply_that_mentions_an_absence_is_still_a_reply(tmp_path) -> None:
    config = mail_config(tmp_path)
    raw = reply_message(
        to=tokens.reply_address(config, key_of("aicha")),
        body="F1 oui\nJe suis absente jusqu'au 10, F2 non : trop vague",
    )
    reading = read(config, raw)
    assert reading.kind == "reply"
    assert [p.args["codes"] for p in commands.find_commands(reading.lines).commands] == [
        ["F1"],
        ["F2"],
    ]


def test_authentication_results_count_only_from_our_own_mx(tmp_path) -> None:
    config = mail_config(tmp_path, trusted_authserv_id=AUTHSERV_ID)
    corpus = load_corpus()
    for name, entry in corpus.files.items():
        if "authentication" in entry:
            reading = read(config, raw_message(config, corpus, name))
            assert reading.authentication == entry["authentication"], name
