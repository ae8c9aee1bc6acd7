"""The callback context every handler receives: the database and who is writing.

`bot.inbound.guard` fills `participant` and `consultation` once per update (a snapshot read in
its own short transaction); handlers reload what they change inside their own transaction.

Setting `participant` also captures the plain values a refusal needs (the language, the ids): a
refusal is explained after a rollback, when a database object may no longer be readable, so
`locale` never reads the object itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

from templates.i18n import normalize_locale

if TYPE_CHECKING:
    from models import Consultation, Participant
    from models.db import Database


class PalabreContext(CallbackContext[ExtBot, dict, dict, dict]):
    """A CallbackContext that knows Palabre's database and who sent the update."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application, chat_id=chat_id, user_id=user_id)
        self._participant: Participant | None = None
        self.participant_id: int | None = None
        self.participant_locale: str | None = None
        self.consultation: Consultation | None = None
        self.user_language: str | None = None

    @property
    def participant(self) -> Participant | None:
        return self._participant

    @participant.setter
    def participant(self, person: Participant | None) -> None:
        self._participant = person
        self.participant_id = person.id if person is not None else None
        self.participant_locale = person.locale if person is not None else None

    @property
    def database(self) -> Database:
        return self.application.bot_data["database"]

    @property
    def erasure_key(self) -> str:
        """The key that hashes a forgotten person's address (see `privacy.forget`)."""
        key = self.application.bot_data["config"].erasure_key
        if key is None:
            raise RuntimeError("the bot was built without an erasure key")
        return key.get_secret_value()

    @property
    def locale(self) -> str:
        """The reader's language: their profile's, else their Telegram app's, else French."""
        if self.participant_id is not None:
            return normalize_locale(self.participant_locale)
        return normalize_locale(self.user_language)
