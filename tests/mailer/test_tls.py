"""STARTTLS and implicit TLS to the relay, with a certificate the test makes and trusts.

The shared aiosmtpd fixture speaks plain SMTP; these stories start their own aiosmtpd with TLS,
and make the client trust the test's certificate through SSL_CERT_FILE, as an operator with a
private CA would.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from mailer.sender import EmailSender
from tests.factories import make_consultation, make_participant
from tests.mailer.conftest import mail_config
from tests.mailer.test_sender import invite, rows

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


class Recorder:
    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        encrypted = server.transport.get_extra_info("ssl_object") is not None
        self.envelopes.append((envelope, encrypted))
        return "250 OK"


@pytest.fixture
def certificate(tmp_path, monkeypatch) -> ssl.SSLContext:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_mail_goes_out_encrypted_as_configured(
    db, clock, tmp_path: Path, certificate, security
) -> None:
    recorder = Recorder()
    port = _free_port()
    options = (
        {"tls_context": certificate, "require_starttls": True}
        if security == "starttls"
        else {"ssl_context": certificate}
    )
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        config = mail_config(tmp_path, mail_backend="smtp", smtp_port=port, smtp_security=security)
        async with db.session() as session:
            consultation = await make_consultation(session)
            await invite(session, [await make_participant(session, consultation)])
        sender = EmailSender(config, db)
        assert await sender.drain_once() == 1
        await sender.close()
    finally:
        controller.stop()
    ((envelope, encrypted),) = recorder.envelopes
    assert envelope.rcpt_tos
    assert encrypted
    assert [row.status for row in await rows(db)] == ["sent"]
