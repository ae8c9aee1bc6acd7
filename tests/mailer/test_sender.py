"""The email sender against a real SMTP server (aiosmtpd) on 127.0.0.1.

Each story enqueues real messages through the outbox, drains it, and checks what crossed the
wire and what the database says: sent with our Message-ID, retried later, or dead and counted
as a bounce.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from datetime import timedelta

from sqlmodel import select

from consultation import outbox
from mailer import tokens
from mailer.sender import EmailSender
from models import Channel, EmailStatus, OutboxMessage, OutboxStatus, Participant
from tests.factories import make_consultation, make_coordinator, make_participant
from tests.mailer.conftest import mail_config, review_story


def smtp_config(tmp_path, server, **overrides):
    return mail_config(
        tmp_path, mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=server.port, **overrides
    )


async def invite(session, people) -> list[int]:
    """Queue one invitation email per person; returns the outbox ids."""
    ids = []
    for person in people:
        await outbox.enqueue(
            session=session,
            channel=Channel.EMAIL,
            template="invitation",
            payload={"telegram_link": None, "expires_at": None, "consented": False},
            dedupe_key=f"test-invitation:{person.id}",
            participant_id=person.id,
            consultation_id=person.consultation_id,
        )
    rows = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    ids = [row.id for row in rows if row.template == "invitation"]
    return ids


async def rows(db, **where) -> list[OutboxMessage]:
    async with db.session() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for name, value in where.items():
            query = query.where(getattr(OutboxMessage, name) == value)
        return list((await session.exec(query)).all())


async def test_a_digest_leaves_with_our_headers_and_its_message_id_is_stored(
    db, clock, tmp_path, smtp_server
) -> None:
    config = smtp_config(tmp_path, smtp_server, public_url="https://palabre.mairie.example")
    async with db.session() as session:
        story = await review_story(session)
        from consultation import digests

        await digests.enqueue_digest(session=session, participant=story.aicha)
        key = story.aicha.reply_key
    sender = EmailSender(config, db)
    assert await sender.drain_once() >= 1
    await sender.close()

    stored = (await rows(db, template="digest"))[0]
    assert stored.status == OutboxStatus.SENT
    digest = next(m for m in smtp_server.messages if m["Message-ID"] == stored.external_id)
    assert digest.rcpt_tos == ("aicha@asso.example",)
    message = digest.message
    assert tokens.parse(config, message["Reply-To"]).key == key
    assert digest.mail_from == tokens.verp_address(config, key)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Precedence"] == "bulk"
    assert message["List-Id"].endswith(".mairie.example>")
    unsubscribe = message["List-Unsubscribe"]
    assert f"<mailto:{message['Reply-To']}?subject=unsubscribe>" in unsubscribe
    assert "<https://palabre.mairie.example/email/unsubscribe/" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # On the wire, literally (mail clients ignore an RFC 2047-encoded one), folded at the comma.
    head = digest.raw.split(b"\r\n\r\n", 1)[0]
    wire = head.split(b"List-Unsubscribe: ", 1)[1].split(b"\r\nList-Unsubscribe-Post", 1)[0]
    assert wire.startswith(b"<mailto:" + message["Reply-To"].encode() + b"?subject=unsubscribe>,")
    assert b"\r\n <https://palabre.mairie.example/email/unsubscribe/" in wire
    assert b"=?" not in wire
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "F1" in text and "F2" in text and "F3" in text
    assert f"mailto:{message['Reply-To']}?subject=" in html
    assert "body=F1%20oui" in html
    # "Answer them all in one email" opens with the codes and no answer: nothing is confirmed
    # for the reader in advance.
    # (findings come in the reader's own random order)
    (everything,) = [b for b in re.findall(r"body=([^\"&]*)", html) if b.count("%0A") == 3]
    assert sorted(everything.split("%0A")[:3]) == ["F1%20", "F2%20", "F3%20"]


async def test_without_a_public_url_there_is_no_one_click_header(
    db, clock, tmp_path, smtp_server
) -> None:
    config = smtp_config(tmp_path, smtp_server)
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation)
        await invite(session, [person])
    sender = EmailSender(config, db)
    await sender.drain_once()
    await sender.close()
    (received,) = smtp_server.messages
    assert received["List-Unsubscribe"].startswith("<mailto:")
    assert "https" not in received["List-Unsubscribe"]
    assert received["List-Unsubscribe-Post"] is None


async def test_forty_messages_go_through_four_reused_connections(
    db, clock, tmp_path, smtp_server
) -> None:
    config = smtp_config(tmp_path, smtp_server, smtp_concurrency=4)
    async with db.session() as session:
        consultation = await make_consultation(session)
        people = [await make_participant(session, consultation) for _ in range(40)]
        await invite(session, people)
    sender = EmailSender(config, db)
    assert await sender.drain_once() == 40
    assert smtp_server.connections_opened == 4
    assert len({m.message["Message-ID"] for m in smtp_server.messages}) == 40
    # The next drain reuses the same connections.
    async with db.session() as session:
        more = [await make_participant(session, consultation) for _ in range(8)]
        await invite(session, more)
    assert await sender.drain_once() == 8
    await sender.close()
    assert smtp_server.connections_opened == 4
    assert {m.connection for m in smtp_server.messages} == {1, 2, 3, 4}


async def test_a_451_is_retried_later_with_backoff(db, clock, tmp_path, smtp_server) -> None:
    config = smtp_config(tmp_path, smtp_server, smtp_concurrency=1)
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation, email="lea@asso.example")
        await invite(session, [person])
    smtp_server.fail_next(451, at="RCPT")
    sender = EmailSender(config, db)
    assert await sender.drain_once() == 0
    (row,) = await rows(db)
    assert row.status == OutboxStatus.PENDING and row.attempts == 1
    assert "451" in row.last_error
    assert row.next_attempt_at > clock.now() + timedelta(seconds=10)
    assert await sender.drain_once() == 0  # not due yet
    clock.advance(minutes=2)
    assert await sender.drain_once() == 1
    await sender.close()
    (row,) = await rows(db)
    assert row.status == OutboxStatus.SENT
    assert len(smtp_server.messages) == 1
    # The refusal did not cost the connection: the retry went through the same one.
    assert smtp_server.connections_opened == 1


async def test_a_421_or_a_dropped_connection_is_retried_on_a_new_connection(
    db, clock, tmp_path, smtp_server
) -> None:
    config = smtp_config(tmp_path, smtp_server, smtp_concurrency=1)
    async with db.session() as session:
        consultation = await make_consultation(session)
        first = await make_participant(session, consultation)
        second = await make_participant(session, consultation)
        await invite(session, [first, second])
    smtp_server.fail_next(421, at="MAIL")
    smtp_server.drop_next(at="DATA")
    sender = EmailSender(config, db)
    assert await sender.drain_once() == 0
    messages = await rows(db)
    assert [m.status for m in messages] == [OutboxStatus.PENDING, OutboxStatus.PENDING]
    assert "421" in messages[0].last_error
    assert "dropped" in messages[1].last_error
    clock.advance(minutes=2)
    assert await sender.drain_once() == 2
    await sender.close()
    assert len(smtp_server.messages) == 2
    assert smtp_server.connections_opened == 3


async def test_a_550_is_a_hard_bounce_and_the_third_marks_the_address_and_tells_coordinators(
    db, clock, tmp_path, smtp_server
) -> None:
    config = smtp_config(tmp_path, smtp_server, smtp_concurrency=1, bounce_limit=3)
    async with db.session() as session:
        consultation = await make_consultation(session)
        celine = await make_coordinator(session, consultation, email="celine@mairie.example")
        other = await make_participant(session, consultation, email="other@asso.example")
        lea = await make_participant(
            session, consultation, name="Léa Petit", email="lea@gone.example"
        )
    sender = EmailSender(config, db)
    for attempt in range(1, 4):
        async with db.session() as session:
            await outbox.enqueue(
                session=session,
                channel=Channel.EMAIL,
                template="invitation",
                payload={"telegram_link": None, "expires_at": None, "consented": False},
                dedupe_key=f"bounce-{attempt}",
                participant_id=lea.id,
                consultation_id=consultation.id,
            )
        smtp_server.fail_next(550, at="RCPT", recipient="lea@gone.example")
        assert await sender.drain_once() == 0
        async with db.session() as session:
            person = await session.get(Participant, lea.id)
            assert person.bounce_count == attempt
            expected = EmailStatus.BOUNCED if attempt == 3 else EmailStatus.OK
            assert person.email_status == expected
    dead = await rows(db, template="invitation")
    assert [m.status for m in dead] == [OutboxStatus.DEAD] * 3
    assert all("550" in m.last_error for m in dead)
    (told,) = await rows(db, template="email_bounced")
    assert told.participant_id == celine.id
    assert told.payload["person"] == {
        "name": "Léa Petit",
        "email": "lea@gone.example",
        "organisation": lea.organisation,
    }
    assert "other@asso.example" not in str(told.payload)
    # The coordinators' notice goes out; nothing more is written to the bounced address.
    assert await sender.drain_once() == 1
    await sender.close()
    (notice,) = smtp_server.messages
    assert notice.rcpt_tos == ("celine@mairie.example",)
    assert "lea@gone.example" in notice.message.get_body(("plain",)).get_content()
    async with db.session() as session:
        person = await session.get(Participant, lea.id)
        assert outbox.channel_for(person) is None
        del other


async def test_the_file_backend_writes_one_eml_per_message_and_rewrites_it_in_place(
    db, clock, tmp_path
) -> None:
    config = mail_config(tmp_path, mail_backend="file")
    async with db.session() as session:
        consultation = await make_consultation(session)
        people = [await make_participant(session, consultation) for _ in range(3)]
        ids = await invite(session, people)
    sender = EmailSender(config, db)
    assert await sender.drain_once() == 3
    files = sorted(p.name for p in (tmp_path / "mail").iterdir())
    assert files == [f"20260302T090000000000Z-{i}.eml" for i in ids]
    body = (tmp_path / "mail" / files[0]).read_bytes()
    assert b"Message-ID: <palabre." in body and b"\r\n" in body
    # A crash after writing and before recording: the lease runs out and the same file is
    # written again, not a second one.
    async with db.session() as session:
        row = await session.get(OutboxMessage, ids[0])
        row.status, row.claimed_until = OutboxStatus.SENDING, clock.now()
        session.add(row)
    clock.advance(minutes=1)
    assert await sender.drain_once() == 1
    assert sorted(p.name for p in (tmp_path / "mail").iterdir()) == files


def _blackhole() -> socket.socket:
    """A listening socket nobody answers on: a relay that hangs before its greeting."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener


async def test_a_sender_that_dies_mid_batch_leaves_each_message_to_be_sent_once_after_restart(
    db, clock, tmp_path, smtp_server
) -> None:
    async with db.session() as session:
        consultation = await make_consultation(session)
        people = [await make_participant(session, consultation) for _ in range(6)]
        await invite(session, people)
    # A first sender sends half of them...
    first = EmailSender(smtp_config(tmp_path, smtp_server, smtp_concurrency=1), db, batch_size=3)
    assert await first._deliver((await first._claim())[0]) == 3
    await first.close()
    assert len(await rows(db, status=OutboxStatus.SENT)) == 3
    # ...then it claims the rest and dies while its relay hangs.
    hole = _blackhole()
    try:
        dying = EmailSender(
            mail_config(
                tmp_path, mail_backend="smtp", smtp_port=hole.getsockname()[1], smtp_timeout=30
            ),
            db,
            batch_size=3,
        )
        task = asyncio.create_task(dying.drain_once())
        # It has claimed its batch (committed) and is waiting for the relay's greeting.
        hole.setblocking(False)
        deadline = time.monotonic() + 5
        while True:
            try:
                accepted, _ = hole.accept()
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the dying sender never reached its relay"
                await asyncio.sleep(0.01)
        assert len(await rows(db, status=OutboxStatus.SENDING)) == 3
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        accepted.close()
    finally:
        hole.close()
    # The restarted sender leaves the dead one's claim alone until the lease runs out...
    restarted = EmailSender(smtp_config(tmp_path, smtp_server, smtp_concurrency=2), db)
    assert await restarted.drain_once() == 0
    clock.advance(minutes=6)
    # ...then sends each remaining message exactly once.
    assert await restarted.drain_once() == 3
    await restarted.close()
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert {m.status for m in await rows(db)} == {OutboxStatus.SENT}


async def test_throughput_through_four_connections(db, clock, tmp_path, smtp_server) -> None:
    """Not a benchmark, a floor: 200 emails through aiosmtpd in well under the test timeout."""
    config = smtp_config(tmp_path, smtp_server, smtp_concurrency=4)
    async with db.session() as session:
        consultation = await make_consultation(session)
        people = [await make_participant(session, consultation) for _ in range(200)]
        await invite(session, people)
    sender = EmailSender(config, db)
    started = time.perf_counter()
    assert await sender.drain_once() == 200
    elapsed = time.perf_counter() - started
    await sender.close()
    print(
        f"\n200 emails in {elapsed:.2f}s: {200 / elapsed:.0f}/s "
        f"through 4 connections ({db.dialect})"
    )
    assert smtp_server.connections_opened == 4
    assert elapsed < 60


async def test_run_sends_as_messages_arrive_and_stops_when_told(
    db, clock, tmp_path, smtp_server
) -> None:
    config = smtp_config(tmp_path, smtp_server)
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation)
    sender = EmailSender(config, db)
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    async with db.session() as session:
        await invite(session, [person])
    await smtp_server.awaiting(1, timeout=10)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    # The connection is closed on the way out (QUIT, then the server sees the socket close).
    deadline = time.monotonic() + 5
    while smtp_server.connections_open and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert smtp_server.connections_open == 0


async def test_a_template_that_cannot_render_is_dead_at_once_and_a_forgotten_person_cancelled(
    db, clock, tmp_path, smtp_server
) -> None:
    config = smtp_config(tmp_path, smtp_server)
    async with db.session() as session:
        consultation = await make_consultation(session)
        person = await make_participant(session, consultation)
        gone = await make_participant(session, consultation)
        for key, template, who in (
            ("bug", "no_such_template", person),
            ("gone", "invitation", gone),
        ):
            await outbox.enqueue(
                session=session,
                channel=Channel.EMAIL,
                template=template,
                payload={"telegram_link": None, "expires_at": None, "consented": False},
                dedupe_key=key,
                participant_id=who.id,
                consultation_id=consultation.id,
            )
        gone.erased_at, gone.email = clock.now(), None
        session.add(gone)
    sender = EmailSender(config, db)
    assert await sender.drain_once() == 0
    await sender.close()
    bug, forgotten = await rows(db)
    assert bug.status == OutboxStatus.DEAD and bug.last_error.startswith("render: ")
    assert forgotten.status == OutboxStatus.CANCELLED
    assert smtp_server.messages == []
