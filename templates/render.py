"""One `render(name, context, locale)` for every text a person reads.

Templates live in `templates/`; `.html` templates are autoescaped (Telegram's HTML parse mode
and email HTML alike), so user-written text is always escaped. Undefined variables raise
(`StrictUndefined`): a template and its context must agree exactly. The context is plain JSON,
the same that the outbox stores.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import escape

from consultation.clock import as_utc
from templates.i18n import normalize_locale, translations

TEMPLATE_DIR = Path(__file__).parent


def _parse_when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(str(value)))


@cache
def environment(locale: str) -> Environment:
    """The Jinja environment for one locale, its gettext and format filters installed."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)

    def datetime_filter(value: Any, tz: str = "Europe/Paris", fmt: str = "medium") -> str:
        return format_datetime(_parse_when(value), fmt, tzinfo=ZoneInfo(tz), locale=locale)

    def duration_filter(seconds: float, granularity: str = "minute") -> str:
        return format_timedelta(
            seconds, granularity=granularity, threshold=1.1, locale=locale, add_direction=False
        )

    def date_filter(value: Any, fmt: str = "long") -> str:
        # A calendar day (a due date): no time zone to convert.
        return format_date(date.fromisoformat(str(value)[:10]), fmt, locale=locale)

    def day_filter(value: Any, fmt: str = "d MMMM") -> str:
        """A calendar day (an ISO date such as a meeting's) as the reader writes it."""
        return format_date(date.fromisoformat(str(value)[:10]), fmt, locale=locale)

    env.filters["datetime"] = datetime_filter
    env.filters["date"] = date_filter
    env.filters["day"] = day_filter
    env.filters["duration"] = duration_filter
    env.filters["number"] = lambda value: format_decimal(value, locale=locale)
    env.filters["percent"] = lambda value: format_percent(value, locale=locale)
    env.filters["tojson_plain"] = lambda value: json.dumps(value, ensure_ascii=False)
    env.filters["localized"] = lambda value: localized(value, locale)
    env.globals["locale"] = locale
    env.globals["chart"] = lambda kind, *args, **kwargs: _chart(locale, kind, *args, **kwargs)
    return env


def _chart(locale: str, kind: str, *args: Any, text: str = "number", **kwargs: Any) -> Any:
    """`{{ chart("heatmap", ...) }}` in a template: an SVG from `templates.charts`, numbers
    written the reader's way (`text="percent"` for shares)."""
    from templates import charts  # matplotlib loads only when a brief is drawn

    def formatter(value: float) -> str:
        if text == "percent":
            return format_percent(value, locale=locale)
        return format_decimal(value, locale=locale)

    draw = getattr(charts, kind)
    if kind in {"heatmap", "bars", "participation"}:
        kwargs["text"] = formatter
    return draw(*args, **kwargs)


def localized(value: Any, locale: str) -> str:
    """A `{"fr": ..., "en": ...}` label in `locale`, falling back to French, then any."""
    if isinstance(value, dict):
        return str(value.get(locale) or value.get("fr") or next(iter(value.values()), ""))
    return "" if value is None else str(value)


def render(name: str, context: dict[str, Any], locale: str) -> str:
    """Render `templates/<name>` (with its extension) for a person reading `locale`."""
    locale = normalize_locale(locale)
    template = environment(locale).get_template(name)
    return template.render(**context).strip()


def render_error(code: str, params: dict[str, Any], locale: str, *, html: bool = False) -> str:
    """The sentence that explains a `UserError` to the person, in their language.

    The sentences live in `templates/common/errors/<area>.txt`, where `<area>` is the code's
    first part (`observation.too_long` → `observation.txt`), one `{% if code == ... %}` chain
    each. The text is escaped for HTML channels.
    """
    area = code.split(".", 1)[0]
    text = render(f"common/errors/{area}.txt", {"code": code, **params}, locale)
    if not text:
        raise LookupError(f"no sentence for error code {code!r} in common/errors/{area}.txt")
    return str(escape(text)) if html else text


def message_context(
    *, payload: dict[str, Any], consultation: Any | None, recipient: Any | None
) -> dict[str, Any]:
    """The context every outbox template gets: its payload, the consultation, the recipient.

    Senders of every channel build it the same way, so one payload renders on any channel. The
    recipient is the reader themself (their own name is fine to show); never anyone else.
    """
    context: dict[str, Any] = dict(payload)
    context["consultation"] = (
        {
            "slug": consultation.slug,
            "title": consultation.title,
            "question": consultation.question,
            "scope_in": list(consultation.scope_in),
            "scope_out": list(consultation.scope_out),
            "timezone": consultation.timezone,
        }
        if consultation is not None
        else None
    )
    context["recipient"] = (
        {"name": recipient.name or "", "locale": recipient.locale, "role": recipient.role}
        if recipient is not None
        else {"name": "", "locale": "fr", "role": "participant"}
    )
    return context
