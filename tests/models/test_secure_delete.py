"""A forgotten person leaves nothing readable in the SQLite file, not even in its free pages.

Some SQLite builds overwrite deleted content by default and some do not; the test makes the
connection start without it, as on those builds, so that only Palabre's own setting protects.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from consultation import clock, privacy
from models import Channel, DialogueState, Participant
from models.db import Database
from tests.factories import make_consultation, make_participant

SECRET_KEY = "test-secret-key"
# A long observation she had typed but not yet recorded: it fills pages of its own.
DRAFT = "Les guichets de la rue Zephyrine ferment trop tot pour les salaries. " * 80


@pytest.fixture
def sqlite_without_secure_delete(monkeypatch):
    connect = sqlite3.connect

    def without(*args, **kwargs):
        connection = connect(*args, **kwargs)
        connection.execute("PRAGMA secure_delete=OFF")
        return connection

    monkeypatch.setattr(sqlite3, "connect", without)


@pytest.mark.usefixtures("sqlite_without_secure_delete")
async def test_a_forgotten_draft_does_not_stay_in_the_file(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'palabre.db'}")
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
        async with database.session() as session:
            consultation = await make_consultation(session)
            person = await make_participant(session, consultation, telegram_chat_id=5001)
            session.add(
                DialogueState(
                    participant_id=person.id,
                    channel=Channel.TELEGRAM,
                    kind="observation",
                    data={"text": DRAFT},
                    updated_at=clock.now(),
                )
            )
        async with database.session() as session:
            await privacy.forget(
                session=session,
                participant=await session.get(Participant, person.id),
                erasure_key=SECRET_KEY,
            )
    finally:
        await database.dispose()  # the last connection closing checkpoints the WAL into the file

    raw = b"".join(path.read_bytes() for path in Path(tmp_path).glob("palabre.db*"))
    assert b"rue Zephyrine" not in raw
