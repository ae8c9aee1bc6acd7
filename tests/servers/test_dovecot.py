"""Dovecot for the IMAP tests: it starts, holds mail, and answers the real aioimaplib client."""

from __future__ import annotations

import itertools
import re
import socket
from email.message import EmailMessage
from pathlib import Path

import aioimaplib
import pytest

from tests.servers.dovecot import Dovecot, DovecotNotInstalled


def reply(subject: str, body: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Aïcha <aicha@asso.example>"
    message["To"] = "palabre+r.abc123@mairie.example"
    message["Subject"] = subject
    message["Message-ID"] = f"<{abs(hash(subject))}@asso.example>"
    message.set_content(body)
    return bytes(message)


def fetched_bodies(lines: list[bytes | bytearray]) -> dict[int, bytes]:
    """UID → raw message from an aioimaplib UID FETCH response.

    aioimaplib gives the line announcing each literal, then the literal as a bytearray.
    """
    bodies = {}
    for announce, literal in itertools.pairwise(lines):
        match = re.search(rb"UID (\d+)", bytes(announce))
        if match and isinstance(literal, bytearray):
            bodies[int(match.group(1))] = bytes(literal)
    return bodies


@pytest.mark.asyncio
async def test_aioimaplib_reads_and_flags_unseen_messages(
    dovecot: Dovecot, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():  # shown even without -s; measured, not asserted
        print(f"\nDovecot started in {dovecot.startup_seconds:.3f}s")
    first = dovecot.append(reply("Re: F3", "F3 confirm"))
    second = dovecot.append(reply("Re: classement", "RANK A3 A1 A7"))
    already_read = dovecot.append(reply("Re: ancien", "vu"), flags=["\\Seen"])

    imap = aioimaplib.IMAP4(host=dovecot.host, port=dovecot.port, timeout=5)
    await imap.wait_hello_from_server()
    assert (await imap.login(dovecot.user, dovecot.password)).result == "OK"
    assert (await imap.select("INBOX")).result == "OK"

    search = await imap.uid_search("UNSEEN")
    assert search.result == "OK"
    unseen = [int(uid) for uid in search.lines[0].split()]
    assert unseen == [first, second]

    fetch = await imap.uid("fetch", f"{first}:{second}", "(UID BODY.PEEK[])")
    assert fetch.result == "OK"
    bodies = fetched_bodies(fetch.lines)
    assert set(bodies) == {first, second}
    assert b"RANK A3 A1 A7" in bodies[second]
    assert dovecot.flags_of(first) == ()  # PEEK leaves \Seen alone

    store = await imap.uid("store", str(first), "+FLAGS", "(\\Seen)")
    assert store.result == "OK"
    await imap.logout()

    assert dovecot.flags_of(first) == ("\\Seen",)
    assert dovecot.flags_of(second) == ()
    assert [(m.uid, m.flags) for m in dovecot.fetch_all()] == [
        (first, ("\\Seen",)),
        (second, ()),
        (already_read, ("\\Seen",)),
    ]
    assert dovecot.fetch_all()[1].raw == reply("Re: classement", "RANK A3 A1 A7").replace(
        b"\n", b"\r\n"
    )


def test_append_to_another_mailbox_creates_it(dovecot: Dovecot) -> None:
    uid = dovecot.append(reply("Re: F4", "F4 contest: trop vague"), mailbox="Palabre/Traités")

    (message,) = dovecot.fetch_all("Palabre/Traités")
    assert message.uid == uid
    assert dovecot.fetch_all() == []


def test_wrong_password_is_refused(dovecot: Dovecot) -> None:
    import imaplib

    imap = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=5)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.login(dovecot.user, "wrong")
    imap.shutdown()


def test_start_stop_twice_keeps_the_mail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = Dovecot(tmp_path)
    try:
        timings = []
        # Without waiting for the first master to exit, then waiting for the second.
        for round_number, wait in enumerate([False, True]):
            server.start()
            timings.append(server.startup_seconds)
            assert server.running
            server.append(reply(f"Re: tour {round_number}", "ok"))
            assert len(server.fetch_all()) == round_number + 1
            port = server.port
            server.stop(wait=wait)
            assert not server.running
        with pytest.raises(ConnectionRefusedError), socket.create_connection((server.host, port)):
            pass
        with capsys.disabled():
            print(f"\nDovecot startups: {', '.join(f'{t:.3f}s' for t in timings)}")
    finally:
        server.close()


def test_missing_dovecot_is_an_error_naming_the_package(tmp_path: Path) -> None:
    with pytest.raises(DovecotNotInstalled, match="apt-get install dovecot-imapd"):
        Dovecot(tmp_path, binary=str(tmp_path / "no-dovecot")).start()
