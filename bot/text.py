"""Rendering the bot's messages, and splitting a long one for Telegram's 4,096-character limit.

Telegram counts the limit on the text it shows (after HTML parsing), in UTF-16 code units. A long
message is cut at a paragraph break if one fits, else at a line break, else at a space; tags
open at the cut are closed and opened again in the next part, so every part is valid HTML.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from templates.i18n import translations
from templates.render import render

MAX_LENGTH = 4096

_TOKEN = re.compile(r"<[^>]*>|&#?\w+;|[^<&]|[<&]", re.DOTALL)
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][\w-]*)")


def render_html(template: str, locale: str, /, **context: Any) -> str:
    """`templates/telegram/<template>.html` for a reader of `locale` (user text is escaped)."""
    return render(f"telegram/{template}.html", context, locale)


def N_(message: str) -> str:
    """Mark a label for extraction; it is translated when shown (see `label`)."""
    return message


def label(message: str, locale: str) -> str:
    """A marked label (`N_`) in the reader's language."""
    return translations(locale).gettext(message)


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def visible_length(text: str) -> int:
    """What Telegram counts: the text without tags, entities decoded."""
    return utf16_length(html.unescape(re.sub(r"<[^>]*>", "", text)))


@dataclass
class _Atom:
    raw: str
    width: int
    tag: str | None = None  # the tag name for a tag
    closing: bool = False


def _atoms(text: str) -> list[_Atom]:
    atoms = []
    for raw in _TOKEN.findall(text):
        if raw.startswith("<") and len(raw) > 1 and raw.endswith(">"):
            match = _TAG_NAME.match(raw)
            name = match.group(1).lower() if match else None
            atoms.append(_Atom(raw, 0, name, raw.startswith("</")))
        elif raw.startswith("&") and len(raw) > 1:
            atoms.append(_Atom(raw, utf16_length(html.unescape(raw))))
        else:
            atoms.append(_Atom(raw, utf16_length(raw)))
    return atoms


def _tag_name(tag: str) -> str:
    match = _TAG_NAME.match(tag)
    return match.group(1).lower() if match else ""


def split_message(text: str, limit: int = MAX_LENGTH) -> list[str]:
    """`text` in parts that Telegram accepts, cut at the most natural place that fits."""
    if visible_length(text) <= limit:
        return [text]
    atoms = _atoms(text)
    parts: list[str] = []
    start = 0
    reopen: list[str] = []
    while start < len(atoms):
        width = 0
        stack = [(_tag_name(tag), tag) for tag in reopen]
        best: dict[int, tuple[int, list[tuple[str, str]]]] = {}
        index = start
        while index < len(atoms):
            atom = atoms[index]
            if width + atom.width > limit:
                break
            width += atom.width
            if atom.tag and atom.closing:
                if stack and stack[-1][0] == atom.tag:
                    stack.pop()
            elif atom.tag:
                stack.append((atom.tag, atom.raw))
            index += 1
            # A break candidate after this atom: paragraph (3), line (2), space (1).
            previous = atoms[index - 2].raw if index - 2 >= start else ""
            if atom.raw == "\n" and previous == "\n":
                best[3] = (index, list(stack))
            elif atom.raw == "\n":
                best[2] = (index, list(stack))
            elif atom.raw == " ":
                best[1] = (index, list(stack))
        if index >= len(atoms):
            cut, open_tags = len(atoms), stack
        else:
            for priority in (3, 2, 1):
                # A break in the first quarter would leave a tiny part: prefer a lesser break.
                if priority in best and best[priority][0] - start > (index - start) // 4:
                    cut, open_tags = best[priority]
                    break
            else:
                cut, open_tags = index, stack
            if cut == start:  # nothing fits (cannot happen with a positive limit); move on
                cut, open_tags = index + 1, stack
        body = "".join(reopen) + "".join(atom.raw for atom in atoms[start:cut])
        closing = "".join(f"</{name}>" for name, _ in reversed(open_tags))
        part = (body.rstrip() + closing).strip()
        if visible_length(part) > 0:
            parts.append(part)
        reopen = [raw for _, raw in open_tags]
        start = cut
        while start < len(atoms) and atoms[start].raw in {" ", "\n"}:
            start += 1
    return parts
