"""Keep the French catalogs in step with the templates.

`python -m templates.i18n_tool update|check`.

`update` extracts every translatable string from the templates and the Python code of each area
and merges it into `templates/locale/<lang>/LC_MESSAGES/<area>.po`, keeping what is translated.
`check` fails when a string has no translation (a test runs it), so no French reader ever meets
an English sentence.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "templates" / "locale"
TRANSLATED = ("fr",)
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "false", "silent": "false"}

# area -> (folders to scan, method map)
AREAS: dict[str, list[tuple[Path, list[tuple[str, str]]]]] = {
    "common": [(ROOT / "templates" / "common", [("**.txt", "jinja2"), ("**.html", "jinja2")])],
    "telegram": [
        (ROOT / "templates" / "telegram", [("**.txt", "jinja2"), ("**.html", "jinja2")]),
        (ROOT / "bot", [("**.py", "python")]),
    ],
    "email": [
        (ROOT / "templates" / "email", [("**.txt", "jinja2"), ("**.html", "jinja2")]),
        (ROOT / "mailer", [("**.py", "python")]),
    ],
    "report": [
        (
            ROOT / "templates" / "report",
            [("**.txt", "jinja2"), ("**.html", "jinja2"), ("**.md", "jinja2")],
        )
    ],
    "web": [(ROOT / "templates" / "web", [("**.html", "jinja2")])],
    "cli": [
        (ROOT / "palabre", [("**.py", "python")]),
        (ROOT / "scheduler", [("**.py", "python")]),
    ],
}


def extract(area: str) -> Catalog:
    template = Catalog(project="palabre", domain=area)
    for folder, method_map in AREAS[area]:
        if not folder.exists():
            continue
        options = {pattern: JINJA_OPTIONS for pattern, method in method_map if method == "jinja2"}
        for filename, lineno, message, comments, context in extract_from_dir(
            folder, method_map, options_map=options, keywords={**DEFAULT_KEYWORDS, "N_": None}
        ):
            template.add(
                message,
                None,
                [(f"{folder.name}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    return template


def po_path(locale: str, area: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{area}.po"


def update() -> None:
    for area in AREAS:
        template = extract(area)
        for locale in TRANSLATED:
            path = po_path(locale, area)
            if path.exists():
                with path.open("rb") as handle:
                    catalog = read_po(handle, locale=locale, domain=area)
            else:
                catalog = Catalog(locale=locale, domain=area, project="palabre")
            catalog.update(template, no_fuzzy_matching=True)
            catalog.fuzzy = False
            if locale == "fr":
                # gettext's usual French rule (0 and 1 are singular), not CLDR's three forms.
                catalog._num_plurals, catalog._plural_expr = 2, "(n > 1)"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as handle:
                write_po(handle, catalog, ignore_obsolete=True, width=100, sort_by_file=True)


def missing() -> list[str]:
    """Every `area: msgid` that has no (non-fuzzy) French translation."""
    problems: list[str] = []
    for area in AREAS:
        template = extract(area)
        for locale in TRANSLATED:
            path = po_path(locale, area)
            catalog = Catalog(locale=locale)
            if path.exists():
                with path.open("rb") as handle:
                    catalog = read_po(handle, locale=locale, domain=area)
            for message in template:
                if not message.id:
                    continue
                found = catalog.get(message.id, context=message.context)
                plural = isinstance(message.id, tuple | list)
                empty = (
                    found is None
                    or found.fuzzy
                    or not found.string
                    or (plural and not all(found.string))
                )
                if empty:
                    msgid = message.id[0] if plural else message.id
                    problems.append(f"{locale}/{area}.po: {msgid!r}")
    return problems


def main(argv: list[str]) -> int:
    verb = argv[1] if len(argv) > 1 else "check"
    if verb == "update":
        update()
        return 0
    problems = missing()
    for problem in problems:
        print("untranslated:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
