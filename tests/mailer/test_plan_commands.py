"""After the vote, by email: PLAN for the whole plan, `A3 oui` in the follow-up questionnaire,
and SUIVI following each contribution up to the local government's answer and its progress."""

from __future__ import annotations

from sqlmodel import select

from consultation import followup
from models import FollowUpAnswer
from tests.consultation.evaluation_story import a_whole_process
from tests.factories import ALL_PHASES
from tests.mailer.conftest import mail_config
from tests.mailer.test_privacy_commands import drain, html_of, reply, rows, text_of


async def after_the_vote(session, clock):
    consultation, celine, aicha, bruno, _chloe = await a_whole_process(
        session, clock, phases=(*ALL_PHASES, "follow"), stance=True
    )
    c = consultation.id
    await followup.decide(
        session=session,
        consultation_id=c,
        code="A3",
        decision="retained",
        lead="Maison de l'ESS",
        due="2028-06",
        by=celine,
    )
    await followup.decide(
        session=session,
        consultation_id=c,
        code="A4",
        decision="not retained",
        reason="Une fête existe déjà au printemps.",
        by=celine,
    )
    await followup.record_progress(
        session=session,
        consultation_id=c,
        code="A3",
        status="late",
        note="Le local n'est pas prêt.",
        by=celine,
    )
    return consultation, aicha, bruno


async def test_plan_by_email_shows_every_answer_and_suivi_goes_up_to_the_progress(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        _, aicha, bruno = await after_the_vote(session, clock)
        aicha.locale = "en"
        session.add(aicha)
    await drain(db, config)

    outcome = await reply(db, config, bruno, "PLAN")
    assert outcome.status == "processed" and outcome.receipt is None
    [row] = await rows(db, "plan")
    assert (row.channel, row.participant_id) == ("email", bruno.id)
    [mail] = await drain(db, config)
    assert mail["Subject"].replace("\u00a0", " ") == "Plan ESS de test : le plan d’actions"
    text = text_of(mail)
    assert "A3 (#1) Un guichet unique d'accompagnement de l'ESS." in text
    assert "retenue · en retard · échéance\u00a0: 30 juin 2028" in text
    assert "Motif\u00a0: Une fête existe déjà au printemps." in text
    assert "1 action attend encore la réponse de la collectivité." in text
    assert "Pilote\u00a0: Maison de l&#39;ESS" in html_of(mail)

    # SUIVI follows his observation to F1, and on to A3's answer and progress.
    await reply(db, config, bruno, "SUIVI")
    [mail] = await drain(db, config)
    assert "rang 1 sur 3 → retenue · en retard · échéance\u00a0: 30 juin 2028" in text_of(mail)

    await reply(db, config, aicha, "the plan")
    [mail] = await drain(db, config)
    assert "retained · late · due June 30, 2028" in text_of(mail)


async def test_members_answer_the_follow_up_questionnaire_by_email(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path)
    async with db.session() as session:
        consultation, aicha, bruno = await after_the_vote(session, clock)
        await followup.decide(
            session=session,
            consultation_id=consultation.id,
            code="A2",
            decision="retained",
            actor_label="test",
        )
        await followup.open_round(session=session, consultation_id=consultation.id, number=1)
        aicha.locale = "en"
        session.add(aicha)
    invitations = await drain(db, config)
    [invited] = [
        mail
        for mail in invitations
        if mail["To"].addresses[0].addr_spec == bruno.email
        and "le plan avance-t-il comme annoncé" in mail["Subject"]
    ]
    assert "A3 oui" in text_of(invited) and "mailto:" in html_of(invited)

    await reply(
        db,
        config,
        bruno,
        "Bonjour,\n\nA3 en partie : le guichet n'ouvre que le mardi.\nA2 non\nA4 oui\n\nBruno",
    )
    [receipt] = await drain(db, config)
    text = text_of(receipt)
    assert "A3\u00a0: en partie" in text and "A2\u00a0: non" in text
    assert "Vous n’êtes pas interrogé·e sur A4" in text.replace("'", "’")
    await reply(db, config, aicha, "A3 don't know")
    [receipt] = await drain(db, config)
    assert "A3: don't know" in text_of(receipt)

    async with db.session() as session:
        answers = (await session.exec(select(FollowUpAnswer).order_by(FollowUpAnswer.id))).all()
    assert [(a.participant_id, a.value, a.remark, a.channel) for a in answers] == [
        (bruno.id, "partly", "le guichet n'ouvre que le mardi.", "email"),
        (bruno.id, "no", None, "email"),
        (aicha.id, "unknown", None, "email"),
    ]
