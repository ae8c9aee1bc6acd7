"""The commands a reply may hold, as small objects in the manner of Mailman 3's email commands.

Each command is one small class in `COMMANDS`: a `name`, its `words` in French and in English,
a `parse` that recognises its line, and a `process` that calls exactly one `consultation`
function and says what it did (`Processed`). Everything else is made from that one list: the
words our prefilled links use (`reply_words`), the first words that mark a line as meant for us
(`looks_like_a_command`) and the HELP section of the receipt, one line per command (its argument
description, `help_line` in `templates/email/_receipt.txt`).

`find_commands` turns the cleaned lines of a reply into parsed commands, lines not understood
(quoted back to the person) and lines ignored (with the reason): Mailman's finder, the subject
first (without its "Re:"), then the body, up to a line cap. `execute` runs the commands, each in
its own savepoint so that one refusal does not undo the others, and collects everything into a
`Receipt`: the "processed / not understood / ignored" reply Mailman sends.

Every keyword is case-insensitive and accents are optional: `F3 oui`, `f3 OUI`, `F3 conteste :
trop vague`, `CLASSEMENT A3 A1 A7`, `Q2 4`, `OBS : ...`.

A command whose answer is more than a line of the receipt (what became of my contributions, my
data as a file, the code that confirms an erasure) returns a `Letter`: the reply path writes it
to the outbox as an email of its own, and leaves the receipt out when the letters say it all.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from jinja2 import TemplateNotFound
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import followup, observations, preferences, privacy, questionnaires, trace
from consultation.actions import cast_ballot, propose_action
from consultation.errors import UserError
from consultation.files import control_character
from consultation.findings import record_stance
from consultation.status import awaiting
from mailer import sentences, tokens
from mailer.config import MailConfig
from mailer.eml import remove_files
from mailer.sentences import fold
from mailer.sentences import starts_with_word as _starts_with_word
from models import (
    Ballot,
    Cadence,
    Channel,
    Finding,
    FindingVersion,
    FollowUpView,
    Participant,
    Stance,
    StanceChoice,
)
from templates.render import localized, render_error

logger = logging.getLogger(__name__)

MAX_LINES = 200
MAX_COMMANDS = 40
EXCERPT = 160
TRACE_EXCERPT = 300

# The emails commands answer with (see `Letter`), all written to the email channel only.
LETTER_TEMPLATES = ("contributions", "data_export", "forget_confirm", "forgotten", "plan")
# What a person may write, by language; and that, for each value a command's word chooses.
Words = dict[str, tuple[str, ...]]
Choices = dict[str, Words]
# First words that also begin ordinary sentences ("je", "my", "chaque"...): a line starting with
# one of them and not understood is prose, not a command to quote back.
_COMMON_WORDS = frozenset({"je", "i", "se", "every", "chaque", "mes", "my", "suivi"})

# Codes that begin a line meant as a command; a line starting so and not understood is quoted
# back, any other line (a greeting, a comment) is merely ignored.
_CODE_START = re.compile(r"^\s*[\[(]?\s*[faq]\s?\d{1,4}\b", re.IGNORECASE)
_CODE_ANYWHERE = re.compile(r"\b[FAQ]\d{1,4}\b")
_SEPARATORS = " \t:;,.=–—-"


def _strip_decoration(line: str) -> str:
    """Bullets, Markdown emphasis and brackets people put around what they type."""
    value = line.strip()
    value = re.sub(r"^(?:[-*•·]\s+|\d+[.)]\s+)", "", value)
    value = value.strip("*_` ")
    return value


@dataclass(frozen=True)
class Question:
    """A question of the open questionnaire, as the reader needs it: its kind and, for a choice,
    its labels (each choice in every language, in order)."""

    kind: str
    labels: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Expecting:
    """What the consultation awaits from the person, so that plain words can be read as a
    person would: "Oui j'accepte" while consent is pending, bare codes while ranking is open,
    prose offered back as an observation or a proposal, a choice answered by its label."""

    consent: bool = False
    findings: tuple[str, ...] = ()  # the findings awaiting an answer, for "d'accord avec tous"
    ballot: bool = False
    welcome: str | None = None  # "observation" or "proposal"
    questions: dict[int, Question] = field(default_factory=dict)
    # The questionnaire of the email answered (found through In-Reply-To/References), else the
    # open one: the key answers are applied to.
    questionnaire: str | None = None
    # What the receipt this reply answers offered to record: (kind, text) pairs.
    offered: tuple[tuple[str, str], ...] = ()
    # When a newer email asking for answers was sent after the one this reply answers: an
    # answer given since then is newer than this reply's and is kept.
    newer_email_at: datetime | None = None


NOTHING = Expecting()


@dataclass
class Parsed:
    """One command found in a reply, with its arguments."""

    command: Command
    line: str
    args: dict[str, Any]

    @property
    def target(self) -> str:
        return self.command.target(self.args)


@dataclass
class Letter:
    """An email a command answers with, written to the outbox by the reply path.

    `payload` is plain JSON like every outbox payload. `address` is set only for the goodbye of
    a person just forgotten: the row then names no participant (the erasure has already removed
    the address from the person), only where this one last email goes.
    """

    template: str
    payload: dict[str, Any] = field(default_factory=dict)
    address: str | None = None


@dataclass
class Processed:
    """What a command did, for the receipt: a `kind` and what the receipt says about it.

    A command whose answer is more than a line of the receipt carries its `letter`.
    """

    kind: str
    codes: list[str] = field(default_factory=list)
    choice: str = ""
    reason: str = ""
    excerpt: str = ""
    code: str = ""
    position: int | None = None
    value: str = ""
    questionnaire: str = ""
    cadence: str = ""
    locale: str = ""
    letter: Letter | None = None

    def item(self, line: str) -> dict[str, Any]:
        """The receipt's item: every field present, so that templates (StrictUndefined) can
        test any of them, and plain JSON like every outbox payload."""
        item = {name: getattr(self, name) for name in self.__dataclass_fields__}
        del item["letter"]
        return {**item, "line": shown(line)}


@dataclass
class Receipt:
    """What became of each line of a reply: the content of the receipt email."""

    processed: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)
    ignored: list[dict[str, Any]] = field(default_factory=list)
    help: bool = False
    letters: list[Letter] = field(default_factory=list)

    @property
    def needed(self) -> bool:
        """Whether a receipt must go: not when the letters answer every line that counts.

        A reply that only says MINE gets the email about its contributions, not that email
        and a receipt announcing it; greetings around the command need no answer either.
        """
        if not self.letters or self.refused or self.not_understood:
            return True
        if any(item["why"] != "not_a_command" for item in self.ignored):
            return True
        return len(self.processed) > len(self.letters)

    def as_payload(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "refused": self.refused,
            "not_understood": self.not_understood,
            "ignored": self.ignored,
            "help": self.help,
        }


class Command:
    """A reply command: its name, the words that call it, how to read it, what it does.

    `words` are what a person may write, in each language; the first of each language is the
    one our prefilled links, examples and HELP show. A command whose word also says which way
    (a stance, a cadence, a language) has `choices` instead: words per language for each value.
    Its argument description is its line of HELP, a template like every text a person reads
    (`help_line` in `templates/email/_receipt.txt`, by `name`).
    """

    name: ClassVar[str]
    words: ClassVar[Words] = {}
    choices: ClassVar[Choices] = {}
    # Whether a line beginning with one of its words, when not understood, was meant for us
    # and is quoted back (see `looks_like_a_command`); "English, please" is only prose.
    starts_a_line: ClassVar[bool] = True
    # Commands that must run before (consent) or after (STOP) the others.
    order: ClassVar[int] = 1
    # Whether the following lines of the same paragraph belong to it (a long observation).
    takes_paragraph: ClassVar[bool] = False
    # Whether it may be the subject of an email with no body (a `mailto:` with a subject only).
    in_subject: ClassVar[bool] = False
    # Whether someone who said STOP and now sends it has come back (not for STOP or HELP, nor
    # for asking what Palabre holds about them).
    brings_back: ClassVar[bool] = True

    def spellings(self) -> tuple[str, ...]:
        """Every word that calls it, in any language."""
        groups = [self.words, *self.choices.values()]
        return tuple(
            dict.fromkeys(word for group in groups for words in group.values() for word in words)
        )

    def choice_of(self, word: str) -> str:
        """The value of `choices` that `word` (one of its spellings) stands for."""
        return next(
            choice
            for choice, words in self.choices.items()
            if any(fold(word) == fold(spelling) for group in words.values() for spelling in group)
        )

    def shown_words(self, locale: str) -> dict[str, str]:
        """The words our links and examples use for it, in `locale`, by name or by choice."""
        shown = {choice: words[locale][0] for choice, words in self.choices.items()}
        if self.words:
            shown[self.name] = self.words[locale][0]
        return shown

    def parse(self, line: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def target(self, args: dict[str, Any]) -> str:
        """What the command changes: a later command with the same target replaces it."""
        return self.name

    def continues(self, args: dict[str, Any]) -> bool:
        """Whether the next lines of the paragraph belong to this command."""
        return self.takes_paragraph

    def extend(self, args: dict[str, Any], more: str) -> None:
        """Add a continuation line (only for `takes_paragraph` commands)."""

    def allowed_in_subject(self, args: dict[str, Any]) -> bool:
        return self.in_subject

    def settle(self, args: dict[str, Any], expecting: Expecting) -> None:
        """Finish reading once every line is in, knowing what the consultation awaits."""

    async def process(
        self,
        *,
        session: AsyncSession,
        participant: Participant,
        args: dict[str, Any],
        config: MailConfig,
    ) -> Processed:
        """Do it, and say what was done."""
        raise NotImplementedError


def shown(text: str) -> str:
    """`text` as a receipt quotes it: a control character (a NUL...) shows as "�", so the
    person sees where it was and no stored payload holds it."""
    return "".join("\ufffd" if control_character(char) else char for char in text)


def _excerpt(text: str, limit: int = EXCERPT) -> str:
    flat = " ".join(shown(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


class StanceCommand(Command):
    name = "stance"
    choices: ClassVar[Choices] = {
        StanceChoice.CONFIRM.value: {
            "fr": (
                "oui",
                "confirme",
                "confirmé",
                "confirmer",
                "je confirme",
                "ok",
                "d'accord",
                "daccord",
                "je suis d'accord",
                "pour",
                "valide",
                "+",
                "+1",
                "👍",
                "✓",
                "✔",
            ),
            "en": ("confirm", "confirmed", "i confirm", "okay", "yes", "agree", "i agree"),
        },
        StanceChoice.CONTEST.value: {
            "fr": (
                "non",
                "conteste",
                "contesté",
                "contester",
                "je conteste",
                "pas d'accord",
                "contre",
                "-",
                "-1",
                "👎",
                "✗",
            ),
            "en": ("contest", "contested", "no", "disagree", "i disagree", "against"),
        },
        StanceChoice.ABSTAIN.value: {
            "fr": (
                "abstention",
                "abstiens",
                "je m'abstiens",
                "sans avis",
                "je ne sais pas",
                "ne sais pas",
                "passe",
                "?",
            ),
            "en": ("abstain", "pass", "no opinion", "don't know", "not sure"),
        },
    }
    # Its lines begin with a finding's code, which is how they are known.
    starts_a_line = False
    takes_paragraph = True
    _codes = re.compile(
        r"^\s*[\[(]?\s*((?:F\s?\d{1,4}\s*[\])]?\s*(?:[,;&/]|\bet\b|\band\b)?\s*)+)", re.I
    )

    def parse(self, line: str) -> dict[str, Any] | None:
        match = self._codes.match(line)
        if match is None:
            return None
        numbers = re.findall(r"F\s?(\d{1,4})", match.group(1), re.I)
        codes = list(dict.fromkeys(f"F{int(n)}" for n in numbers))
        found = _stance(line[match.end() :])
        if found is None:
            return None
        choice, reason = found
        return {"codes": codes, "choice": choice, "reason": reason}

    def target(self, args: dict[str, Any]) -> str:
        return "stance:" + ",".join(args["codes"])

    def continues(self, args: dict[str, Any]) -> bool:
        # A contest's reason often runs over several lines; a confirmation has nothing to add.
        return args["choice"] == StanceChoice.CONTEST

    def extend(self, args: dict[str, Any], more: str) -> None:
        args["reason"] = f"{args['reason']}\n{more}".strip()

    def settle(self, args: dict[str, Any], expecting: Expecting) -> None:
        # "F3 OUI !", "F2 non parce que …": the emphasis and the "because" are not the reason.
        confirm = args["choice"] == StanceChoice.CONFIRM
        args["reason"] = sentences.clean_reason(args["reason"], confirm=confirm)
        if expecting.newer_email_at is not None:
            args["newer_email_at"] = expecting.newer_email_at

    def sentence(self, line: str) -> list[dict[str, Any]] | None:
        """The stances of a line written as a sentence ("Je confirme F1 et F2, contre F3 car …")."""
        found = sentences.stances_in(line, _stance, _STANCE_WORDS)
        if not found:
            return None
        return [
            {"codes": codes, "choice": choice, "reason": reason} for codes, choice, reason in found
        ]

    def everything(self, line: str, expecting: Expecting) -> dict[str, Any] | None:
        """ "D'accord avec tous les constats": every finding awaiting an answer, confirmed."""
        if not expecting.findings or not sentences.agrees_with_all(line):
            return None
        return {
            "codes": list(expecting.findings),
            "choice": StanceChoice.CONFIRM.value,
            "reason": "",
        }

    async def process(self, *, session, participant, args, config):
        since = args.get("newer_email_at")
        if since is not None and await _stances_changed_since(session, participant, args, since):
            raise UserError("reply.stale_answer")
        for code in args["codes"]:
            await record_stance(
                session=session,
                participant=participant,
                code=code,
                choice=args["choice"],
                reason=args["reason"] or None,
                channel=Channel.EMAIL,
            )
        return Processed(
            kind="stance",
            codes=args["codes"],
            choice=args["choice"],
            reason=_excerpt(args["reason"]) if args["reason"] else "",
        )


async def _stances_changed_since(
    session: AsyncSession, participant: Participant, args: dict[str, Any], since: datetime
) -> bool:
    """Whether the person answered one of these findings after `since` (a newer email)."""
    changed = (
        await session.exec(
            select(func.count())
            .select_from(Stance)
            .join(FindingVersion, FindingVersion.id == Stance.finding_version_id)  # type: ignore[arg-type]
            .join(Finding, Finding.id == FindingVersion.finding_id)  # type: ignore[arg-type]
            .where(Stance.participant_id == participant.id)
            .where(Finding.consultation_id == participant.consultation_id)
            .where(Finding.code.in_(args["codes"]))  # type: ignore[attr-defined]
            .where(Stance.updated_at > since)
        )
    ).one()
    return changed > 0


_STANCE_WORDS = sorted(
    ((word, StanceCommand().choice_of(word)) for word in StanceCommand().spellings()),
    key=lambda item: len(item[0]),
    reverse=True,
)


def _is_word(word: str) -> bool:
    return word[0].isalnum() or word[0] == "'"


def _stance(rest: str) -> tuple[str, str] | None:
    """(choice, what follows) for the text after a finding's code, or None.

    Words first ("F3 - oui" is a confirmation, the dash a separator), then the symbols
    ("F3 +", "F3 -: reason", "F3 ?").
    """
    words = [word for word, _ in _STANCE_WORDS if _is_word(word)]
    found = _starts_with_word(rest.lstrip(_SEPARATORS), words)
    if found is not None:
        choice = next(c for w, c in _STANCE_WORDS if w == found[0])
        return choice, found[1]
    symbols = rest.lstrip(" \t:;,.=")
    for word, choice in _STANCE_WORDS:
        if _is_word(word) or not symbols.startswith(word):
            continue
        after = symbols[len(word) :]
        if after[:1].isalnum():
            continue
        return choice, after
    return None


class RankCommand(Command):
    name = "rank"
    words: ClassVar[Words] = {
        "fr": ("CLASSEMENT", "classer", "vote"),
        "en": ("RANK", "ranking", "vote"),
    }

    def parse(self, line: str) -> dict[str, Any] | None:
        found = _starts_with_word(line, self.spellings())
        if found is None:
            return None
        codes = [f"A{n}" for n in re.findall(r"\bA\s?(\d{1,4})\b", found[1], re.I)]
        return {"codes": codes, "raw": found[1].strip(_SEPARATORS)}

    def settle(self, args: dict[str, Any], expecting: Expecting) -> None:
        if expecting.newer_email_at is not None:
            args["newer_email_at"] = expecting.newer_email_at

    async def process(self, *, session, participant, args, config):
        since = args.get("newer_email_at")
        if since is not None:
            ballot = (
                await session.exec(select(Ballot).where(Ballot.participant_id == participant.id))
            ).first()
            if ballot is not None and ballot.updated_at > since:
                raise UserError("reply.stale_answer")
        await cast_ballot(
            session=session, participant=participant, codes=args["codes"], channel=Channel.EMAIL
        )
        return Processed(kind="ballot", codes=args["codes"])


class _TextCommand(Command):
    takes_paragraph = True

    def parse(self, line: str) -> dict[str, Any] | None:
        found = _starts_with_word(line, self.spellings())
        if found is None:
            return None
        rest = found[1].lstrip(" \t")
        # A separator is required: "Proposition intéressante, merci" is not a proposal.
        if not rest or rest[0] not in ":-–—":
            return None
        return {"text": rest.lstrip(_SEPARATORS).strip()}

    def target(self, args: dict[str, Any]) -> str:
        # Two observations in one email are two observations.
        return f"{self.name}:{id(args)}"

    def extend(self, args: dict[str, Any], more: str) -> None:
        args["text"] = f"{args['text']}\n{more}".strip()


class ObservationCommand(_TextCommand):
    name = "observation"
    words: ClassVar[Words] = {"fr": ("OBS", "observation"), "en": ("OBS", "observation")}

    async def process(self, *, session, participant, args, config):
        await observations.submit_observation(
            session=session, participant=participant, text=args["text"], channel=Channel.EMAIL
        )
        return Processed(kind="observation", excerpt=_excerpt(args["text"]))


class ProposalCommand(_TextCommand):
    name = "proposal"
    words: ClassVar[Words] = {
        "fr": ("PROP", "proposition", "proposer"),
        "en": ("PROP", "proposal", "propose"),
    }

    async def process(self, *, session, participant, args, config):
        action = await propose_action(
            session=session, participant=participant, text=args["text"], channel=Channel.EMAIL
        )
        return Processed(kind="proposal", code=action.code, excerpt=_excerpt(args["text"]))


class AnswerCommand(Command):
    name = "answer"
    takes_paragraph = True
    _pattern = re.compile(r"^\s*[\[(]?\s*Q\s?(\d{1,3})\s*[\])]?\s*[:.=)\-–—]?\s*(.*)$", re.I | re.S)
    # "4", "4/5", "3 – moyen, ...", "1 (trop court)": the number first, then what is said of it.
    _leading = re.compile(r"^(\d{1,2})(?:\s*/\s*\d{1,2})?(?![\d/])\s*(.*)$", re.S)
    # "plutôt oui (4)": the words first, the number in brackets at the end.
    _trailing = re.compile(r"^(.*?)\s*[(\[]\s*(\d{1,2})\s*[)\]]\s*[.!]?$", re.S)

    def parse(self, line: str) -> dict[str, Any] | None:
        match = self._pattern.match(line)
        if match is None:
            return None
        text = match.group(2).strip()
        args = {"position": int(match.group(1)), "text": text, "value": text, "remark": ""}
        self.settle(args, NOTHING)
        return args

    def target(self, args: dict[str, Any]) -> str:
        return f"answer:{args['position']}"

    def continues(self, args: dict[str, Any]) -> bool:
        # Words may run over several lines; a number is complete.
        return not self._leading.match(args["text"])

    def extend(self, args: dict[str, Any], more: str) -> None:
        args["text"] = f"{args['text']}\n{more}".strip()
        args["value"] = args["text"]

    def settle(self, args: dict[str, Any], expecting: Expecting) -> None:
        """Split what was written into the answer and the remark beside it.

        A scale or a choice is answered by its number ("Q2 : 1 (trop court)": 1, and the
        comment is kept as a remark), or a choice by its label ("Q3 juste bien": 2); repeating
        the chosen label is not a remark. A free-text question keeps everything as the answer.
        """
        text = args["text"]
        question = expecting.questions.get(args["position"])
        args["value"], args["remark"] = text, ""
        args["questionnaire"] = expecting.questionnaire
        if question is not None and question.kind == "text":
            return
        labels = question.labels if question is not None else ()
        number, rest = None, ""
        if match := self._leading.match(text):
            number, rest = match.group(1), match.group(2)
        elif match := self._trailing.match(text):
            number, rest = match.group(2), match.group(1)
        else:
            for index, spellings in enumerate(labels):
                found = _starts_with_word(text, spellings)
                if found is not None:
                    number, rest = str(index + 1), found[1]
                    break
        if number is None:
            return
        rest = rest.strip(_SEPARATORS + "()[]")
        chosen = labels[int(number) - 1] if 0 < int(number) <= len(labels) else ()
        if chosen and (found := _starts_with_word(rest, chosen)) is not None:
            rest = found[1].strip(_SEPARATORS + "()[]")
        args["value"], args["remark"] = number, " ".join(rest.split())

    async def process(self, *, session, participant, args, config):
        if args.get("questionnaire"):
            # The questionnaire of the email answered; closed, the answer is refused, never
            # moved to another one.
            questionnaire = await questionnaires.get_questionnaire(
                session=session,
                consultation_id=participant.consultation_id,
                key=args["questionnaire"],
            )
        else:
            questionnaire = await questionnaires.current_questionnaire(
                session=session, participant=participant
            )
        if questionnaire is None:
            raise UserError("reply.no_questionnaire")
        questions = {
            q.position: q
            for q in await questionnaires.questions_of(
                session=session, questionnaire_id=questionnaire.id
            )
        }
        question = questions.get(args["position"])
        value = args["value"]
        if question is not None and question.kind == "text":
            value = args["text"]
        answer = await questionnaires.answer_question(
            session=session,
            participant=participant,
            questionnaire_key=questionnaire.key,
            position=args["position"],
            value=value,
            channel=Channel.EMAIL,
        )
        if args["remark"] and answer.value_int is not None:
            # The comment beside a number is kept with it, as the person wrote it.
            answer.value_text = args["remark"]
        return Processed(
            kind="answer",
            position=args["position"],
            value=_excerpt(str(value)),
            questionnaire=localized(questionnaire.title, participant.locale),
        )


class _WordCommand(Command):
    def parse(self, line: str) -> dict[str, Any] | None:
        found = _starts_with_word(line, self.spellings())
        if found is None or found[1].strip(_SEPARATORS + "!"):
            return None
        return {}


class CadenceCommand(Command):
    name = "cadence"
    choices: ClassVar[Choices] = {
        Cadence.DAILY.value: {
            "fr": ("QUOTIDIEN", "quotidienne", "chaque jour"),
            "en": ("DAILY", "every day"),
        },
        Cadence.WEEKLY.value: {
            "fr": ("HEBDO", "hebdomadaire", "chaque semaine"),
            "en": ("WEEKLY", "every week"),
        },
    }
    in_subject = True

    def parse(self, line: str) -> dict[str, Any] | None:
        found = _starts_with_word(line, self.spellings())
        if found is None or found[1].strip(_SEPARATORS + "!"):
            return None
        return {"cadence": self.choice_of(found[0])}

    async def process(self, *, session, participant, args, config):
        cadence = Cadence(args["cadence"])
        await preferences.set_cadence(session=session, participant=participant, cadence=cadence)
        return Processed(kind="cadence", cadence=cadence.value)


class StopCommand(_WordCommand):
    name = "stop"
    words: ClassVar[Words] = {
        "fr": (
            "STOP",
            "desabonner",
            "se desabonner",
            "desinscrire",
            "desinscription",
            "arret",
            "arreter",
        ),
        "en": ("STOP", "unsubscribe"),
    }
    order = 9
    in_subject = True
    brings_back = False

    async def process(self, *, session, participant, args, config):
        await preferences.opt_out(session=session, participant=participant, channel=Channel.EMAIL)
        return Processed(kind="stop")


class ConsentCommand(_WordCommand):
    name = "consent"
    words: ClassVar[Words] = {
        "fr": ("J'ACCEPTE", "accepte", "je consens", "accepter"),
        "en": ("I ACCEPT", "accept", "i agree", "agree", "consent"),
    }
    order = 0
    in_subject = True

    async def process(self, *, session, participant, args, config):
        await preferences.give_consent(
            session=session, participant=participant, channel=Channel.EMAIL
        )
        return Processed(kind="consent")


class LocaleCommand(Command):
    name = "locale"
    choices: ClassVar[Choices] = {
        "fr": {"fr": ("FRANÇAIS",), "en": ("FRENCH",)},
        "en": {"fr": ("ANGLAIS",), "en": ("ENGLISH",)},
    }
    starts_a_line = False
    order = 0
    in_subject = True

    def parse(self, line: str) -> dict[str, Any] | None:
        folded = fold(line).strip(_SEPARATORS + "!")
        if folded not in {fold(word) for word in self.spellings()}:
            return None
        return {"locale": self.choice_of(folded)}

    async def process(self, *, session, participant, args, config):
        await preferences.set_locale(
            session=session, participant=participant, locale=args["locale"]
        )
        return Processed(kind="locale", locale=args["locale"])


class HelpCommand(_WordCommand):
    name = "help"
    words: ClassVar[Words] = {"fr": ("AIDE",), "en": ("HELP",)}
    in_subject = True
    brings_back = False

    async def process(self, *, session, participant, args, config):
        return Processed(kind="help")


# What Palabre holds of me, as on Telegram (/mine, /mydata, /forget). Asking is not coming back
# after a STOP, and the answers go by email, where the question came from.


class MineCommand(_WordCommand):
    name = "mine"
    words: ClassVar[Words] = {
        "fr": ("SUIVI", "mes contributions"),
        "en": ("MINE", "my contributions"),
    }
    in_subject = True
    brings_back = False

    async def process(self, *, session, participant, args, config):
        contributions = await trace.contributions_of(session=session, participant=participant)
        payload = trace.summary(contributions, excerpt=TRACE_EXCERPT)
        return Processed(kind="mine", letter=Letter(template="contributions", payload=payload))


class MyDataCommand(_WordCommand):
    """The export itself is built when the email is composed (`mailer.compose.documents_for`):
    the payload stays empty, so the outbox holds no second copy of the person's data, and the
    file says what is true when it leaves."""

    name = "mydata"
    words: ClassVar[Words] = {"fr": ("MES DONNÉES", "mesdonnees"), "en": ("MYDATA", "my data")}
    in_subject = True
    brings_back = False

    async def process(self, *, session, participant, args, config):
        return Processed(kind="mydata", letter=Letter(template="data_export"))


class ForgetCommand(Command):
    """FORGET answers with a code; FORGET <code> erases, then says goodbye.

    An email can be replayed or sent by mistake, so erasure needs a second message carrying a
    code only the person's mailbox received (`tokens.forget_code`). The goodbye is written
    after `privacy.forget`, which removes the address from the person and cancels their pending
    messages: so it carries the old address itself and names no participant.
    """

    name = "forget"
    words: ClassVar[Words] = {
        "fr": ("OUBLIER", "oubliez-moi", "oubliez moi"),
        "en": ("FORGET", "forget me"),
    }
    # Last: the other lines of the same email are recorded before the erasure.
    order = 10
    in_subject = True
    brings_back = False

    def parse(self, line: str) -> dict[str, Any] | None:
        found = _starts_with_word(line, self.spellings())
        if found is None:
            return None
        rest = found[1].strip(_SEPARATORS + "!")
        if not rest:
            return {"code": ""}
        code = tokens.normalize_forget_code(rest)
        return {"code": code} if re.fullmatch(r"[A-Z0-9]{4,10}", code) else None

    def allowed_in_subject(self, args: dict[str, Any]) -> bool:
        # Asking, yes; confirming, only in the body, where the person typed it.
        return not args["code"]

    async def process(self, *, session, participant, args, config):
        if not args["code"]:
            code = tokens.forget_code(config, participant.reply_key)
            payload = {"code": code, "hours": tokens.FORGET_CODE_HOURS}
            return Processed(
                kind="forget_code", letter=Letter(template="forget_confirm", payload=payload)
            )
        if not tokens.check_forget_code(config, participant.reply_key, args["code"]):
            raise UserError("reply.forget_code")
        address, locale = participant.email, participant.locale
        emailed = await privacy.forget(
            session=session,
            participant=participant,
            by=participant,
            erasure_key=config.secret_key.get_secret_value(),
        )
        if config.mail_backend == "file":
            remove_files(config.mail_dir, emailed)
        logger.info("participant %s erased their data by email", participant.id)
        goodbye = Letter(template="forgotten", payload={"locale": locale}, address=address)
        return Processed(kind="forgotten", letter=goodbye)


class SuggestCommand(Command):
    """Prose without a keyword while observations (or proposals) are welcome.

    Nothing is recorded: the receipt quotes what was read and offers it back ("répondez OK pour
    l'enregistrer comme observation"). The person's "OK", sent to their own signed address in
    answer to that receipt, records it (`_plain_words`, `Expecting.offered`): a short
    confirmation loop, signed like any reply. Never read from a line, so not in `COMMANDS`.
    """

    name = "suggest"
    starts_a_line = False

    def parse(self, line: str) -> dict[str, Any] | None:
        return None

    def target(self, args: dict[str, Any]) -> str:
        return f"suggest:{id(args)}"

    async def process(self, *, session, participant, args, config):
        return Processed(kind="suggestion", value=args["kind"], excerpt=args["text"])


STANCE = StanceCommand()
RANK = RankCommand()
OBSERVATION = ObservationCommand()
PROPOSAL = ProposalCommand()
CONSENT = ConsentCommand()
STOP = StopCommand()
SUGGEST = SuggestCommand()

# The one list of commands, in the order HELP shows them. Their words do not overlap, so the
# order does not change which command reads a line.


class FollowUpCommand(Command):
    """`A3 oui`, `A3 en partie : le guichet n'ouvre que le mardi`: whether action A3 progresses
    as announced, in the follow-up questionnaire that is open (a remark is optional)."""

    name = "followup"
    choices: ClassVar[Choices] = {
        FollowUpView.YES.value: {"fr": ("oui", "ok"), "en": ("yes",)},
        FollowUpView.PARTLY.value: {
            "fr": ("en partie", "partiellement", "un peu"),
            "en": ("partly", "partially", "in part"),
        },
        FollowUpView.NO.value: {"fr": ("non", "pas du tout"), "en": ("no", "not at all")},
        FollowUpView.UNKNOWN.value: {
            "fr": ("ne sais pas", "je ne sais pas", "nsp", "sans avis"),
            "en": ("don't know", "dont know", "do not know", "unknown"),
        },
    }
    # Its lines begin with an action's code, which is how they are known.
    starts_a_line = False
    takes_paragraph = True
    _code = re.compile(r"^\s*[\[(]?\s*A\s?(\d{1,4})\s*[\])]?", re.I)

    def parse(self, line: str) -> dict[str, Any] | None:
        match = self._code.match(line)
        if match is None:
            return None
        found = _starts_with_word(line[match.end() :].lstrip(_SEPARATORS), self.spellings())
        if found is None:
            return None
        word, rest = found
        return {
            "code": f"A{int(match.group(1))}",
            "view": self.choice_of(word),
            "remark": rest.lstrip(_SEPARATORS).strip(),
        }

    def target(self, args: dict[str, Any]) -> str:
        return f"followup:{args['code']}"

    def continues(self, args: dict[str, Any]) -> bool:
        # A remark may run over several lines; a bare answer is complete.
        return bool(args["remark"])

    def extend(self, args: dict[str, Any], more: str) -> None:
        args["remark"] = f"{args['remark']}\n{more}".strip()

    async def process(self, *, session, participant, args, config):
        await followup.answer_follow_up(
            session=session,
            participant=participant,
            code=args["code"],
            value=args["view"],
            remark=args["remark"] or None,
            channel=Channel.EMAIL,
        )
        return Processed(
            kind="followup",
            code=args["code"],
            value=args["view"],
            reason=_excerpt(args["remark"]) if args["remark"] else "",
        )


class PlanCommand(_WordCommand):
    """The whole plan after the vote, with each action's answer and progress, as an email."""

    name = "plan"
    words: ClassVar[Words] = {
        "fr": ("PLAN", "le plan", "plan d'actions", "plan d’actions"),
        "en": ("PLAN", "the plan", "action plan"),
    }
    in_subject = True
    brings_back = False

    async def process(self, *, session, participant, args, config):
        plan = await followup.plan_of(session=session, consultation_id=participant.consultation_id)
        return Processed(kind="plan", letter=Letter(template="plan", payload={"plan": plan}))


COMMANDS: tuple[Command, ...] = (
    STANCE,
    RANK,
    AnswerCommand(),
    FollowUpCommand(),
    OBSERVATION,
    PROPOSAL,
    CadenceCommand(),
    CONSENT,
    LocaleCommand(),
    MineCommand(),
    PlanCommand(),
    MyDataCommand(),
    ForgetCommand(),
    STOP,
    HelpCommand(),
)


def reply_words(locale: str) -> dict[str, str]:
    """The command words our prefilled links and examples use, in the reader's language."""
    return {key: word for command in COMMANDS for key, word in command.shown_words(locale).items()}


def help_names() -> list[str]:
    """The commands HELP lists, in order, by name (each has its line in the template)."""
    return [command.name for command in COMMANDS]


def parse_line(line: str) -> Parsed | None:
    """The command on one line, or None."""
    text = _strip_decoration(line)
    if not text:
        return None
    for command in COMMANDS:
        try:
            args = command.parse(text)
        except (ValueError, IndexError, KeyError):  # a parser bug must not lose the email
            logger.exception("command %s could not read a line", command.name)
            args = None
        if args is not None:
            return Parsed(command=command, line=line.strip(), args=args)
    return None


_KEYWORDS = {
    fold(word).split(" ", 1)[0]
    for command in COMMANDS
    if command.starts_a_line
    for word in command.spellings()
} - _COMMON_WORDS


def looks_like_a_command(line: str) -> bool:
    """Whether an unparsed line was meant as a command (and deserves to be quoted back)."""
    text = _strip_decoration(line)
    if _CODE_START.match(text) or _CODE_ANYWHERE.search(text):
        return True
    first = fold(text).split(" ", 1)[0].strip(_SEPARATORS) if text else ""
    return first in _KEYWORDS


@dataclass
class Found:
    """The commands found in one reply, and what else its lines held."""

    commands: list[Parsed] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)
    ignored: list[dict[str, Any]] = field(default_factory=list)


def find_commands(lines: list[str], subject: str = "", expecting: Expecting = NOTHING) -> Found:
    """Sort the cleaned lines of a reply into commands, lines not understood, lines ignored.

    Lines written the way our links prefill them are read first; `expecting` (what the
    consultation awaits from the person) then lets plain words be read as a person would
    (`_plain_words`): consent in words while the invitation awaits an answer, stances in a
    sentence, action codes while the ballot is open, and prose offered back as an observation or
    a proposal when nothing else was said.
    """
    found = Found()
    subject_command = parse_line(strip_reply_prefix(subject)) if subject else None
    if subject_command is not None and subject_command.command.allowed_in_subject(
        subject_command.args
    ):
        subject_command.line = subject.strip()
        found.commands.append(subject_command)
    previous: Parsed | None = None
    prose: list[str] = []
    ballot: list[str] = []
    ballot_lines: list[str] = []
    for index, raw in enumerate(lines):
        if index >= MAX_LINES:
            found.ignored.append({"line": "…", "why": "too_long"})
            break
        line = raw.rstrip()
        if not line.strip():
            previous = None  # a blank line ends a paragraph
            continue
        parsed = _line_commands(line, expecting)
        if parsed:
            found.commands.extend(parsed)
            previous = parsed[-1] if parsed[-1].command.continues(parsed[-1].args) else None
            continue
        if expecting.ballot and (codes := sentences.action_codes(line)):
            ballot.extend(code for code in codes if code not in ballot)
            ballot_lines.append(line.strip())
            previous = None
            continue
        if previous is not None and not looks_like_a_command(line):
            previous.command.extend(previous.args, line.strip())
            continue
        previous = None
        if looks_like_a_command(line):
            found.not_understood.append(_excerpt(line))
        else:
            prose.append(_excerpt(line))
    if ballot and not any(parsed.command.name == "rank" for parsed in found.commands):
        found.commands.append(
            Parsed(command=RANK, line=" / ".join(ballot_lines), args={"codes": ballot, "raw": ""})
        )
    if not found.commands and not found.not_understood and expecting.welcome:
        # Prose with no keyword while observations (or proposals) are welcome: offered back.
        for text in sentences.prose(lines[:MAX_LINES]):
            found.commands.append(
                Parsed(command=SUGGEST, line=text, args={"kind": expecting.welcome, "text": text})
            )
        if found.commands:
            prose = []
    if not found.commands and not found.not_understood:
        # Nothing looked like a command: show the person what we read, so they see why.
        found.not_understood.extend(prose[:5])
    else:
        found.ignored.extend({"line": line, "why": "not_a_command"} for line in prose[:10])
    if len(found.commands) > MAX_COMMANDS:
        for extra in found.commands[MAX_COMMANDS:]:
            found.ignored.append({"line": _excerpt(extra.line), "why": "too_many"})
        del found.commands[MAX_COMMANDS:]
    # A later line for the same thing replaces an earlier one ("F3 oui" then "F3 non: ...").
    last_for: dict[str, int] = {}
    for position, parsed in enumerate(found.commands):
        last_for[parsed.target] = position
    kept = []
    for position, parsed in enumerate(found.commands):
        if last_for[parsed.target] != position:
            found.ignored.append({"line": _excerpt(parsed.line), "why": "replaced"})
        else:
            kept.append(parsed)
    for parsed in kept:
        parsed.command.settle(parsed.args, expecting)
    found.commands = sorted(kept, key=lambda p: p.command.order)
    return found


_CONFIRMATIONS = frozenset({"ok", "oui", "yes", "okay", "d'accord", "ok merci", "oui merci"})


def _line_commands(line: str, expecting: Expecting) -> list[Parsed]:
    """The commands of one line: as our links write them, else in plain words."""
    parsed = parse_line(line)
    several = len(sentences.CODE_GROUP.findall(line)) > 1
    if parsed is not None and not (parsed.command is STANCE and several):
        return [parsed]
    if parsed is None or parsed.command is STANCE:
        stances = STANCE.sentence(_strip_decoration(line))
        if stances:
            return [Parsed(command=STANCE, line=line.strip(), args=args) for args in stances]
    if parsed is not None:
        return [parsed]
    return _plain_words(line, expecting)


def _plain_words(line: str, expecting: Expecting) -> list[Parsed]:
    """What a line without any code or keyword says, given what awaits the person."""
    text = line.strip()
    if expecting.offered and fold(text).strip(_SEPARATORS + "!") in _CONFIRMATIONS:
        # "OK" under the receipt that offered prose as an observation: record it, as offered.
        by_kind = {command.name: command for command in (OBSERVATION, PROPOSAL)}
        return [
            Parsed(command=by_kind[kind], line=text, args={"text": offered})
            for kind, offered in expecting.offered
        ]
    if (everything := STANCE.everything(text, expecting)) is not None:
        return [Parsed(command=STANCE, line=text, args=everything)]
    if sentences.says_stop(text):
        return [Parsed(command=STOP, line=text, args={})]
    if expecting.consent and sentences.says_consent(text):
        return [Parsed(command=CONSENT, line=text, args={})]
    return []


_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|tr|fw|fwd|réf|ref|aw)\s*(?:\[\d+\])?\s*:\s*)+", re.I)


def strip_reply_prefix(subject: str) -> str:
    return _REPLY_PREFIX.sub("", subject)


async def execute(
    *, session: AsyncSession, participant: Participant, found: Found, config: MailConfig
) -> Receipt:
    """Run each command in its own savepoint; a refusal is explained, not fatal."""
    receipt = Receipt(not_understood=list(found.not_understood), ignored=list(found.ignored))
    for parsed in found.commands:
        try:
            async with session.begin_nested():
                outcome = await parsed.command.process(
                    session=session, participant=participant, args=parsed.args, config=config
                )
        except UserError as exc:
            logger.info("reply command refused: %s", exc.code)
            receipt.refused.append(
                {"line": _excerpt(parsed.line), "reason": _sentence(exc, participant.locale)}
            )
            continue
        if outcome.letter is not None:
            receipt.letters.append(outcome.letter)
        if outcome.kind == "help":
            receipt.help = True
        receipt.processed.append(outcome.item(_excerpt(parsed.line)))
    return receipt


def _sentence(exc: UserError, locale: str) -> str:
    try:
        return render_error(exc.code, exc.params, locale)
    except (LookupError, TemplateNotFound):
        logger.warning("no sentence for error code %s", exc.code)
        return exc.code


async def still_awaiting(*, session: AsyncSession, participant: Participant) -> dict[str, Any]:
    """What still awaits the person, for the end of the receipt."""
    if participant.opted_out_at is not None or participant.erased_at is not None:
        return {}
    return (await awaiting(session=session, participant=participant)).summary()
