"""The test SMTP server against the real aiosmtplib client."""

from __future__ import annotations

import socket
from email.message import EmailMessage

import aiosmtplib
import pytest

from tests.servers.smtp import SmtpServer

SENDER = "palabre@mairie.example"
AICHA = "aicha@asso.example"
BRUNO = "bruno@coop.example"


def digest(to: str = AICHA, subject: str = "Votre point hebdomadaire") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Palabre <{SENDER}>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("F3 : confirmez-vous ? Répondez « F3 confirm ».")
    return message


def client(server: SmtpServer) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(hostname=server.host, port=server.port, timeout=5, start_tls=False)


@pytest.mark.asyncio
async def test_records_envelope_bytes_and_parsed_message(smtp_server: SmtpServer) -> None:
    await aiosmtplib.send(digest(), hostname=smtp_server.host, port=smtp_server.port)

    (received,) = await smtp_server.awaiting(1)
    assert received.mail_from == SENDER
    assert received.rcpt_tos == (AICHA,)
    assert received["Subject"] == "Votre point hebdomadaire"
    assert "Répondez « F3 confirm »" in received.message.get_content()
    assert b"Subject: Votre point hebdomadaire" in received.raw
    assert smtp_server.connections_opened == 1


@pytest.mark.asyncio
async def test_one_connection_carries_three_messages(smtp_server: SmtpServer) -> None:
    async with client(smtp_server) as smtp:
        for number in range(3):
            await smtp.send_message(digest(subject=f"Message {number}"))

    received = await smtp_server.awaiting(3)
    assert [r["Subject"] for r in received] == ["Message 0", "Message 1", "Message 2"]
    assert {r.connection for r in received} == {1}
    assert smtp_server.connections_opened == 1


@pytest.mark.asyncio
async def test_451_at_rcpt_refuses_the_recipient(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(451, at="RCPT")

    async with client(smtp_server) as smtp:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as raised:
            await smtp.send_message(digest())
        (refused,) = raised.value.recipients
        assert (refused.code, refused.recipient) == (451, AICHA)
        # The connection stays usable: the retry goes through on it.
        await smtp.send_message(digest())

    assert len(await smtp_server.awaiting(1)) == 1
    assert smtp_server.connections_opened == 1


@pytest.mark.asyncio
async def test_550_for_one_recipient_lets_the_others_through(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(550, at="RCPT", recipient=BRUNO)

    async with client(smtp_server) as smtp:
        errors, _ = await smtp.send_message(digest(), recipients=[AICHA, BRUNO])

    assert errors[BRUNO].code == 550
    (received,) = await smtp_server.awaiting(1)
    assert received.rcpt_tos == (AICHA,)


@pytest.mark.asyncio
async def test_451_at_data_raises_data_error(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(451, at="DATA", message="4.7.1 Greylisted, come back later")

    with pytest.raises(aiosmtplib.SMTPDataError) as raised:
        await aiosmtplib.send(digest(), hostname=smtp_server.host, port=smtp_server.port)

    assert raised.value.code == 451
    assert "Greylisted" in raised.value.message
    assert smtp_server.messages == []


@pytest.mark.asyncio
async def test_550_at_data_is_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(550, at="DATA", message="5.7.1 Message rejected as spam")

    with pytest.raises(aiosmtplib.SMTPDataError) as raised:
        await aiosmtplib.send(digest(), hostname=smtp_server.host, port=smtp_server.port)

    assert raised.value.code == 550


@pytest.mark.asyncio
async def test_421_closes_the_connection(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(421, at="MAIL")

    async with client(smtp_server) as smtp:
        with pytest.raises(aiosmtplib.SMTPResponseException) as raised:
            await smtp.send_message(digest())
        assert raised.value.code == 421
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await smtp.send_message(digest())


@pytest.mark.asyncio
async def test_dropped_connection_during_data(smtp_server: SmtpServer) -> None:
    smtp_server.drop_next()

    async with client(smtp_server) as smtp:
        with pytest.raises(aiosmtplib.SMTPServerDisconnected):
            await smtp.send_message(digest())

    # Reconnecting works and the message then arrives, on a second connection.
    await aiosmtplib.send(digest(), hostname=smtp_server.host, port=smtp_server.port)
    (received,) = await smtp_server.awaiting(1)
    assert received.connection == 2
    assert smtp_server.connections_opened == 2


@pytest.mark.asyncio
async def test_failures_apply_in_order_and_expire(smtp_server: SmtpServer) -> None:
    smtp_server.fail_next(451, times=2, at="DATA")

    async with client(smtp_server) as smtp:
        for _ in range(2):
            with pytest.raises(aiosmtplib.SMTPDataError):
                await smtp.send_message(digest())
        await smtp.send_message(digest())

    assert len(await smtp_server.awaiting(1)) == 1


def test_wait_for_times_out_with_a_clear_message(smtp_server: SmtpServer) -> None:
    with pytest.raises(TimeoutError, match="got 0"):
        smtp_server.wait_for(1, timeout=0.05)


def test_start_stop_twice_and_ports_are_released() -> None:
    server = SmtpServer()
    for _ in range(2):
        with server:
            port = server.port
            assert port > 0

    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port)):
        pass
