"""The web server behind the one-click unsubscribe links, over real sockets.

Each test starts the server on a free port inside its own event loop and talks to it with httpx,
as a phone's browser or a mailbox provider (RFC 8058) would, then looks at the database.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from sqlmodel import select

from consultation import outbox, privacy
from consultation.errors import UserError
from mailer import tokens
from mailer.compose import compose
from models import AuditEvent, Consultation, OutboxMessage, OutboxStatus, Participant
from models.db import Database
from palabre.settings import Settings
from palabre.web import WebServer
from templates.render import render_error
from tests.factories import make_consultation, make_participant

SECRET = "test-secret-for-the-web-0123456789"
PUBLIC_URL = "https://palabre.mairie.example"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
NOT_FOUND_FR = "Ce lien ne fonctionne pas"
NOT_FOUND_EN = "This link does not work"


def web_settings(**overrides) -> Settings:
    values = {
        "secret_key": SECRET,
        "public_url": PUBLIC_URL,
        "reply_address": "reply@mairie.example",
        "mail_from": "Plan ESS <palabre@mairie.example>",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def web(db) -> AsyncIterator[WebServer]:
    """The web server on a free port of this machine, stopped as `palabre serve` stops it."""
    server = WebServer(web_settings(), db, host="127.0.0.1", port=0)
    await server.start()
    stop = asyncio.Event()
    running = asyncio.create_task(server.run(stop))
    try:
        yield server
    finally:
        stop.set()
        await running


@pytest.fixture
async def browser(web) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web.url, timeout=10) as client:
        yield client


@dataclass
class Story:
    """A consultation in review; Aïcha reads Palabre in French, Bruno in English, by email."""

    title: str
    aicha: Participant
    bruno: Participant


async def story(db: Database) -> Story:
    async with db.session() as session:
        consultation = await make_consultation(session, current="review")
        aicha = await make_participant(session, consultation, name="Aïcha", locale="fr")
        bruno = await make_participant(session, consultation, name="Bruno", locale="en")
        for person in (aicha, bruno):
            for number in (1, 2):
                await outbox.notify(
                    session=session,
                    participant=person,
                    template="broadcast",
                    payload={"text": f"Réunion jeudi ({number})", "category": None, "title": "ESS"},
                    dedupe_key=f"news:{number}:{person.id}",
                )
        return Story(consultation.title, aicha, bruno)


def link(person: Participant, settings: Settings | None = None) -> str:
    """The path of `person`'s unsubscribe link (as signed with `settings`' secret)."""
    token = tokens.unsubscribe_token((settings or web_settings()).mail_config(), person.reply_key)
    return f"/email/unsubscribe/{token}"


async def link_in_their_email(db: Database, person: Participant) -> str:
    """The https URL in the `List-Unsubscribe` header of the email waiting for `person`."""
    async with db.session() as session:
        row = (
            await session.exec(
                select(OutboxMessage).where(OutboxMessage.participant_id == person.id)
            )
        ).first()
        consultation = await session.get(Consultation, person.consultation_id)
        composed = compose(
            config=web_settings().mail_config(),
            message=row,
            participant=person,
            consultation=consultation,
        )
    message = email.message_from_bytes(composed.raw, policy=email.policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (url,) = re.findall(r"<(https://[^>]+)>", str(message["List-Unsubscribe"]))
    return url


async def reload(db: Database, someone: Participant) -> Participant:
    async with db.session() as session:
        found = await session.get(Participant, someone.id)
        assert found is not None
        return found


async def statuses(db: Database, someone: Participant) -> list[str]:
    async with db.session() as session:
        rows = await session.exec(
            select(OutboxMessage.status).where(OutboxMessage.participant_id == someone.id)
        )
        return sorted(rows.all())


async def stops_recorded(db: Database) -> list[AuditEvent]:
    async with db.session() as session:
        rows = await session.exec(
            select(AuditEvent).where(AuditEvent.action == "participant.opted_out")
        )
        return list(rows.all())


async def nothing_changed(db: Database, story: Story) -> None:
    for someone in (story.aicha, story.bruno):
        assert (await reload(db, someone)).opted_out_at is None
        assert await statuses(db, someone) == [OutboxStatus.PENDING, OutboxStatus.PENDING]
    assert await stops_recorded(db) == []


async def test_the_link_in_an_email_opens_a_page_in_the_readers_language(db, clock, browser):
    """Given Aïcha (French) and Bruno (English), when each opens the link of their email, then
    each reads what unsubscribing does in their language, with a button, and nothing changes."""
    told = await story(db)

    url = await link_in_their_email(db, told.aicha)
    assert url.startswith(f"{PUBLIC_URL}/email/unsubscribe/")
    page = await browser.get(urlsplit(url).path)

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in page.text
    assert told.title in page.text
    assert "Ne plus recevoir de messages de Palabre" in page.text
    assert "par e-mail ou sur Telegram" in page.text
    assert re.search(r'<form method="post">', page.text)
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page.text
    assert "Se désabonner</button>" in page.text
    assert "Aïcha" not in page.text and told.aicha.email not in page.text
    # The address holds a credential: no cache, no referrer, no cookie, no script.
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "set-cookie" not in page.headers and "server" not in page.headers
    assert "<script" not in page.text

    page = await browser.get(urlsplit(await link_in_their_email(db, told.bruno)).path)
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert "Stop receiving messages from Palabre?" in page.text
    assert "Unsubscribe</button>" in page.text

    await nothing_changed(db, told)  # a GET (a link scanner, a preview) changes nothing


async def test_one_click_unsubscribes_at_once_and_a_second_click_is_harmless(db, clock, browser):
    """Given Aïcha with two messages waiting, when her mailbox sends the RFC 8058 POST, then she
    is opted out on every channel and her messages are cancelled; when she also taps the page's
    button an hour later, nothing more happens."""
    told = await story(db)
    path = urlsplit(await link_in_their_email(db, told.aicha)).path

    answer = await browser.post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert answer.status_code == 200
    assert "Désabonnement confirmé" in answer.text
    assert told.title in answer.text
    assert "set-cookie" not in answer.headers
    aicha = await reload(db, told.aicha)
    assert aicha.opted_out_at == clock.now()
    assert await statuses(db, told.aicha) == [OutboxStatus.CANCELLED, OutboxStatus.CANCELLED]
    assert await statuses(db, told.bruno) == [OutboxStatus.PENDING, OutboxStatus.PENDING]
    (stop,) = await stops_recorded(db)
    assert stop.actor_id == aicha.id and stop.detail["channel"] == "email"
    assert stop.detail["cancelled_messages"] == 2

    clock.advance(hours=1)
    page = await browser.get(path)
    assert "Votre désabonnement est déjà enregistré" in page.text
    assert "<form" not in page.text
    again = await browser.post(path, data=ONE_CLICK)  # the button of a page left open

    assert again.status_code == 200
    assert "Désabonnement confirmé" in again.text
    assert (await reload(db, told.aicha)).opted_out_at == aicha.opted_out_at
    assert len(await stops_recorded(db)) == 1


async def test_two_clicks_at_the_same_moment_record_one_stop(db, clock, browser):
    """Given Bruno's mailbox and Bruno himself clicking at once, then one STOP is recorded."""
    told = await story(db)

    answers = await asyncio.gather(*(browser.post(link(told.bruno), data=ONE_CLICK) for _ in "ab"))

    assert [answer.status_code for answer in answers] == [200, 200]
    assert all("You are unsubscribed" in answer.text for answer in answers)
    assert len(await stops_recorded(db)) == 1
    assert (await reload(db, told.bruno)).opted_out_at == clock.now()


async def test_forged_links_get_the_bilingual_404_and_change_nothing(db, clock, browser):
    """Given links someone altered or made up, then each is a 404 page in French and English,
    whether opened or posted, and nobody is unsubscribed."""
    told = await story(db)
    config = web_settings().mail_config()
    genuine = tokens.unsubscribe_token(config, told.aicha.reply_key)
    key, _, signature = genuine.partition(".")
    flipped = signature[:-1] + ("a" if signature[-1] != "a" else "b")
    bruno_signature = tokens.unsubscribe_token(config, told.bruno.reply_key).partition(".")[2]
    reply_token = tokens.reply_address(config, key).split("+", 1)[1].split("@", 1)[0]
    forged = [
        f"{key}.{flipped}",  # one character changed
        f"{key}.{bruno_signature}",  # Aïcha's key, Bruno's signature
        f"{key}.{signature[:-2]}",  # cut short when copied
        key,  # no signature
        reply_token,  # signed, but for replies, not for unsubscribing
        "0123456789abcdef.aaaaaaaaaaaaaaaa",  # made up
        "%3Cscript%3E",
    ]

    for token in forged:
        for method in ("GET", "POST"):
            answer = await browser.request(
                method, f"/email/unsubscribe/{token}", data=ONE_CLICK if method == "POST" else None
            )
            assert answer.status_code == 404, (method, token)
            assert NOT_FOUND_FR in answer.text and NOT_FOUND_EN in answer.text
            assert '<section lang="fr">' in answer.text and '<section lang="en">' in answer.text
            assert "<script" not in answer.text

    await nothing_changed(db, told)


async def test_a_link_signed_with_another_secret_is_404(db, clock, browser):
    """Given a link signed with a secret other than this server's PALABRE_SECRET_KEY (another
    instance, or the key was changed), then it is a 404 and Aïcha stays subscribed."""
    told = await story(db)
    elsewhere = web_settings(secret_key="another-secret-entirely-9876543210")

    for method in ("GET", "POST"):
        answer = await browser.request(method, link(told.aicha, elsewhere), data=None)
        assert answer.status_code == 404
        assert NOT_FOUND_FR in answer.text and NOT_FOUND_EN in answer.text

    await nothing_changed(db, told)


async def test_once_aicha_is_forgotten_her_old_link_leads_nowhere(db, clock, browser):
    told = await story(db)
    path = link(told.aicha)
    async with db.session() as session:
        await privacy.forget(
            session=session,
            participant=await session.get(Participant, told.aicha.id),
            erasure_key="test-key",
        )

    assert (await browser.get(path)).status_code == 404
    answer = await browser.post(path, data=ONE_CLICK)
    assert answer.status_code == 404
    assert await stops_recorded(db) == []


async def test_the_proxy_can_check_health_and_other_paths_are_404(db, browser):
    health = await browser.get("/healthz")
    assert health.status_code == 200
    assert health.text == "ok"
    assert health.headers["content-type"].startswith("text/plain")
    assert (await browser.head("/healthz")).status_code == 200

    missing = await browser.get("/wp-login.php")
    assert missing.status_code == 404
    assert NOT_FOUND_FR in missing.text and NOT_FOUND_EN in missing.text
    assert (await browser.put("/email/unsubscribe/abc", content=b"")).status_code == 405


async def test_no_log_line_shows_the_token(db, clock, browser, caplog):
    """The token is a credential: the logs say what happened to whom, never the link."""
    told = await story(db)
    settings = web_settings()
    path = link(told.aicha)
    signature = path.rpartition(".")[2]
    elsewhere = link(told.bruno, web_settings(secret_key="another-secret-entirely-9876543210"))

    with caplog.at_level(logging.DEBUG):
        await browser.get(path)
        await browser.post(path, data=ONE_CLICK)
        await browser.post(elsewhere, data=ONE_CLICK)
        await browser.get(
            f"/email/unsubscribe/{tokens.unsubscribe_token(settings.mail_config(), 'f' * 16)}"
        )

    # What the server side said (httpx, the client here, logs the URLs it requests).
    said = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    )
    assert f"participant {told.aicha.id} unsubscribed with the one-click link" in said
    assert "refused an unsubscribe link whose signature does not match" in said
    assert "refused an unsubscribe link whose key names no one" in said
    assert "/email/unsubscribe/…" in said  # the access log, masked
    for secret in (signature, elsewhere.rpartition(".")[2]):  # without it, a key is harmless
        assert secret not in said


async def test_stopping_lets_an_unsubscription_in_flight_commit(db, clock):
    """Given Aïcha's click waiting on a busy database when the service is told to stop, then
    the server waits for it: she gets her confirmation, and her STOP is recorded."""
    told = await story(db)
    server = WebServer(web_settings(), db, host="127.0.0.1", port=0)
    await server.start()
    stop = asyncio.Event()
    running = asyncio.create_task(server.run(stop))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with db.session() as busy:  # someone else holds Aïcha's row for a moment
            await busy.exec(
                select(Participant).where(Participant.id == told.aicha.id).with_for_update()
            )
            click = asyncio.create_task(client.post(link(told.aicha), data=ONE_CLICK))
            async with asyncio.timeout(10):
                while not server.in_flight:
                    await asyncio.sleep(0.01)
            stop.set()
            done, _ = await asyncio.wait({running, click}, timeout=0.3)
            assert not done  # the server waits for the click, which waits for the row
        answer = await click

    await running
    assert answer.status_code == 200
    assert (await reload(db, told.aicha)).opted_out_at == clock.now()


async def test_a_fault_is_an_apology_and_a_log_line_without_the_token(tmp_path, caplog):
    """Given a database that cannot answer (here: no tables), then the reader gets a 500 page in
    French and English, and the log names the fault, not the link."""
    database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    server = WebServer(web_settings(), database, host="127.0.0.1", port=0)
    await server.start()
    token = tokens.unsubscribe_token(web_settings().mail_config(), "0123456789abcdef")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            answer = await client.post(f"/email/unsubscribe/{token}", data=ONE_CLICK)
    finally:
        await server.close()
        await database.dispose()

    assert answer.status_code == 500
    assert "Une erreur s’est produite" in answer.text and "Something went wrong" in answer.text
    assert "Traceback" not in answer.text and "no such table" not in answer.text
    (fault,) = [
        record
        for record in caplog.records
        if record.name == "palabre.web" and record.levelno >= logging.ERROR
    ]
    assert fault.getMessage() == "failed to answer POST /email/unsubscribe/…"
    assert token.partition(".")[2] not in caplog.text


async def test_a_port_already_taken_is_one_clear_line(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'palabre.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = WebServer(web_settings(), database, host="127.0.0.1", port=port)
        try:
            with pytest.raises(UserError) as raised:
                await server.start()
        finally:
            await database.dispose()

    assert raised.value.code == "web.cannot_listen"
    sentence = render_error(raised.value.code, raised.value.params, "en")
    assert f"127.0.0.1:{port}" in sentence and "PALABRE_HTTP_PORT" in sentence


def test_the_web_server_is_off_unless_a_port_is_given(monkeypatch):
    monkeypatch.setenv("PALABRE_HTTP_PORT", "")
    assert Settings(_env_file=None).http_port is None
    monkeypatch.setenv("PALABRE_HTTP_PORT", "8080")
    monkeypatch.setenv("PALABRE_HTTP_HOST", "0.0.0.0")
    settings = Settings(_env_file=None)
    assert (settings.http_port, settings.http_host) == (8080, "0.0.0.0")
