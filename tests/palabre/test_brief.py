"""The meeting brief (`palabre results --html/--markdown/--pdf`): what coordinators project.

The story: a small consultation on the social and solidarity economy runs through observation,
review and ranking. Fifteen actors in four categories take part, the elected officials hardly at
all; F1 is confirmed by three quarters of those who answered it, two people contest it; the
ranking puts A1 first with A2 and A3 tied behind it, A1 beating A2 by five ballots to four. No
category has five people answering a finding or casting a ballot, so no breakdown is shown.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest
from babel.messages.pofile import read_po

from consultation import actions, findings, followup, observations, questionnaires
from consultation.brief import brief_context
from consultation.results import results
from models import Channel, Consultation, Participant
from models.db import Database
from templates.i18n import LOCALE_DIR
from templates.render import render
from tests.consultation.evaluation_story import move_on
from tests.factories import make_consultation, make_coordinator, make_participant

TG = Channel.TELEGRAM
PEOPLE = {
    "association": ["Aïcha Benali", "Bruno Martin", "Chloé Durand", "Damien Roux", "Emma Petit"],
    "cooperative": ["Gaëlle Simon", "Hugo Laurent", "Inès Moreau"],
    "elected": ["Jean Lefèvre", "Karima Ziani", "Louis Garnier", "Manon Faure", "Nadia Perrin"],
    "citizen": ["Olivier Blanc"],
}
LATE = "Farid Haddad"  # an association member who only answers F2
URSCOP = "Les coopératives sont déjà suivies par l'URSCOP."
FONCIER = "Le *vrai* frein, c'est le foncier | pas l'accompagnement."
F2_REASON = "Le foncier n'est pas le principal frein."
WISH = "Plus de temps pour répondre, s'il vous plaît."
EVENINGS = "Les réunions en soirée m'arrangent mieux."
BALLOTS = {
    "Aïcha Benali": ["A1", "A2", "A3"],
    "Bruno Martin": ["A1", "A3", "A2"],
    "Chloé Durand": ["A1"],
    "Damien Roux": ["A2", "A3"],
    "Emma Petit": ["A3", "A1"],
    "Gaëlle Simon": ["A2", "A1"],
    "Hugo Laurent": ["A2"],
    "Inès Moreau": ["A3", "A2"],
    "Jean Lefèvre": ["A1", "A3"],
}


@dataclass
class Story:
    consultation: Consultation
    people: list[Participant]


async def a_small_consultation(session, clock) -> Story:
    """Observation, review (F1, F2), proposals, ranking; a questionnaire after observation."""
    consultation = await make_consultation(session, questionnaires=True)
    coordinator = await make_coordinator(session, consultation)
    people = {}
    for category, names in PEOPLE.items():
        for name in names:
            people[name] = await make_participant(
                session, consultation, name=name, category=category
            )
    people[LATE] = await make_participant(session, consultation, name=LATE)

    async def observe(name: str, text: str) -> int:
        made = await observations.submit_observation(
            session=session, participant=people[name], text=text, channel=TG
        )
        return made.id

    o1 = await observe("Aïcha Benali", "Les petites coopératives n'ont aucun accompagnement.")
    o2 = await observe("Gaëlle Simon", "Le foncier en centre-ville est hors de prix pour l'ESS.")
    await observe("Jean Lefèvre", "Les SCOP de moins de cinq salariés sont isolées.")

    await move_on(session, consultation, "review", clock)
    step = await questionnaires.get_questionnaire(
        session=session, consultation_id=consultation.id, key="after-observe"
    )
    await questionnaires.open_questionnaire(session=session, questionnaire_id=step.id)
    for name, likert, choice, text in (
        ("Aïcha Benali", 4, 2, WISH),
        ("Gaëlle Simon", 5, 1, None),
        ("Jean Lefèvre", 2, 2, EVENINGS),
    ):
        for position, value in ((1, likert), (2, choice), (3, text)):
            where = {"questionnaire_key": "after-observe", "position": position, "channel": TG}
            if value is None:
                await questionnaires.skip_question(
                    session=session, participant=people[name], **where
                )
            else:
                await questionnaires.answer_question(
                    session=session, participant=people[name], value=value, **where
                )
    for text, linked in (
        ("Les petites coopératives manquent d'un accompagnement adapté.", [o1]),
        ("Le foncier est inaccessible aux structures de l'ESS.", [o2]),
    ):
        await findings.draft_finding(
            session=session,
            consultation_id=consultation.id,
            by=coordinator,
            text=text,
            observation_ids=linked,
        )
    await findings.publish_findings(
        session=session, consultation_id=consultation.id, by=coordinator
    )
    stances = [
        ("F1", "Aïcha Benali", "confirm", None),
        ("F1", "Bruno Martin", "confirm", None),
        ("F1", "Chloé Durand", "confirm", None),
        ("F1", "Damien Roux", "contest", URSCOP),
        ("F1", "Emma Petit", "abstain", None),
        ("F1", "Gaëlle Simon", "confirm", None),
        ("F1", "Hugo Laurent", "contest", FONCIER),
        ("F1", "Inès Moreau", "confirm", None),
        ("F1", "Jean Lefèvre", "confirm", None),
        ("F2", "Aïcha Benali", "confirm", None),
        ("F2", "Gaëlle Simon", "contest", F2_REASON),
        ("F2", LATE, "confirm", None),
    ]
    for code, name, choice, reason in stances:
        await findings.record_stance(
            session=session,
            participant=people[name],
            code=code,
            choice=choice,
            reason=reason,
            channel=TG,
        )

    await move_on(session, consultation, "propose", clock)
    for text in (
        "Un guichet unique de l'ESS.",
        "Une foncière solidaire.",
        "Des prêts d'honneur pour les coopératives.",
    ):
        await actions.add_action(
            session=session, consultation_id=consultation.id, by=coordinator, text=text
        )
    await actions.shortlist(
        session=session, consultation_id=consultation.id, by=coordinator, codes=["A1", "A2", "A3"]
    )
    await move_on(session, consultation, "rank", clock)
    for name, ranking in BALLOTS.items():
        await actions.cast_ballot(
            session=session, participant=people[name], codes=ranking, channel=TG
        )
    return Story(consultation, [coordinator, *people.values()])


async def brief(db: Database, clock, locales=("en", "fr")) -> tuple[Story, dict[str, dict]]:
    """The story's brief in HTML and Markdown for each locale."""
    async with db.session() as session:
        story = await a_small_consultation(session, clock)
    async with db.session() as session:
        document = await results(session=session, consultation_id=story.consultation.id)
    context = brief_context(
        document,
        scope_in=list(story.consultation.scope_in),
        scope_out=list(story.consultation.scope_out),
    )
    return story, {
        locale: {
            "html": render("report/brief.html", context, locale),
            "md": render("report/brief.md", context, locale),
        }
        for locale in locales
    }


# --- reading the brief back -------------------------------------------------------------------

VOID = {"meta", "br", "hr", "img", "link", "input", "col", "wbr"}


class Page(HTMLParser):
    """An HTML page read back: its structure checked, its text kept per section and table."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.sections: dict[str, list[str]] = {}
        self.section: str | None = None
        self.tables: list[tuple[str | None, list[list[str]]]] = []
        self.cell: list[str] | None = None
        self.style = ""
        self.doctype = ""
        self.feed(html)
        self.close()
        if self.open:
            self.problems.append(f"never closed: {self.open}")

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag in VOID:
            return
        self.open.append(tag)
        if tag == "section":
            self.section = attributes.get("id")
            self.sections[self.section or ""] = []
        elif tag == "table":
            self.tables.append((self.section, []))
        elif tag == "tr":
            self.tables[-1][1].append([])
        elif tag in {"td", "th"}:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
            return
        self.open.pop()
        if tag in {"td", "th"} and self.cell is not None:
            self.tables[-1][1][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "section":
            self.section = None

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1] == "style":
            self.style += data
            return
        if self.section is not None:
            self.sections[self.section].append(data)
        if self.cell is not None:
            self.cell.append(data)

    def text(self, section: str) -> str:
        return " ".join("".join(self.sections[section]).split())

    def table(self, section: str, index: int = 0) -> list[list[str]]:
        return [rows for where, rows in self.tables if where == section][index]


def md_table(markdown: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose first header cell is `header`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
        rows.append([cell.strip() for cell in cells])
    return rows


def words(text: str) -> str:
    """Text with its non-breaking spaces made plain, to compare with what a reader sees."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


# --- the stories -------------------------------------------------------------------------------


async def test_the_english_brief_shows_the_findings_the_ranking_and_who_took_part(db, clock):
    _, briefs = await brief(db, clock, locales=("en",))
    html, md = briefs["en"]["html"], briefs["en"]["md"]
    page = Page(html)
    assert page.problems == []

    # The first page: the question and its scope, where things stand, what we agree on.
    summary = page.text("summary")
    assert "Comment mieux soutenir l'économie sociale et solidaire ?" in summary
    assert "L'accompagnement des structures de l'ESS" in summary
    assert "Les demandes de subvention individuelles" in summary
    assert "Where we are: Ranking of the actions is open until 27 April." in summary
    assert "Next: Evaluation, from 27 April." in summary
    assert "Who took part: 10 of the 15 invited contributed (67%)." in summary
    assert "What we agree on F1 Les petites coopératives" in summary
    assert "A close call: A1 beats A2 by 5 ballots to 4." in summary

    # The timetable in Paris time, with who contributed in each phase.
    assert page.table("timetable")[:3] == [
        ["Phase", "Dates", "State", "Contributors", "Contributions"],
        ["Observations", "2 Mar 2026, 10:00 → 4 Mar 2026, 10:00", "Closed", "3", "3"],
        ["Review of the findings", "4 Mar 2026, 10:00 → 6 Mar 2026, 10:05", "Closed", "10", "15"],
    ]
    assert page.table("timetable")[4][::2] == ["Ranking of the actions", "Open now", "9"]
    assert page.table("timetable")[5][::2] == ["Evaluation", "Planned", "—"]
    assert md_table(md, "Phase")[0] == [
        "Observations",
        "2 Mar 2026, 10:00",
        "4 Mar 2026, 10:00",
        "Closed",
    ]

    # Participation: the elected officials are flagged, plainly; the coordinator (an
    # association) runs the consultation and is not counted among the invited.
    assert page.table("participation") == [
        ["Category", "Invited", "Contributed", "Rate"],
        ["Association", "6", "6", "100%"],
        ["Cooperative", "3", "3", "100%"],
        ["Elected official under-represented", "5", "1", "20%"],
        ["Resident", "1", "0", "0%"],
        ["All categories", "15", "10", "67%"],
    ]
    participation = page.text("participation")
    assert "Under-represented: Elected official." in participation
    assert (
        "The most active 10% of contributors (1 person) made 19% of the 27 contributions."
        in participation
    )

    # F1: the rate, the abstention, both reasons verbatim; five associations, three cooperatives
    # and one elected official answered it: too few per category to show any breakdown.
    findings_text = page.text("findings")
    assert "75% confirmed" in findings_text
    assert "6 confirmations · 2 contests · 1 abstention" in findings_text
    assert "Too few answers to show them by category." in findings_text
    assert [where for where, _ in page.tables].count("findings") == 0
    assert f"“{URSCOP}”" in findings_text and f"“{FONCIER}”" in findings_text
    assert "67% confirmed" in findings_text and f"“{F2_REASON}”" in findings_text

    # The ranking: A1 first, A2 and A3 tied, Borda beside, a close duel said so. The three
    # cooperatives' own ranking would show three people's ballots: it is not shown.
    assert page.table("ranking", 0) == [
        ["Rank", "Action", "Equal weight", "Borda score"],
        ["1", "A1 Un guichet unique de l'ESS.", "1", "10.5"],
        ["2 tied", "A2 Une foncière solidaire.", "2", "8.5"],
        ["2 tied", "A3 Des prêts d'honneur pour les coopératives.", "2", "8"],
    ]
    ranking_text = page.text("ranking")
    assert "From 9 ballots; each could rank up to 3 actions." in ranking_text
    assert "Head to head, A1 beats A2 by 5 ballots to 4. A close call." in ranking_text
    assert "A1 beats every other action head to head" in ranking_text
    assert "Cooperative" not in ranking_text and "By category" not in ranking_text
    assert "No ballot from: Resident." in ranking_text

    # The questionnaire: a Likert distribution and mean, choice counts, free text.
    evaluation = page.text("questionnaires")
    assert "Your view · 3 respondents · still open" in evaluation
    assert "Mean 3.67 out of 5, from 3 answers" in evaluation
    assert "too short: 1 (33%) · right: 2 (67%) · too long: 0 (0%)" in evaluation
    assert f"“{WISH}”" in evaluation and f"“{EVENINGS}”" in evaluation
    assert "1 person skipped this question." in evaluation
    assert "Not open yet: Final evaluation." in evaluation
    assert "The Schulze method compares the actions two by two" in page.text("how-to-read")

    # The Markdown says the same, with people's words escaped so the tables hold.
    assert md.startswith("# Plan ESS de test\n\n*Meeting brief* · Figures as of ")
    assert md_table(md, "Rank") == [
        ["1", "**A1** Un guichet unique de l'ESS.", "1", "10.5"],
        ["2 (tied)", "**A2** Une foncière solidaire.", "2", "8.5"],
        ["2 (tied)", "**A3** Des prêts d'honneur pour les coopératives.", "2", "8"],
    ]
    assert md_table(md, "Category")[2] == [
        "Elected official (**under-represented**)",
        "5",
        "1",
        "20%",
    ]
    assert "**75% confirmed** · 6 confirmations · 2 contests · 1 abstention" in md
    assert "**Why it was contested:**\n\n- “" in md
    assert "- “Le \\*vrai\\* frein, c'est le foncier \\| pas l'accompagnement.”" in md
    assert f"- “{URSCOP}”" in md
    assert "## In short" in md and "1. **A1** Un guichet unique de l'ESS." in md
    assert "\n\n\n\n" not in md


async def test_the_french_brief_is_written_in_french(db, clock):
    _, briefs = await brief(db, clock, locales=("fr",))
    page = Page(briefs["fr"]["html"])
    md = words(briefs["fr"]["md"])
    assert page.problems == []
    assert page.table("timetable")[1] == [
        "Observations",
        "2 mars 2026, 10:00 → 4 mars 2026, 10:00",
        "Terminée",
        "3",
        "3",
    ]
    assert "Où en est-on : Phase en cours : Classement des actions, jusqu’au 27 avril." in words(
        page.text("summary")
    )
    assert words(page.text("participation")).count("sous-représentée") == 2
    findings_text = words(page.text("findings"))
    assert "75 % de confirmation" in findings_text
    assert "6 confirmations · 2 contestations · 1 abstention" in findings_text
    assert f"« {URSCOP} »" in findings_text
    assert page.table("ranking", 0)[2] == ["2 ex æquo", "A2 Une foncière solidaire.", "2", "8,5"]
    assert "En face-à-face, A1 l’emporte sur A2 par 5 bulletins contre 4. C’est serré." in words(
        page.text("ranking")
    )
    assert "Moyenne 3,67 sur 5" in words(page.text("questionnaires"))
    assert "La méthode de Schulze" in page.text("how-to-read")
    assert "| 2 (ex æquo) | **A2** Une foncière solidaire. | 2 | 8,5 |" in md
    assert "## Comment lire ce document" in md
    for english in ("Meeting brief", "Timetable", "confirmed", "tied", "How to read"):
        assert english not in md and english not in briefs["fr"]["html"]


async def test_the_brief_names_nobody_in_any_language_or_format(db, clock):
    story, briefs = await brief(db, clock)
    for locale, formats in briefs.items():
        for kind, text in formats.items():
            for person in story.people:
                assert person.name not in text, (locale, kind, person.name)
                assert person.email not in text, (locale, kind, person.email)
                assert person.organisation not in text, (locale, kind, person.organisation)
            assert not re.search(r"[\w.+-]+@[\w-]+\.\w", text), (locale, kind)


async def test_the_html_brief_stands_alone_prints_on_a4_and_fits_a_phone(db, clock):
    _, briefs = await brief(db, clock)
    for locale in ("en", "fr"):
        page = Page(briefs[locale]["html"])
        assert page.doctype.lower() == "doctype html"
        assert page.problems == []
        assert [tag for tag, _ in page.tags].count("h1") == 1
        assert ("html", {"lang": locale}) in page.tags
        assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in (
            page.tags
        )
        # Nothing is fetched from elsewhere: no script, stylesheet, image or font.
        assert not {"script", "link", "img", "iframe"} & {tag for tag, _ in page.tags}
        assert "url(" not in page.style and "@import" not in page.style
        assert "@page { size: A4;" in page.style and "@media print" in page.style
        assert "@media (max-width:" in page.style
        # Every table is rectangular.
        for section, rows in page.tables:
            assert len({len(row) for row in rows}) == 1, (section, rows)
        assert list(page.sections) == [
            "summary",
            "timetable",
            "participation",
            "findings",
            "observations",
            "ranking",
            "questionnaires",
            "how-to-read",
        ]
        # Every chart says what it shows, for a screen reader.
        charts = [attributes for tag, attributes in page.tags if tag == "svg"]
        assert len(charts) == 3  # participation, Borda scores, the questionnaire's answers
        assert all(chart.get("role") == "img" and chart.get("aria-label") for chart in charts)


async def test_a_brief_made_before_anything_happened_says_so(db, clock):
    async with db.session() as session:
        consultation = await make_consultation(session, current=None)
    async with db.session() as session:
        document = await results(session=session, consultation_id=consultation.id)
    context = brief_context(document, scope_in=[], scope_out=[])
    page = Page(render("report/brief.html", context, "en"))
    assert page.problems == []
    assert "Not stated." in page.text("summary")
    assert "Every phase is over. Who took part: Nobody has contributed yet." in page.text("summary")
    assert "Nobody has contributed yet." in page.text("participation")
    assert "No finding has been published yet." in page.text("findings")
    assert "No action has been shortlisted yet." in page.text("ranking")
    assert "No questionnaire has been opened yet." in page.text("questionnaires")
    md = render("report/brief.md", context, "fr")
    assert "Aucun constat n’a encore été publié." in md


# --- from the command line ------------------------------------------------------------------


def _in_db(url: str, work):
    async def main():
        database = Database(url)
        try:
            async with database.session() as session:
                return await work(session)
        finally:
            await database.dispose()

    return asyncio.run(main())


def test_palabre_results_writes_the_brief_in_the_language_asked(
    cli, empty_database_url, clock, tmp_path
):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    assert cli("db", "upgrade", env=env).exit_code == 0
    story = _in_db(empty_database_url, lambda session: a_small_consultation(session, clock))
    before = cli("results", env=env).output

    html, md = tmp_path / "brief.html", tmp_path / "brief.md"
    made = cli("results", "--html", str(html), "--markdown", str(md), env=env)
    assert made.exit_code == 0, made.output
    assert made.output == f"Meeting brief written to {html}.\nMeeting brief written to {md}.\n"
    assert "<h2>Findings</h2>" in html.read_text(encoding="utf-8")
    assert "## Findings" in md.read_text(encoding="utf-8")

    # --locale wins over PALABRE_LOCALE, which is the default.
    assert cli("results", "--markdown", str(md), "--locale", "fr", env=env).exit_code == 0
    assert "## Constats" in md.read_text(encoding="utf-8")
    cli("results", "--markdown", str(md), env={"PALABRE_LOCALE": "fr"})
    assert "## Constats" in md.read_text(encoding="utf-8")
    refused = cli("results", "--markdown", str(md), "--locale", "de")
    assert refused.exit_code == 2 and "'de' is not one of 'fr', 'en'" in refused.output

    # --json still prints the document alone on stdout; the text output has not changed.
    both = cli("results", "--json", "--html", str(html), env={"PALABRE_LOCALE": "en"})
    assert both.exit_code == 0
    assert '"format": 1' in both.stdout and "Meeting brief written" not in both.stdout
    assert f"Meeting brief written to {html}." in both.stderr
    assert cli("results", env=env).output == before

    # A file that cannot be written is one line, and the other file is left alone.
    md.write_text("earlier minutes", encoding="utf-8")
    nowhere = tmp_path / "missing" / "brief.html"
    failed = cli("results", "--markdown", str(md), "--html", str(nowhere), env=env)
    assert failed.exit_code == 1
    assert failed.output.startswith(f"Cannot write {nowhere}: ")
    assert md.read_text(encoding="utf-8") == "earlier minutes"

    names = [person.name for person in story.people]
    for path in (html, md):
        text = path.read_text(encoding="utf-8")
        assert not [name for name in names if name in text]


def test_the_report_catalog_agrees_with_the_others_on_every_sentence_they_share():
    """The French catalogs are merged into one: a msgid shared with another area must read the
    same in both, or one of them would silently take the other's words."""
    catalogs = {}
    for path in sorted((LOCALE_DIR / "fr" / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            catalogs[path.stem] = read_po(handle, locale="fr")
    report = catalogs.pop("report")
    disagreements = [
        (area, message.id)
        for message in report
        if message.id
        for area, catalog in catalogs.items()
        if (other := catalog.get(message.id)) is not None and other.string != message.string
    ]
    assert disagreements == []


@pytest.mark.parametrize("current", ["observe", "review", "propose", "rank", "evaluate"])
async def test_a_brief_with_no_answer_at_all_reads_well_in_every_phase(db, clock, current):
    async with db.session() as session:
        consultation = await make_consultation(session, current=current, questionnaires=True)
        for category in ("association", "elected"):
            await make_participant(session, consultation, category=category)
    async with db.session() as session:
        document = await results(session=session, consultation_id=consultation.id)
    context = brief_context(document, scope_in=["Le champ"], scope_out=[])
    phase = {
        "observe": "Observations",
        "review": "Review of the findings",
        "propose": "Proposals of actions",
        "rank": "Ranking of the actions",
        "evaluate": "Evaluation",
    }[current]
    for locale in ("en", "fr"):
        page = Page(render("report/brief.html", context, locale))
        assert page.problems == []
        render("report/brief.md", context, locale)
        if locale == "en":
            summary = page.text("summary")
            assert f"Where we are: {phase} is open until" in summary
            assert "Who took part: Nobody has contributed yet." in summary
            assert "No finding has been published yet." in summary
            assert "No action has been shortlisted yet." in summary
            assert "No observation has been received yet." in page.text("observations")


async def test_after_the_vote_the_brief_shows_the_plan_and_the_members_view_by_category(db, clock):
    async with db.session() as session:
        story = await a_small_consultation(session, clock)
        c = story.consultation.id
        await move_on(session, story.consultation, "evaluate", clock)
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A1",
            decision="retained",
            lead="Maison de l'ESS",
            due="2027-06",
            actor_label="cli",
        )
        await followup.decide(
            session=session,
            consultation_id=c,
            code="A2",
            decision="not retained",
            reason=FONCIER,
            actor_label="cli",
        )
        await followup.record_progress(
            session=session,
            consultation_id=c,
            code="A1",
            status="late",
            note="Le local n'est pas prêt.",
            actor_label="cli",
        )
        await followup.open_round(session=session, consultation_id=c, number=1)
        people = {person.name: person for person in story.people}
        for name, view in (("Aïcha Benali", "yes"), ("Gaëlle Simon", "no")):
            await followup.answer_follow_up(
                session=session, participant=people[name], code="A1", value=view, channel=TG
            )
    async with db.session() as session:
        document = await results(session=session, consultation_id=c)
    section = document["plan"]
    assert section["missing"] == ["A3"] and section["missing_count"] == 1
    assert [round_["respondents"] for round_ in section["followup"]] == [2]
    context = brief_context(document, scope_in=[], scope_out=[])
    html = render("report/brief.html", context, "en")
    md = render("report/brief.md", context, "fr")
    page = Page(html)
    assert page.problems == []
    assert "1 decision still missing." in page.text("plan")
    table = page.table("plan")
    assert table[0] == ["Action", "Decision", "Reason", "Lead", "Due", "Status", "Members' view"]
    assert table[1][1:] == [
        "retained",
        "—",
        "Maison de l'ESS",
        "Jun 30, 2027",
        "late: Le local n'est pas prêt.",
        "yes 1 · partly 0 · no 1 · don't know 0",
    ]
    assert table[2][1:3] == ["not retained", FONCIER]
    assert page.table("plan", 1) == [
        ["Category", "yes", "partly", "no", "don't know"],
        ["Association", "1", "0", "0", "0"],
        ["Cooperative", "0", "0", "1", "0"],
    ]
    assert "**1 décision manque encore.**" in md
    assert "retenue | — | Maison de l'ESS" in md
    for person in story.people:
        assert person.name not in html and person.name not in md
