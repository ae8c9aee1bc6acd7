"""The meeting brief as a PDF: the same HTML page, laid out by WeasyPrint on A4.

The HTML is self-contained (styles inline, charts as inline SVG), so the PDF needs nothing from
elsewhere; any URL the page might name is refused rather than fetched, so making a brief never
reaches the network. WeasyPrint needs Pango from the system: `scripts/run` and `scripts/test`
install it when it is missing.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def _no_fetching(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise ValueError(f"the brief is self-contained; not fetching {url[:80]!r}")


def pdf_from_html(html: str) -> bytes:
    """The PDF of an HTML page (its `@page` rules give the paper size and margins)."""
    from weasyprint import HTML

    # WeasyPrint names every CSS property it skips at WARNING; for a page that is also made
    # for screens, that is expected, not a problem to report.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    return HTML(string=html, url_fetcher=_no_fetching).write_pdf()
