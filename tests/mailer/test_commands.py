"""Each reply command calls one consultation function; the receipt says what became of each line.

Stories run through `mailer.replies.handle` with a signed reply address, so they exercise the
same path as a message read from the mailbox.
"""

from __future__ import annotations

from sqlmodel import select

from consultation import actions, observations, phases, questionnaires
from mailer import replies, tokens
from models import (
    Action,
    Answer,
    Ballot,
    Channel,
    Observation,
    OutboxMessage,
    OutboxStatus,
    Participant,
    Phase,
)
from tests.factories import make_consultation, make_coordinator, make_participant
from tests.mailer.conftest import mail_config, reply_message, review_story


async def send(db, config, person, body: str, subject: str = "Re: Plan ESS") -> dict:
    """Aïcha (or whoever) replies from her own address; returns the receipt's payload."""
    raw = reply_message(
        to=tokens.reply_address(config, person.reply_key),
        sender=person.email,
        body=body,
        subject=subject,
    )
    outcome = await replies.handle(config=config, database=db, raw=raw)
    assert outcome.status == "processed", outcome
    return outcome.receipt


async def test_contesting_without_a_reason_is_refused_and_explained_while_the_rest_is_recorded(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    receipt = await send(db, config, story.aicha, "F1 oui\nF2 non\nF9 oui\nF3 peut-être")
    assert [item["codes"] for item in receipt["processed"]] == [["F1"]]
    refused = {item["line"]: item["reason"] for item in receipt["refused"]}
    assert set(refused) == {"F2 non", "F9 oui"}
    assert "F2" in refused["F2 non"] and refused["F2 non"] != "stance.reason_required"
    assert receipt["not_understood"] == ["F3 peut-être"]


async def test_a_later_line_replaces_an_earlier_one_for_the_same_finding(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    receipt = await send(db, config, story.aicha, "F1 oui\nF1 non: à la réflexion, non")
    assert [(i["codes"], i["choice"]) for i in receipt["processed"]] == [(["F1"], "contest")]
    assert receipt["ignored"] == [{"line": "F1 oui", "why": "replaced"}]


async def in_phase(session, kind: str, **kwargs):
    consultation = await make_consultation(session, current=kind, **kwargs)
    coordinator = await make_coordinator(session, consultation, email="celine@mairie.example")
    aicha = await make_participant(session, consultation, name="Aïcha", email="aicha@asso.example")
    return consultation, coordinator, aicha


async def test_observations_and_their_following_lines_are_recorded_by_email(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        _consultation, _, aicha = await in_phase(session, "observe")
    receipt = await send(
        db,
        config,
        aicha,
        "Bonjour,\n\nOBS : les petites coopératives n'ont aucun accompagnement\n"
        "spécifique du département.\n\nOBS: les tiers-lieux ferment l'été\n\nMerci !",
    )
    assert [item["kind"] for item in receipt["processed"]] == ["observation", "observation"]
    async with db.session() as session:
        rows = (await session.exec(select(Observation).order_by(Observation.id))).all()
        assert [(o.text, o.channel) for o in rows] == [
            (
                "les petites coopératives n'ont aucun accompagnement\nspécifique du département.",
                Channel.EMAIL,
            ),
            ("les tiers-lieux ferment l'été", Channel.EMAIL),
        ]
    assert {item["line"] for item in receipt["ignored"]} == {"Bonjour,", "Merci !"}


async def test_a_proposal_in_the_wrong_phase_is_refused_with_the_phase_named(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        _, _, aicha = await in_phase(session, "observe")
    receipt = await send(db, config, aicha, "PROP: un guichet unique")
    assert receipt["processed"] == []
    (refusal,) = receipt["refused"]
    assert refusal["line"] == "PROP: un guichet unique"
    # A sentence for the person, not an error code.
    assert refusal["reason"].endswith(".") and "phase.not_open" not in refusal["reason"]


async def test_proposals_get_their_code_in_the_receipt(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        _, _, aicha = await in_phase(session, "propose")
    receipt = await send(db, config, aicha, "PROP - un guichet unique pour l'ESS")
    (item,) = receipt["processed"]
    assert (item["kind"], item["code"]) == ("proposal", "A1")
    async with db.session() as session:
        action = (await session.exec(select(Action))).one()
        assert (action.text, action.proposer_id) == ("un guichet unique pour l'ESS", aicha.id)


async def test_a_ranking_by_email_is_a_ballot_and_a_bad_code_is_explained(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        consultation, coordinator, aicha = await in_phase(session, "rank")
        for text in ("Un guichet unique", "Des prêts d'honneur", "Une fête de l'ESS"):
            await actions.add_action(
                session=session, consultation_id=consultation.id, by=coordinator, text=text
            )
        await actions.shortlist(
            session=session,
            consultation_id=consultation.id,
            by=coordinator,
            codes=["A1", "A2", "A3"],
        )
    receipt = await send(db, config, aicha, "CLASSEMENT A9 A1")
    assert "A9" in receipt["refused"][0]["reason"]
    receipt = await send(db, config, aicha, "classement : A3, A1 > A2")
    assert receipt["processed"][0]["codes"] == ["A3", "A1", "A2"]
    async with db.session() as session:
        assert await actions.ballot_of(session=session, participant=aicha) == ["A3", "A1", "A2"]
        assert len((await session.exec(select(Ballot))).all()) == 1


async def test_questionnaire_answers_by_number_and_in_words(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        consultation, _coordinator, aicha = await in_phase(session, "observe", questionnaires=True)
        await observations.submit_observation(
            session=session, participant=aicha, text="Une observation.", channel=Channel.EMAIL
        )
        observe = (
            await session.exec(
                select(Phase)
                .where(Phase.consultation_id == consultation.id)
                .where(Phase.kind == "observe")
            )
        ).one()
        clock.advance(days=2)
        await phases.close_phase(session=session, phase_id=observe.id, actor_label="test")
        step = await questionnaires.get_questionnaire(
            session=session, consultation_id=consultation.id, key="after-observe"
        )
        await questionnaires.open_questionnaire(
            session=session, questionnaire_id=step.id, actor_label="test"
        )
    receipt = await send(
        db, config, aicha, "Q1 4/5\nQ2 : 2\nQ3 Plus de temps entre les réunions\npour lire.\nQ4 1"
    )
    assert [(i["position"], i["value"]) for i in receipt["processed"]] == [
        (1, "4"),
        (2, "2"),
        (3, "Plus de temps entre les réunions pour lire."),
    ]
    assert "4" in receipt["refused"][0]["reason"]
    async with db.session() as session:
        answers = (await session.exec(select(Answer).order_by(Answer.question_id))).all()
        assert [(a.value_int, a.value_text) for a in answers] == [
            (4, None),
            (2, None),
            (None, "Plus de temps entre les réunions\npour lire."),
        ]


async def test_q_without_an_open_questionnaire_is_explained(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    receipt = await send(db, config, story.aicha, "Q1 4")
    assert receipt["refused"][0]["line"] == "Q1 4"
    assert "Q" in receipt["refused"][0]["reason"]


async def test_cadence_language_consent_and_help(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        consultation = await make_consultation(session, current="observe")
        lea = await make_participant(
            session, consultation, email="lea@asso.example", consented=False
        )
    receipt = await send(db, config, lea, "OBS: avant d'accepter")
    assert receipt["processed"] == [] and len(receipt["refused"]) == 1
    receipt = await send(db, config, lea, "OBS: après\nJ'accepte\nHebdo\nENGLISH\nAide")
    # Consent runs first, so the observation on the line above it counts.
    assert [i["kind"] for i in receipt["processed"]] == [
        "consent",
        "locale",
        "observation",
        "cadence",
        "help",
    ]
    assert receipt["help"] is True
    async with db.session() as session:
        person = await session.get(Participant, lea.id)
        assert person.consent_at is not None
        assert (person.digest_cadence, person.locale) == ("weekly", "en")


async def test_stop_by_subject_as_list_unsubscribe_mailto_sends_it(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    receipt = await send(db, config, story.aicha, "", subject="unsubscribe")
    assert [i["kind"] for i in receipt["processed"]] == ["stop"]
    assert receipt["stopped"] is True
    async with db.session() as session:
        person = await session.get(Participant, story.aicha.id)
        assert person.opted_out_at is not None
        pending = (
            await session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.participant_id == story.aicha.id)
                .where(OutboxMessage.status == OutboxStatus.PENDING)
            )
        ).all()
        # Everything else was cancelled; only the confirmation of the STOP remains.
        assert [m.template for m in pending] == ["email_receipt"]
    # Writing a command again means coming back.
    receipt = await send(db, config, story.aicha, "F1 oui")
    assert receipt["processed"][0]["codes"] == ["F1"] and receipt["stopped"] is False
    async with db.session() as session:
        assert (await session.get(Participant, story.aicha.id)).opted_out_at is None


async def test_an_email_with_nothing_recognisable_quotes_it_back(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    receipt = await send(
        db, config, story.aicha, "Je suis d'accord avec le premier\net pas avec le deuxième"
    )
    assert receipt["processed"] == [] and receipt["refused"] == []
    assert receipt["not_understood"] == [
        "Je suis d'accord avec le premier",
        "et pas avec le deuxième",
    ]


async def test_our_own_receipt_sent_back_to_us_gets_no_answer_so_no_loop(
    db, clock, tmp_path
) -> None:
    """A mailbox that forwards everything to the reply address must not start a ping-pong."""
    from mailer.compose import compose
    from models import Consultation

    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    await send(db, config, story.aicha, "F1 oui")
    async with db.session() as session:
        row = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.template == "email_receipt")
            )
        ).one()
        person = await session.get(Participant, story.aicha.id)
        target = await session.get(Consultation, story.consultation.id)
        ours = compose(config=config, message=row, participant=person, consultation=target)
    # Forwarded as is, from her address to her reply address, without Auto-Submitted.
    forwarded = ours.message
    del forwarded["Auto-Submitted"], forwarded["Precedence"], forwarded["From"]
    del forwarded["To"], forwarded["Message-ID"]
    forwarded["From"] = "aicha@asso.example"
    forwarded["To"] = tokens.reply_address(config, story.aicha.reply_key)
    forwarded["Message-ID"] = "<forwarded-1@asso.example>"
    outcome = await replies.handle(config=config, database=db, raw=bytes(forwarded))
    assert outcome.status == "processed" and outcome.receipt is None
    async with db.session() as session:
        receipts = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.template == "email_receipt")
            )
        ).all()
        assert len(receipts) == 1


async def test_no_more_than_twenty_receipts_an_hour(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        story = await review_story(session)
    for number in range(22):
        raw = reply_message(
            to=tokens.reply_address(config, story.aicha.reply_key),
            body=f"F1 {'oui' if number % 2 else 'abstention'}",
        )
        await replies.handle(config=config, database=db, raw=raw)
    async with db.session() as session:
        receipts = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.template == "email_receipt")
            )
        ).all()
        assert len(receipts) == 20


def test_help_lists_every_command_in_its_readers_words() -> None:
    """Given the one list of commands, when HELP is shown in French or in English, then it has
    one line per command, in that order, each with the word our links use in that language."""
    from mailer.commands import COMMANDS, help_names, reply_words
    from templates.render import environment

    for locale in ("fr", "en"):
        words = reply_words(locale)
        help_lines = environment(locale).get_template("email/_receipt.txt").module.help_lines
        lines = str(help_lines(words, help_names())).splitlines()
        assert len(lines) == len(COMMANDS) + 1  # and the closing sentence
        for command, line in zip(COMMANDS, lines, strict=False):
            shown = command.shown_words(locale)
            if command.name != "locale":  # "ENGLISH or FRANÇAIS": each name in its language
                assert all(word in line for word in shown.values()), (command.name, line)
    assert reply_words("fr")["consent"] == "J'ACCEPTE"
    assert reply_words("en")["rank"] == "RANK"
