"""Plain words: what a reply says when it is not written the way our links prefill it.

People answer "Je confirme F1 et F2, pas d'accord avec F3 car …", "Oui j'accepte, merci.",
"Mon classement : 1. A3 / 2. A1", "Contre F5, le bus 32 passe le samedi", or write an observation
without any keyword. These functions read such text as a person would; they are pure, know
nothing of the database, and return plain data that `mailer.commands.find_commands` turns into
commands, knowing what the consultation awaits from the person (`commands.Expecting`).
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = " \t:;,.=–—-"


def fold(text: str) -> str:
    """Lower-case, accents removed, typographic apostrophes made plain, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.lower().split())


def starts_with_word(text: str, words: tuple[str, ...] | list[str]) -> tuple[str, str] | None:
    """(word, rest) when folded `text` starts with one of `words` as a whole word."""
    folded = fold(text)
    for word in sorted(words, key=len, reverse=True):
        target = fold(word)
        if not folded.startswith(target):
            continue
        rest = folded[len(target) :]
        if rest and target[-1].isalnum() and (rest[0].isalnum() or rest[0] == "'"):
            continue
        return word, original_rest(text, target)
    return None


def original_rest(text: str, folded_prefix: str) -> str:
    """The part of `text` after the words that fold to `folded_prefix` (accents preserved)."""
    for end in range(min(len(text), 2 * len(folded_prefix) + 8) + 1):
        if fold(text[:end]) == folded_prefix:
            rest = text[end:]
            if not rest or not (rest[0].isalnum()):
                return rest
    return text[len(folded_prefix) :]


def _ends_with_word(text: str, words: list[str]) -> tuple[str, int] | None:
    """(word, where it starts in `text`) when `text` ends with one of `words` as a whole word."""
    for word in sorted(words, key=len, reverse=True):
        target = fold(word)
        for start in range(len(text) - 1, -1, -1):
            tail = fold(text[start:])
            if len(tail) > len(target):
                break
            if tail == target and (start == 0 or not text[start - 1].isalnum()):
                return word, start
    return None


# A finding's code, or several joined ("F1 et F2", "F2 and F4", "F1, F3").
CODE_GROUP = re.compile(
    r"(?<![\w])F\s?\d{1,4}\b(?:\s*(?:,|;|&|/|\bet\b|\band\b)\s*F\s?\d{1,4}\b)*", re.I
)
# Words between a stance and the code it is about: "oui pour F1", "pas d'accord avec F3".
_CONNECTOR = re.compile(r"(?:[\s:–—-]*\b(?:pour|avec|with|for|to|on|sur|about)\b)*[\s:–—-]*$", re.I)
# Words that only introduce the reason: "car", "parce que", "finalement", "I disagree,".
_INTRO = re.compile(
    r"^(?:car|parce que|parce qu['’]|puisque|finalement|en fait|because|since|as|"
    r"i disagree|i don['’]t agree|je ne suis pas d['’]accord)(?:\b|(?<=['’]))[\s,:;–—-]*",
    re.I,
)
# What a confirmation may add that says nothing more: "Oui, tout à fait."
_EMPHASIS = frozenset(
    {
        "tout a fait",
        "absolument",
        "bien sur",
        "completement",
        "totalement",
        "evidemment",
        "merci",
        "absolutely",
        "completely",
        "definitely",
        "of course",
        "indeed",
        "thanks",
    }
)


def clean_reason(reason: str, *, confirm: bool) -> str:
    """The reason as the person meant it, without what only introduces or emphasises it."""
    value = reason.strip().lstrip(_SEPARATORS + "!")
    while (match := _INTRO.match(value)) is not None and match.end():
        value = value[match.end() :].lstrip(_SEPARATORS + "!")
    value = value.strip()
    if not any(char.isalnum() for char in value):
        return ""
    if confirm and fold(value).strip(" .!") in _EMPHASIS:
        return ""
    return value


def codes_of(group: str) -> list[str]:
    return list(dict.fromkeys(f"F{int(n)}" for n in re.findall(r"F\s?(\d{1,4})", group, re.I)))


def stances_in(
    line: str, leading, words: list[tuple[str, str]]
) -> list[tuple[list[str], str, str]] | None:
    """The stances of a sentence, as (codes, choice, reason), or None when one is unclear.

    Each group of codes takes the stance word just after it ("F3 d'accord, F5 pas d'accord :
    reason") or, failing that, the one just before it ("Je confirme F1 et F2, pas d'accord avec
    F3 car reason"); a word after a comma belongs to the next group. `leading(text)` is the
    stance reader of a line that starts with a code: (choice, what follows) or None.
    """
    groups = list(CODE_GROUP.finditer(line))
    if not groups:
        return None
    plain = [word for word, _ in words if word[:1].isalnum() or word[:1] == "'"]
    choices: list[str | None] = []
    afters: list[str] = []
    for index, group in enumerate(groups):
        end = groups[index + 1].start() if index + 1 < len(groups) else len(line)
        after = line[group.end() : end]
        found = None if after.lstrip(" \t")[:1] == "," else leading(after)
        choices.append(found[0] if found else None)
        afters.append(found[1] if found else after)
    for index, group in enumerate(groups):
        if choices[index] is not None:
            continue
        before = afters[index - 1] if index else line[: group.start()]
        trimmed = before[: _CONNECTOR.search(before).start()]  # type: ignore[union-attr]
        found_before = _ends_with_word(trimmed, plain)
        if found_before is None:
            return None
        word, start = found_before
        choices[index] = next(c for w, c in words if fold(w) == fold(word))
        if index:
            afters[index - 1] = before[:start]
    return [
        (codes_of(group.group(0)), choice, after)
        for group, choice, after in zip(groups, choices, afters, strict=True)
        if choice is not None
    ]


# Consent and refusal in plain words, while the invitation awaits an answer.
_CONSENT = re.compile(
    r"\b(?:j'accepte|oui,? j'accepte|je suis d'accord pour participer|je participe|"
    r"ok pour moi|d'accord pour participer|avec plaisir|volontiers|count me in|i'm in|"
    r"i am in|i agree|i accept|happy to take part|happy to participate|yes,? please)\b"
)
_DECLINE = re.compile(
    r"\b(?:ne souhaite pas participer|ne veux pas participer|ne participerai pas|"
    r"ne plus (?:m'envoyer|recevoir|etre contacte)|retirez[- ]moi|desinscrivez[- ]moi|"
    r"supprimez[- ]moi|unsubscribe me|remove me|stop sending|no longer (?:send|receive)|"
    r"do not want to take part|don't want to take part|not interested)\b"
)


def says_consent(text: str) -> bool:
    folded = fold(text)
    return bool(_CONSENT.search(folded)) and not says_stop(text)


def says_stop(text: str) -> bool:
    return bool(_DECLINE.search(fold(text)))


# Agreeing with every finding at once: "Je suis d'accord avec tous les constats."
_ALL_FINDINGS = re.compile(
    r"\b(?P<word>d'accord|je confirme|confirme|i agree|agree|i confirm|confirm)\b"
    r"(?: avec| with)? (?:tous les|toutes les|l'ensemble des|all(?: of)? the|all|every) "
    r"(?:constats|findings|points)\b"
)


def agrees_with_all(text: str) -> bool:
    folded = fold(text)
    return bool(_ALL_FINDINGS.search(folded)) and "pas d'accord" not in folded


ACTION_CODE = re.compile(r"(?<![\w])A\s?(\d{1,4})\b", re.I)


def action_codes(line: str) -> list[str]:
    return [f"A{int(n)}" for n in ACTION_CODE.findall(line)]


# What is not an observation nor a proposal: greetings, thanks, sign-offs, questions to us.
_COURTESY = re.compile(
    r"^(?:bonjour|bonsoir|salut|hello|hi|dear|madame|monsieur|merci|thanks|thank you|"
    r"cordialement|bien cordialement|bien a vous|bonne (?:journee|soiree|continuation)|"
    r"a bientot|best|regards|kind regards|best regards|cheers|sincerely)\b"
)


def is_courtesy(line: str) -> bool:
    folded = fold(line).strip(_SEPARATORS + "!")
    return not folded or bool(_COURTESY.match(folded))


def looks_like_a_name(line: str) -> bool:
    """A signature line: a few words, no sentence punctuation ("Marie", "Pierre Vidal")."""
    words = line.split()
    return 0 < len(words) <= 4 and not re.search(r"[.!?:;,]\s*$", line.strip())


def paragraphs(lines: list[str]) -> list[str]:
    """The paragraphs of a reply, each as one line of text."""
    found: list[str] = []
    current: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            found.append(" ".join(current))
            current = []
    return found


_QUESTION_TO_US = re.compile(r"\?\s*$")
_SUGGESTION_START = re.compile(
    r"^(?:pourquoi ne pas|why not|il faudrait|on pourrait|je propose|je suggere|we could|"
    r"we should|i suggest|i propose)\b"
)


def prose(lines: list[str]) -> list[str]:
    """The paragraphs that say something: no greeting, thanks, signature, nor question to us.

    A question is kept when it suggests something ("Pourquoi ne pas créer …?").
    """
    found = []
    for paragraph in paragraphs(lines):
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", paragraph) if s and not is_courtesy(s)]
        text = " ".join(sentences).strip()
        if not text or is_courtesy(text) or looks_like_a_name(text):
            continue
        if _QUESTION_TO_US.search(text) and not _SUGGESTION_START.match(fold(text)):
            continue
        found.append(text)
    return found
