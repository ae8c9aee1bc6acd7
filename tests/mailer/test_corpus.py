"""Replies as people send them (tests/data/replies): what Palabre reads in each, and does.

The first half reads the corpus without a database: which kind of message it is, and which
commands it holds (never the ones in quoted text, below the marker or in a forwarded message).
The second half hands the same messages to `mailer.replies.handle` in a consultation in review.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from mailer import commands, replies, tokens
from mailer.reading import read
from models import InboundRecord, OutboxMessage, Participant, Stance
from tests.mailer.conftest import DATA, mail_config, review_story

KEY = "00aa11bb22cc33dd44ee"
DIGEST_ID = "<palabre.7.0123456789ab@mairie.example>"


def load(name: str, config, key: str = KEY, digest_id: str = DIGEST_ID) -> bytes:
    reply = tokens.reply_address(config, key)
    local, domain = reply.split("@")
    forged = local[:-4] + "abcd" + "@" + domain
    text = (DATA / name).read_text(encoding="utf-8")
    for placeholder, value in {
        "%%REPLY%%": reply,
        "%%VERP%%": tokens.verp_address(config, key),
        "%%FORGED%%": forged,
        "%%DIGEST_ID%%": digest_id,
    }.items():
        text = text.replace(placeholder, value)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def commands_in(config, raw: bytes) -> list[tuple]:
    reading = read(config, raw)
    found = commands.find_commands(reading.lines, reading.subject)
    return [(p.command.name, p.args) for p in found.commands]


def stance(codes, choice, reason=""):
    return ("stance", {"codes": codes, "choice": choice, "reason": reason})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "gmail_fr_top_posting.eml",
            [
                stance(["F1"], "confirm"),
                stance(
                    ["F2"],
                    "contest",
                    "les tiers-lieux de la métropole ont déjà une aide au fonctionnement "
                    "depuis 2024.",
                ),
            ],
        ),
        (
            "gmail_en_bottom_posting.eml",
            [
                stance(["F3"], "confirm"),
                stance(
                    ["F1"],
                    "contest",
                    "not my experience, the department\nfunds two cooperative incubators.",
                ),
            ],
        ),
        (
            "outlook_fr_top_posting.eml",
            [
                stance(["F3"], "contest", "la difficulté vient surtout des délais de paiement"),
                stance(["F2"], "confirm"),
            ],
        ),
        (
            "outlook_en_html_only.eml",
            [
                stance(["F2"], "confirm"),
                stance(["F3"], "contest", "the figures quoted date from 2019 & are out of date"),
            ],
        ),
        (
            "apple_fr_iphone_top_posting.eml",
            [
                stance(["F1"], "confirm"),
                stance(
                    ["F2"],
                    "contest",
                    "le fonctionnement est financé, c'est l'investissement qui manque",
                ),
                stance(["F3"], "abstain"),
            ],
        ),
        (
            "apple_en_bottom_posting.eml",
            [
                stance(["F1"], "confirm"),
                stance(["F2"], "contest", "operating funds exist since 2024"),
            ],
        ),
        (
            "gmail_fr_forwarded.eml",
            [stance(["F2"], "confirm", "(je transfère pour garder une trace)")],
        ),
    ],
)
def test_each_client_style_yields_exactly_the_commands_the_person_wrote(
    tmp_path, name, expected
) -> None:
    config = mail_config(tmp_path)
    raw = load(name, config)
    reading = read(config, raw)
    assert reading.kind == "reply"
    assert reading.token is not None and reading.token.key == KEY
    assert commands_in(config, raw) == expected


def test_greetings_and_signatures_are_ignored_not_quoted_back(tmp_path) -> None:
    config = mail_config(tmp_path)
    reading = read(config, load("outlook_fr_top_posting.eml", config))
    found = commands.find_commands(reading.lines, reading.subject)
    assert found.not_understood == []
    assert {item["line"] for item in found.ignored} == {
        "Bien à vous,",
        "Aïcha Benali",
        "Association Les Communs",
    }


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("outlook_fr_out_of_office.eml", "auto-submitted"),
        ("en_out_of_office_subject_only.eml", "out-of-office subject"),
    ],
)
def test_automatic_answers_are_dropped_before_their_body_is_read(tmp_path, name, reason) -> None:
    config = mail_config(tmp_path)
    reading = read(config, load(name, config))
    assert (reading.kind, reading.reason) == ("auto", reason)
    assert reading.lines == []


def test_a_dsn_names_the_person_by_verp_and_by_our_message_id(tmp_path) -> None:
    config = mail_config(tmp_path)
    reading = read(config, load("postfix_dsn_bounce.eml", config))
    assert reading.kind == "bounce"
    assert reading.verp is not None and reading.verp.key == KEY
    assert reading.failures == [("aicha@asso.example", True)]
    assert reading.original_ids == [DIGEST_ID]


def test_a_forged_token_is_recognised_as_such_and_nothing_is_read(tmp_path) -> None:
    config = mail_config(tmp_path)
    reading = read(config, load("forged_token.eml", config))
    assert (reading.kind, reading.token, reading.reason) == ("reply", None, "forged token")
    assert reading.lines == []


# --- acting on the corpus ------------------------------------------------------------------


async def stances_of(db, participant_id: int) -> dict[str, tuple[str, str | None]]:
    async with db.session() as session:
        rows = (
            await session.exec(select(Stance).where(Stance.participant_id == participant_id))
        ).all()
        from models import Finding, FindingVersion

        result = {}
        for row in rows:
            version = await session.get(FindingVersion, row.finding_version_id)
            finding = await session.get(Finding, version.finding_id)
            result[finding.code] = (row.choice, row.reason)
        return result


async def outbox_rows(db, template: str) -> list[OutboxMessage]:
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


async def test_given_a_gmail_reply_then_stances_are_recorded_once_and_a_receipt_is_queued(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    raw = load("gmail_fr_top_posting.eml", config, key=story.aicha.reply_key)
    outcome = await replies.handle(config=config, database=db, raw=raw)
    assert outcome.status == "processed"
    assert await stances_of(db, story.aicha.id) == {
        "F1": ("confirm", None),
        "F2": (
            "contest",
            "les tiers-lieux de la métropole ont déjà une aide au fonctionnement depuis 2024.",
        ),
    }
    (receipt,) = await outbox_rows(db, "email_receipt")
    assert receipt.participant_id == story.aicha.id and receipt.interactive
    assert receipt.payload["in_reply_to"] == "<CAFx8kq3mTz9+0Yd7rJ2oQW@mail.gmail.com>"
    assert [item["codes"] for item in receipt.payload["processed"]] == [["F1"], ["F2"]]
    assert receipt.payload["ignored"] == [{"line": "Bonjour,", "why": "not_a_command"}]
    assert receipt.payload["awaiting"]["findings"] == ["F3"]
    # The same message delivered again changes nothing and writes no second receipt.
    again = await replies.handle(config=config, database=db, raw=raw)
    assert again.status == "duplicate"
    assert len(await outbox_rows(db, "email_receipt")) == 1


async def test_given_a_reply_from_another_address_then_nothing_is_applied_and_the_person_is_told(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    raw = load("gmail_fr_from_another_address.eml", config, key=story.aicha.reply_key)
    outcome = await replies.handle(config=config, database=db, raw=raw)
    assert outcome.status == "foreign_sender"
    assert await stances_of(db, story.aicha.id) == {}
    assert await outbox_rows(db, "email_receipt") == []
    (notice,) = await outbox_rows(db, "email_sender_mismatch")
    assert notice.participant_id == story.aicha.id and notice.address is None
    assert notice.payload["other_address"] == "aicha.benali.perso@gmail.example"


async def test_given_a_forged_token_then_nothing_is_applied_and_nobody_is_answered(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
        before = len((await session.exec(select(OutboxMessage))).all())
    raw = load("forged_token.eml", config, key=story.aicha.reply_key)
    assert (await replies.handle(config=config, database=db, raw=raw)).status == "rejected"
    async with db.session() as session:
        assert len((await session.exec(select(OutboxMessage))).all()) == before
        person = await session.get(Participant, story.aicha.id)
        assert person.opted_out_at is None
        (record,) = (await session.exec(select(InboundRecord))).all()
        assert (record.status, record.detail) == ("rejected", {"reason": "forged token"})
    assert await stances_of(db, story.aicha.id) == {}


async def test_given_a_dsn_then_one_bounce_is_counted_for_the_person_it_names(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    raw = load("postfix_dsn_bounce.eml", config, key=story.aicha.reply_key)
    assert (await replies.handle(config=config, database=db, raw=raw)).status == "bounce"
    async with db.session() as session:
        assert (await session.get(Participant, story.aicha.id)).bounce_count == 1
        assert (await session.get(Participant, story.bruno.id)).bounce_count == 0


async def test_given_an_out_of_office_then_it_is_dropped_without_an_answer(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    raw = load("outlook_fr_out_of_office.eml", config, key=story.aicha.reply_key)
    assert (await replies.handle(config=config, database=db, raw=raw)).status == "dropped"
    assert await stances_of(db, story.aicha.id) == {}
    assert await outbox_rows(db, "email_receipt") == []


async def test_given_an_html_only_outlook_reply_then_both_stances_are_recorded(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    raw = load("outlook_en_html_only.eml", config, key=story.bruno.reply_key)
    assert (await replies.handle(config=config, database=db, raw=raw)).status == "processed"
    assert await stances_of(db, story.bruno.id) == {
        "F2": ("confirm", None),
        "F3": ("contest", "the figures quoted date from 2019 & are out of date"),
    }
