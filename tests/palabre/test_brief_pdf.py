"""The meeting brief as a PDF: the pages render, the charts are on them, the example fits.

The pages are turned into images with pdfium (the engine of Chrome's PDF viewer) and their text
is read back, so the test sees what a reader of the PDF sees, not what was meant to be drawn.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pypdfium2
from sqlmodel import SQLModel

from consultation import clock as clock_module
from consultation.brief import brief_context
from consultation.clock import ManualClock
from consultation.results import results
from models.db import Database
from templates.pdf import pdf_from_html
from templates.render import render
from tests.palabre.example_story import the_example
from tests.palabre.test_brief import brief


def pages_of(pdf: bytes) -> list[tuple[str, object]]:
    """Each page's text and its image (rendered at 50 dpi)."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        pages = []
        for page in document:
            text = page.get_textpage().get_text_range()
            image = page.render(scale=50 / 72).to_pil().convert("L")
            pages.append((" ".join(text.split()), image))
        return pages
    finally:
        document.close()


def ink(image) -> float:
    """The share of the page's pixels that are not white."""
    histogram = image.histogram()
    return 1 - sum(histogram[250:]) / sum(histogram)


async def test_the_pdf_brief_renders_its_pages_with_their_charts(db, clock):
    _, briefs = await brief(db, clock, locales=("en",))
    pdf = pdf_from_html(briefs["en"]["html"])
    assert pdf.startswith(b"%PDF-")
    pages = pages_of(pdf)
    assert 2 <= len(pages) <= 4
    text = " ".join(page_text for page_text, _ in pages)
    # The first page is the summary alone; the detail starts on the second.
    assert pages[0][0].startswith("MEETING BRIEF Plan ESS de test")
    assert "In short" in pages[0][0] and "Timetable and participation" not in pages[0][0]
    # Text drawn inside the charts: participation ("contributed / invited (share)"), the Borda
    # bars ("1. A1", "10.5") and the questionnaire's legend, each only in its chart.
    assert "6 / 6 (100%)" in text and "1 / 5 (20%)" in text
    assert "1. A1" in text and "2. A2" in text
    assert "Invited" in text and "Contributed" in text
    for page_text, image in pages:
        assert ink(image) > 0.02, page_text[:60]


def test_the_example_at_60_people_fits_a_summary_page_and_six_more(tmp_path):
    """The example consultation run whole (60 people, 72 observations, 7 findings, 28
    proposals, 41 ballots, 4 questionnaires): one page of summary, at most six of detail."""

    async def build() -> dict:
        database = Database(f"sqlite:///{tmp_path / 'example.db'}")
        async with database.engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
        manual = ManualClock(datetime(2027, 1, 11, 8, 0, tzinfo=UTC))
        previous = clock_module.set_clock(manual)
        try:
            async with database.session() as session:
                consultation = await the_example(session, manual)
            async with database.session() as session:
                document = await results(session=session, consultation_id=consultation.id)
            return brief_context(
                document,
                scope_in=list(consultation.scope_in),
                scope_out=list(consultation.scope_out),
            )
        finally:
            clock_module.set_clock(previous)
            await database.dispose()

    context = asyncio.run(build())
    assert context["ranking"]["ballots"] == 41
    assert len(context["findings"]) == 7
    for locale, summary_words in (("en", "What divides us"), ("fr", "Ce qui nous divise")):
        started = time.perf_counter()
        pdf = pdf_from_html(render("report/brief.html", context, locale))
        elapsed = time.perf_counter() - started
        pages = pages_of(pdf)
        assert len(pages) <= 7, (locale, len(pages))
        first = pages[0][0]
        assert summary_words in first
        assert "F2" in first and "A1" in first
        # The detail starts on page two: the timetable is not on the summary page.
        assert "Contributors" not in first and "Contributeurs" not in first
        assert elapsed < 120, (locale, elapsed)
