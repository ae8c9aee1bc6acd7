"""Every message the process writes renders as an email, in French and in English.

A whole consultation runs (observations to ranking, questionnaires, the final plan); then each
distinct message it wrote, whatever its channel, is composed as the email sender would compose
it for an email reader, with its real payload. A template that does not match its payload fails
here rather than as a dead message in production.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from consultation import findings, followup, phases, questionnaires, reminders, trace
from mailer.compose import compose
from models import Consultation, OutboxMessage, Participant
from tests.consultation.evaluation_story import a_whole_process
from tests.factories import ALL_PHASES, make_participant
from tests.mailer.conftest import mail_config, review_story


async def test_every_message_of_a_whole_process_composes_as_an_email(db, clock, tmp_path) -> None:
    config = mail_config(tmp_path, public_url="https://palabre.mairie.example")
    async with db.session() as session:
        consultation, coordinator, _aicha, bruno, _chloe = await a_whole_process(
            session,
            clock,
            finish=True,
            questionnaires=True,
            phases=(*ALL_PHASES, "follow"),
            stance=True,
        )
        await trace.send_final_plan(
            session=session, consultation_id=consultation.id, actor_label="test"
        )
        final = await questionnaires.get_questionnaire(
            session=session, consultation_id=consultation.id, key="final"
        )
        await questionnaires.open_questionnaire(
            session=session, questionnaire_id=final.id, actor_label="test"
        )
        # After the vote: the coordinators' reminders, the answers, the follow-up.
        c = consultation.id
        await followup.remind_missing_decisions(session=session, consultation_id=c, key="t")
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A3",
            decision="retained with changes",
            wording="Un guichet unique <ouvert> le samedi.",
            reason="Le guichet ouvrira aussi le samedi.",
            lead="Maison de l'ESS",
            due=(clock.now() + timedelta(days=10)).date(),
            milestones=["Local trouvé"],
            by=coordinator,
        )
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A4",
            decision="not retained",
            reason="Une fête existe déjà.",
            by=coordinator,
        )
        clock.advance(days=11)
        await followup.remind_overdue(session=session, consultation_id=c, key="t")
        await followup.send_follow_digest(
            session=session, consultation_id=c, since=None, until=clock.now()
        )
        await followup.open_round(session=session, consultation_id=c, number=1)
        # A review elsewhere: a reminder, a revised finding, an extended deadline.
        story = await review_story(session)
        await make_participant(session, story.consultation, telegram_chat_id=77)
        await findings.record_stance(
            session=session, participant=story.aicha, code="F1", choice="confirm", channel="email"
        )
        f1 = await findings.get_finding(
            session=session, consultation_id=story.consultation.id, code="F1"
        )
        await findings.edit_finding(
            session=session, finding_id=f1.id, by=story.coordinator, text="Une version revue."
        )
        review = await phases.current_phase(session=session, consultation_id=story.consultation.id)
        await reminders.remind_phase(session=session, phase_id=review.id, offset_hours=48)
        await phases.extend_phase(
            session=session,
            phase_id=review.id,
            until=review.closes_at + timedelta(days=3),
            reason="Les associations demandent une semaine de plus.",
            by=story.coordinator,
        )
    async with db.session() as session:
        rows = list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())
        target = await session.get(Consultation, consultation.id)
        reader = await session.get(Participant, bruno.id)
        # A broadcast, with the payload consultation/broadcasts.py writes.
        rows.append(
            OutboxMessage(
                id=999,
                channel="email",
                participant_id=bruno.id,
                template="broadcast",
                payload={"text": "Réunion <jeudi> à 18 h", "category": None, "title": "Plan"},
                dedupe_key="broadcast:test",
                next_attempt_at=clock.now(),
                created_at=clock.now(),
            )
        )
        seen: dict[str, OutboxMessage] = {}
        for row in rows:
            seen.setdefault(row.template, row)
        assert {
            "phase_opened",
            "phase_closed",
            "phase_extended",
            "findings_published",
            "finding_revised",
            "reminder",
            "questionnaire_opened",
            "final_plan",
            "broadcast",
            "plan_missing",
            "plan_overdue",
            "follow_digest",
            "followup_questionnaire",
        } <= set(seen)
        for template, row in sorted(seen.items()):
            for locale in ("fr", "en"):
                reader.locale = locale
                email = compose(
                    config=config, message=row, participant=reader, consultation=target
                ).message
                text = email.get_body(("plain",)).get_content()
                html = email.get_body(("html",)).get_content()
                assert email["Subject"].strip(), template
                assert text.strip() and html.strip(), template
                assert "{{" not in text and "{%" not in html, template
                assert "<jeudi>" not in html, "text a person wrote must be escaped"
        print("\ncomposed as emails:", ", ".join(sorted(seen)))
