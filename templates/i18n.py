"""Translations: Babel catalogs under `templates/locale/<lang>/LC_MESSAGES/*.po`.

English is the source language (the msgids); each area (common, telegram, email, report, cli)
has its own catalog so that they can be edited independently, and they are merged per locale.
Catalogs are compiled in memory from the `.po` files at first use: no build step, and the `.po`
is the only file a translator edits.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
LOCALE_DIR = Path(__file__).parent / "locale"


def normalize_locale(value: str | None, default: str = DEFAULT_LOCALE) -> str:
    """`fr-FR`, `FR`, `fr_CA` → `fr`; anything unknown → `default`."""
    if not value:
        return default
    lang = value.replace("_", "-").split("-", 1)[0].lower()
    return lang if lang in LOCALES else default


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The merged translations for `locale` (English needs none: it is the source)."""
    locale = normalize_locale(locale)
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    merged: Translations | None = None
    for po_path in sorted(folder.glob("*.po")):
        part = _compiled(locale, po_path.stem)
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    return merged if merged is not None else gettext.NullTranslations()


@cache
def _compiled(locale: str, area: str) -> Translations:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / f"{area}.po").open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain=area)


@cache
def area_translations(locale: str, area: str) -> gettext.NullTranslations:
    """The translations of one area only (the command line reads only its own catalog, so as
    not to compile every other one at each start)."""
    locale = normalize_locale(locale)
    if not (LOCALE_DIR / locale / "LC_MESSAGES" / f"{area}.po").exists():
        return gettext.NullTranslations()
    return _compiled(locale, area)


def gettext_for(locale: str, area: str | None = None):
    """A `_` function for Python code that prints to a person (the command line); with
    `area`, from that area's catalog only."""
    return (area_translations(locale, area) if area else translations(locale)).gettext


def ngettext_for(locale: str, area: str | None = None):
    """An `ngettext(singular, plural, n)` for Python code that prints to a person."""
    return (area_translations(locale, area) if area else translations(locale)).ngettext
