"""Running the process from the command line: phases, observations, findings, actions, ballots,
results and the meeting brief.

The command line acts as a coordinator: every decision is checked by the same rules as on the
bot (a phase does not close before its minimum duration unless forced, with a reason) and lands
in the audit trail under the actor "cli". Each command runs in one transaction: a refusal leaves
the database as it was.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer

from consultation import actions, files, findings, observations, phases
from consultation.clock import as_utc
from consultation.common import get_consultation
from consultation.errors import DefinitionError, UserError
from consultation.ranking import personal_order
from consultation.results import results as results_document
from models import Action, Consultation, ScopeStatus
from models.db import Database
from palabre.commands.common import _, echo_json, fail, run, settings
from palabre.render import render, render_error

CLI = "cli"

ConsultationOption = typer.Option(
    None, "--consultation", "-c", help="Consultation slug (needed only when there are several)."
)
ForceOption = typer.Option(
    False, "--force", help="Override the minimum or maximum duration (needs --reason; logged)."
)
ReasonOption = typer.Option(None, "--reason", help="Why: kept in the audit trail.")
JsonOption = typer.Option(False, "--json", help="Print JSON.")

phase_app = typer.Typer(
    help="Open, close or extend a phase of the timetable.", no_args_is_help=True
)
observations_app = typer.Typer(
    help="The observations: list, moderate, merge.", no_args_is_help=True
)
findings_app = typer.Typer(help="The draft findings: write, publish, list.", no_args_is_help=True)
actions_app = typer.Typer(
    help="The actions: add, link, merge, shortlist, list.", no_args_is_help=True
)
ballots_app = typer.Typer(help="Paper ballots.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the process commands to `palabre`."""
    app.add_typer(phase_app, name="phase")
    app.add_typer(observations_app, name="observations")
    app.add_typer(findings_app, name="findings")
    app.add_typer(actions_app, name="actions")
    app.add_typer(ballots_app, name="ballots")
    app.command("results")(results)


def _when(value: str | None, timezone: str) -> str:
    if not value:
        return "-"
    return f"{datetime.fromisoformat(value).astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M}"


def parse_until(value: str, timezone: str) -> datetime:
    """`2027-02-10 18:00` (the consultation's time zone) or an ISO time with its offset."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        fail(
            _("--until: {value!r} is not a date and time; write it as 2027-02-10 18:00.").format(
                value=value
            )
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return as_utc(parsed)


async def _target(session: Any, slug: str | None) -> Consultation:
    return await get_consultation(session=session, slug=slug)


# --- phases --------------------------------------------------------------------------------


def _phase_command(verb: str, kind: str, consultation: str | None, **options: Any) -> None:
    async def work(database: Database) -> dict[str, Any]:
        async with database.session() as session:
            target = await _target(session, consultation)
            phase = await phases.find_phase(session=session, consultation_id=target.id, kind=kind)
            common = {
                "session": session,
                "phase_id": phase.id,
                "actor_label": CLI,
                "force": options["force"],
                "reason": options["reason"],
            }
            if verb == "open":
                phase = await phases.open_phase(**common)
            elif verb == "close":
                phase = await phases.close_phase(**common)
            else:
                until = parse_until(options["until"], target.timezone)
                phase = await phases.extend_phase(until=until, **common)
            return {
                "kind": phase.kind,
                "status": phase.status,
                "closes_at": phase.closes_at.isoformat(),
                "closed_at": phase.closed_at.isoformat() if phase.closed_at else None,
                "timezone": target.timezone,
            }

    done = run(work)
    closes = _when(done["closes_at"], done["timezone"])
    if verb == "open":
        message = _("Phase {kind} is open until {closes} ({timezone}).")
    elif verb == "close":
        message = _("Phase {kind} is closed.")
    else:
        message = _("Phase {kind} now closes on {closes} ({timezone}).")
    typer.echo(message.format(kind=done["kind"], closes=closes, timezone=done["timezone"]))


@phase_app.command("open")
def phase_open(
    kind: str = typer.Argument(..., help="observe, review, propose, rank or evaluate."),
    force: bool = ForceOption,
    reason: str | None = ReasonOption,
    consultation: str | None = ConsultationOption,
) -> None:
    """Open the next phase of KIND and announce it to every participant."""
    _phase_command("open", kind, consultation, force=force, reason=reason)


@phase_app.command("close")
def phase_close(
    kind: str = typer.Argument(..., help="observe, review, propose, rank or evaluate."),
    force: bool = ForceOption,
    reason: str | None = ReasonOption,
    consultation: str | None = ConsultationOption,
) -> None:
    """Close the open phase of KIND (refused before its minimum duration unless --force)."""
    _phase_command("close", kind, consultation, force=force, reason=reason)


@phase_app.command("extend")
def phase_extend(
    kind: str = typer.Argument(..., help="observe, review, propose, rank or evaluate."),
    until: str = typer.Option(..., "--until", help="New deadline, e.g. 2027-02-10 18:00."),
    force: bool = ForceOption,
    reason: str | None = ReasonOption,
    consultation: str | None = ConsultationOption,
) -> None:
    """Move the deadline of a phase of KIND (a reason is required; past the maximum: --force)."""
    _phase_command("extend", kind, consultation, force=force, reason=reason, until=until)


# --- observations -------------------------------------------------------------------------


@observations_app.command("list")
def observations_list(
    pending: bool = typer.Option(False, "--pending", help="Only those not moderated yet."),
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """List the observations (without their authors) with their number and scope decision."""

    async def work(database: Database) -> tuple[str, list[dict[str, Any]]]:
        async with database.session() as session:
            target = await _target(session, consultation)
            found = await observations.observations_in(
                session=session,
                consultation_id=target.id,
                status=ScopeStatus.PENDING if pending else None,
            )
            return target.timezone, [
                {
                    "id": item.id,
                    "created_at": item.created_at.isoformat(),
                    "theme": item.theme,
                    "scope": item.scope_status,
                    "scope_reason": item.scope_reason,
                    "duplicate_of": item.duplicate_of_id,
                    "text": item.text,
                }
                for item in found
            ]

    timezone, rows = run(work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        status = row["scope"] + (f" → {row['duplicate_of']}" if row["duplicate_of"] else "")
        theme = f"[{row['theme']}] " if row["theme"] else ""
        text = " ".join(row["text"].split())
        typer.echo(
            f"{row['id']:>5}  {_when(row['created_at'], timezone)}  {status:<14} "
            f"{theme}{text[:90]}{'…' if len(text) > 90 else ''}"
        )
    typer.echo(_("{count} observations").format(count=len(rows)))


@observations_app.command("moderate")
def observations_moderate(
    observation_id: int = typer.Argument(..., help="The observation's number."),
    in_scope: bool = typer.Option(..., "--in/--out", help="In or out of the consultation's scope."),
    reason: str | None = typer.Option(
        None, "--reason", help="Why (required with --out: its author is told)."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Mark an observation in or out of scope; the author of one out of scope is told why."""

    async def work(database: Database) -> None:
        async with database.session() as session:
            target = await _target(session, consultation)
            await observations.get_observation(
                session=session, observation_id=observation_id, consultation_id=target.id
            )
            await observations.decide_scope(
                session=session,
                observation_id=observation_id,
                by=None,
                in_scope=in_scope,
                reason=reason,
                actor_label=CLI,
            )

    run(work)
    if in_scope:
        typer.echo(_("Observation {id} is in scope.").format(id=observation_id))
    else:
        typer.echo(
            _("Observation {id} is out of scope; its author will be told why.").format(
                id=observation_id
            )
        )


@observations_app.command("merge")
def observations_merge(
    observation_id: int = typer.Argument(..., help="The duplicate."),
    into: int = typer.Option(..., "--into", help="The observation it duplicates."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Merge a duplicate observation into another."""

    async def work(database: Database) -> None:
        async with database.session() as session:
            target = await _target(session, consultation)
            await observations.get_observation(
                session=session, observation_id=observation_id, consultation_id=target.id
            )
            await observations.merge_observation(
                session=session,
                observation_id=observation_id,
                into_id=into,
                by=None,
                actor_label=CLI,
            )

    run(work)
    typer.echo(_("Observation {id} merged into {into}.").format(id=observation_id, into=into))


# --- findings -------------------------------------------------------------------------------


def _read_findings(file: Path) -> list[findings.DraftSpec]:
    try:
        return findings.parse_findings_file(files.read_text(file), str(file))
    except DefinitionError as exc:
        fail(str(exc))


def _apply_findings(file: Path, consultation: str | None, publish: bool, as_json: bool) -> None:
    drafts = _read_findings(file)

    async def work(database: Database) -> findings.DraftReport:
        async with database.session() as session:
            target = await _target(session, consultation)
            try:
                return await findings.apply_drafts(
                    session=session,
                    consultation_id=target.id,
                    drafts=drafts,
                    by=None,
                    publish=publish,
                    actor_label=CLI,
                )
            except UserError as exc:
                draft = getattr(exc, "draft", None)
                if draft is None:
                    raise
                problem = render_error(exc.code, exc.params, settings().locale)
                raise DefinitionError(str(file), f"line {draft.line}", problem) from exc

    report = run(work)
    if as_json:
        echo_json(report.as_dict())
        return
    if report.created:
        typer.echo(_("New: {codes}").format(codes=" ".join(report.created)))
    for item in report.revised:
        typer.echo(
            _("Revised: {code} (version {version}, {asked} people asked to answer again)").format(
                code=item["code"], version=item["version"], asked=item["asked_again"]
            )
        )
    if report.relinked:
        typer.echo(_("Observations updated: {codes}").format(codes=" ".join(report.relinked)))
    if report.unchanged:
        typer.echo(_("Unchanged: {codes}").format(codes=" ".join(report.unchanged)))
    if publish:
        if report.published:
            typer.echo(
                _("Published: {codes} ({told} participants notified)").format(
                    codes=" ".join(report.published), told=report.told
                )
            )
        else:
            typer.echo(_("Nothing new to publish."))


@findings_app.command("publish")
def findings_publish(
    file: Path = typer.Argument(..., help="The findings file (see docs/findings-format.md)."),
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """Create or revise the findings FILE describes, then publish them (safe to repeat)."""
    _apply_findings(file, consultation, publish=True, as_json=as_json)


@findings_app.command("draft")
def findings_draft(
    file: Path = typer.Argument(..., help="The findings file (see docs/findings-format.md)."),
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """Create or revise the findings FILE describes without publishing the new ones."""
    _apply_findings(file, consultation, publish=False, as_json=as_json)


@findings_app.command("list")
def findings_list(
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """List every finding with its status, version and observations."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.session() as session:
            target = await _target(session, consultation)
            rows = []
            for finding in await findings.findings_of(session=session, consultation_id=target.id):
                version = await findings.current_text(session=session, finding=finding)
                rows.append(
                    {
                        "code": finding.code,
                        "status": finding.status,
                        "version": version.version,
                        "observations": await findings.observation_ids_of(
                            session=session, finding=finding
                        ),
                        "text": version.text,
                    }
                )
            return rows

    rows = run(work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        text = " ".join(row["text"].split())
        links = ",".join(str(i) for i in row["observations"]) or "-"
        typer.echo(
            f"{row['code']:<5} {row['status']:<10} v{row['version']:<3} [{links}] "
            f"{text[:80]}{'…' if len(text) > 80 else ''}"
        )
    typer.echo(_("{count} findings").format(count=len(rows)))


# --- actions ----------------------------------------------------------------------------------


def _codes(value: str | None) -> list[str]:
    return [part for part in (value or "").replace(",", " ").split() if part]


@actions_app.command("add")
def actions_add(
    text: str = typer.Argument(..., help="The action, in one sentence or two."),
    answers: str | None = typer.Option(
        None, "--answers", help="The findings it answers, e.g. F1,F3."
    ),
    consultation: str | None = ConsultationOption,
) -> None:
    """Add an action (from a meeting, say), optionally answering some findings."""

    async def work(database: Database) -> str:
        async with database.session() as session:
            target = await _target(session, consultation)
            action = await actions.add_action(
                session=session,
                consultation_id=target.id,
                by=None,
                text=text,
                finding_codes=_codes(answers),
                actor_label=CLI,
            )
            return action.code

    code = run(work)
    typer.echo(_("Action {code} added.").format(code=code))


@actions_app.command("link")
def actions_link(
    code: str = typer.Argument(..., help="The action's code, e.g. A3."),
    answers: str = typer.Option(..., "--answers", help="The findings it answers, e.g. F1,F3."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Record that an action answers some findings (for the traceability of contributions)."""

    async def work(database: Database) -> tuple[str, list[str]]:
        async with database.session() as session:
            target = await _target(session, consultation)
            action = await actions.link_findings(
                session=session,
                consultation_id=target.id,
                code=code,
                finding_codes=_codes(answers),
                by=None,
                actor_label=CLI,
            )
            return action.code, await actions.finding_codes_of(session=session, action=action)

    action_code, linked = run(work)
    typer.echo(_("{code} answers {findings}.").format(code=action_code, findings=", ".join(linked)))


@actions_app.command("merge")
def actions_merge(
    code: str = typer.Argument(..., help="The duplicate action's code."),
    into: str = typer.Option(..., "--into", help="The action it duplicates."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Merge a duplicate action into another."""

    async def work(database: Database) -> tuple[str, str]:
        async with database.session() as session:
            target = await _target(session, consultation)
            action = await actions.merge_action(
                session=session,
                consultation_id=target.id,
                code=code,
                into_code=into,
                by=None,
                actor_label=CLI,
            )
            merged_into = await actions.get_action(
                session=session, consultation_id=target.id, code=into
            )
            return action.code, merged_into.code

    source, destination = run(work)
    typer.echo(_("{code} merged into {into}.").format(code=source, into=destination))


@actions_app.command("shortlist")
def actions_shortlist(
    codes: list[str] = typer.Argument(..., help="The actions to rank, e.g. A1 A4 A7."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Set the shortlist participants will rank: exactly these actions."""

    async def work(database: Database) -> list[str]:
        async with database.session() as session:
            target = await _target(session, consultation)
            chosen = await actions.shortlist(
                session=session,
                consultation_id=target.id,
                by=None,
                codes=[c for value in codes for c in _codes(value)],
                actor_label=CLI,
            )
            return [action.code for action in chosen]

    chosen = run(work)
    typer.echo(_("Shortlist: {codes}").format(codes=" ".join(chosen)))


@actions_app.command("list")
def actions_list(
    consultation: str | None = ConsultationOption,
    as_json: bool = JsonOption,
) -> None:
    """List the actions (without who proposed them) with their status and findings."""

    async def work(database: Database) -> list[dict[str, Any]]:
        async with database.session() as session:
            target = await _target(session, consultation)
            rows = []
            for action in await actions.actions_of(session=session, consultation_id=target.id):
                into = None
                if action.merged_into_id is not None:
                    merged = await session.get(Action, action.merged_into_id)
                    into = merged.code if merged else None
                rows.append(
                    {
                        "code": action.code,
                        "status": action.status,
                        "merged_into": into,
                        "answers": await actions.finding_codes_of(session=session, action=action),
                        "text": action.text,
                    }
                )
            return rows

    rows = run(work)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        status = row["status"] + (f" → {row['merged_into']}" if row["merged_into"] else "")
        text = " ".join(row["text"].split())
        answers = ",".join(row["answers"]) or "-"
        typer.echo(
            f"{row['code']:<5} {status:<14} [{answers}] {text[:80]}{'…' if len(text) > 80 else ''}"
        )
    typer.echo(_("{count} actions").format(count=len(rows)))


# --- ballots -----------------------------------------------------------------------------------


@ballots_app.command("import")
def ballots_import(
    file: Path = typer.Argument(..., help="CSV: email,ranking (codes separated by spaces)."),
    consultation: str | None = ConsultationOption,
) -> None:
    """Record paper ballots; a file with any rejected row imports nothing."""
    try:
        rows = actions.read_ballots_csv(files.read_text(file), str(file))
    except DefinitionError as exc:
        fail(str(exc))

    async def work(database: Database) -> actions.BallotImportReport:
        async with database.session() as session:
            target = await _target(session, consultation)
            return await actions.import_ballots(
                session=session, consultation_id=target.id, rows=rows, by=None, actor_label=CLI
            )

    report = run(work)
    locale = settings().locale
    for line, error in report.rejected:
        typer.echo(
            _("{file}, line {line}: {reason}").format(
                file=file, line=line, reason=render_error(error.code, error.params, locale)
            ),
            err=True,
        )
    if report.rejected:
        typer.echo(
            _("Nothing imported: correct the lines above and run the import again."), err=True
        )
        raise typer.Exit(code=1)
    typer.echo(
        _("{imported} ballots imported ({replaced} replaced an earlier ballot).").format(
            imported=report.imported, replaced=report.replaced
        )
    )


# --- results -------------------------------------------------------------------------------


class BriefLocale(StrEnum):
    FR = "fr"
    EN = "en"


def results(
    consultation: str | None = ConsultationOption,
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON (documented in docs/results-json.md)."
    ),
    html: Path | None = typer.Option(
        None, "--html", help="Write the meeting brief to FILE as a printable HTML page."
    ),
    markdown: Path | None = typer.Option(
        None, "--markdown", help="Write the meeting brief to FILE in Markdown (for the minutes)."
    ),
    locale: BriefLocale | None = typer.Option(
        None, "--locale", help="Language of the meeting brief (default: PALABRE_LOCALE)."
    ),
) -> None:
    """Findings with their confirmation rates, the ranking of the actions, participation.

    With --html or --markdown, write the meeting brief instead of printing the short form.
    """

    async def work(database: Database) -> tuple[dict[str, Any], dict[str, list[str]]]:
        async with database.session() as session:
            target = await _target(session, consultation)
            document = await results_document(session=session, consultation_id=target.id)
            return document, {"in": list(target.scope_in), "out": list(target.scope_out)}

    document, scope = run(work)
    briefs = [(path, name) for path, name in ((html, "brief.html"), (markdown, "brief.md")) if path]
    if briefs:
        language = locale.value if locale else settings().locale
        context = brief_context(document, scope_in=scope["in"], scope_out=scope["out"])
        # Render both before writing either: a template error leaves no file half-replaced.
        texts = [(path, render(f"report/{name}", context, language)) for path, name in briefs]
        for path, text in texts:
            try:
                path.write_text(text + "\n", encoding="utf-8")
            except OSError as exc:
                fail(_("Cannot write {file}: {reason}").format(file=path, reason=exc.strerror))
            typer.echo(_("Meeting brief written to {file}.").format(file=path), err=as_json)
    if as_json:
        echo_json(document)
    elif not briefs:
        _print_results(document)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _print_results(document: dict[str, Any]) -> None:
    echo = typer.echo
    info = document["consultation"]
    echo(f"{info['title']} ({info['slug']})")
    echo("")
    echo(_("Findings (confirmation rate = confirm / (confirm + contest))"))
    if not document["findings"]:
        echo("  " + _("No finding published yet."))
    for item in document["findings"]:
        text = " ".join(item["text"].split())
        echo(f"  {item['code']} v{item['version']}  {text[:90]}{'…' if len(text) > 90 else ''}")
        echo(
            "      "
            + _("{rate} confirmed: {confirm} confirm, {contest} contest, {abstain} abstain").format(
                rate=_rate(item["confirmation_rate"]),
                confirm=item["confirm"],
                contest=item["contest"],
                abstain=item["abstain"],
            )
        )
        parts = [
            f"{key} {_rate(row['confirmation_rate'])} "
            f"({row['confirm']}/{row['confirm'] + row['contest']})"
            for key, row in item["by_category"].items()
            if row["answers"]
        ]
        if parts:
            echo("      " + " · ".join(parts))
        for reason in item["contest_reasons"]:
            echo("      – " + " ".join(reason.split()))
    echo("")
    ranking = document["ranking"]
    echo(
        _("Ranking of the shortlist (Schulze order, Borda scores): {ballots} ballots").format(
            ballots=ranking["ballots"]
        )
    )
    if not ranking["candidates"]:
        echo("  " + _("No shortlist yet."))
    for row in ranking["overall"]["table"]:
        tie = "=" if row["tied"] else " "
        text = " ".join(row["text"].split())
        echo(
            f"  {row['rank']:>2}{tie} {row['code']:<5} {row['borda']:>8g}  "
            f"{text[:70]}{'…' if len(text) > 70 else ''}"
        )
    for key, result in ranking["by_category"].items():
        order = " > ".join(" = ".join(tier) for tier in result["tiers"])
        echo(f"  {key} ({result['ballots']}): {order}")
    echo("")
    participation = document["participation"]
    echo(_("Participation"))
    echo(_("  category      invited  contributed"))
    for key, row in participation["by_category"].items():
        echo(f"  {key:<13} {row['invited']:>7}  {row['contributed']:>11}")
    concentration = participation.get("concentration") or {}
    share = concentration.get("share_of_contributions")
    if share is not None:
        echo(
            _("  The most active 10% wrote {share} of the contributions.").format(
                share=f"{share:.0%}"
            )
        )
    flagged = [
        key
        for key, row in (participation.get("representation") or {}).items()
        if row.get("under_represented")
    ]
    if flagged:
        echo(_("  Under-represented: {keys}").format(keys=", ".join(flagged)))


# --- the meeting brief ---------------------------------------------------------------------


def brief_context(
    document: dict[str, Any], *, scope_in: list[str], scope_out: list[str]
) -> dict[str, Any]:
    """What `templates/report/brief.html` and `brief.md` show, from the results document.

    The figures are the document's; this only arranges them for reading: categories in the
    consultation's order with their labels, each finding's contest reasons in a shuffled order
    (fixed by the finding, so the brief is the same each time it is made, and the order says
    nothing about who wrote a reason or when), each category's ranking set against the overall
    one. Labels stay `{fr, en}` dicts: the templates pick the reader's language.
    """
    info = document["consultation"]
    labels: dict[str, Any] = {item["key"]: item["label"] for item in info["categories"]}

    def label(key: str) -> Any:
        return labels.get(key, key)

    participation = document["participation"]
    representation = participation.get("representation") or {}
    categories = []
    for key, row in participation["by_category"].items():
        flags = representation.get(key) or {}
        categories.append(
            {
                "key": key,
                "label": label(key),
                "invited": row["invited"],
                "contributed": row["contributed"],
                "share": row["contributed"] / row["invited"] if row["invited"] else None,
                "under_represented": bool(flags.get("under_represented")),
            }
        )
    invited = sum(row["invited"] for row in categories)
    contributed = sum(row["contributed"] for row in categories)

    found = []
    for item in document["findings"]:
        reasons = [reason.strip() for reason in item["contest_reasons"]]
        seed = f"{info['slug']}:{item['code']}:{item['version']}:contest-reasons"
        found.append(
            {
                **{key: item[key] for key in _FINDING_FIGURES},
                "rate": item["confirmation_rate"],
                "by_category": [
                    {"key": key, "label": label(key), **row, "rate": row["confirmation_rate"]}
                    for key, row in item["by_category"].items()
                ],
                "reasons": personal_order(reasons, seed),
            }
        )

    ranking = document["ranking"]
    overall = ranking["overall"]
    top = set(overall["tiers"][0]) if ranking["ballots"] and overall["tiers"] else set()
    by_category = []
    order = list(labels) + sorted(set(ranking["by_category"]) - set(labels))
    for key in [key for key in order if key in ranking["by_category"]]:
        result = ranking["by_category"][key]
        first = result["tiers"][0] if result["tiers"] else []
        by_category.append(
            {
                "key": key,
                "label": label(key),
                "ballots": result["ballots"],
                "table": result["table"],
                "top": first,
                "differs": bool(top) and set(first) != top,
            }
        )

    questionnaires = [item for item in document["questionnaires"] if item["status"] != "scheduled"]
    return {
        "generated_at": document["generated_at"],
        "consultation": {
            "slug": info["slug"],
            "title": info["title"],
            "question": info["question"],
            "timezone": info["timezone"],
            "scope_in": scope_in,
            "scope_out": scope_out,
        },
        "phases": [
            {
                "kind": phase["kind"],
                "status": phase["status"],
                "starts": phase["opened_at"] or phase["opens_at"],
                "ends": phase["closed_at"] or phase["closes_at"],
            }
            for phase in document["phases"]
        ],
        "participation": {
            "categories": categories,
            "invited": invited,
            "contributed": contributed,
            "share": contributed / invited if invited else None,
            "concentration": participation.get("concentration") or {},
            "under_represented": [row["label"] for row in categories if row["under_represented"]],
            "rules": participation.get("rules") or {},
        },
        "findings": found,
        "ranking": {
            "ballots": ranking["ballots"],
            "k": ranking["k"],
            "candidates": ranking["candidates"],
            "table": overall["table"],
            "condorcet_winner": overall["condorcet_winner"],
            "by_category": by_category,
            "silent": [
                label(key) for key, count in ranking["ballots_by_category"].items() if not count
            ],
        },
        "questionnaires": [
            {
                "title": item["title"],
                "status": item["status"],
                "respondents": item["respondents"],
                "questions": [_question(question) for question in item["questions"]],
            }
            for item in questionnaires
        ],
        "questionnaires_to_come": [
            item["title"] for item in document["questionnaires"] if item["status"] == "scheduled"
        ],
    }


_FINDING_FIGURES = ("code", "text", "version", "confirm", "contest", "abstain", "answers")
_FINDING_FIGURES += ("awaiting_new_answer", "observation_count")


def _question(question: dict[str, Any]) -> dict[str, Any]:
    """One question's results for the brief: Likert and choice counts with their shares."""
    row: dict[str, Any] = {
        "position": question["position"],
        "kind": question["kind"],
        "prompt": question["prompt"],
        "answers": question["answers"],
        "skipped": question["skipped"],
    }
    answers = question["answers"]
    if question["kind"] == "likert":
        row["mean"] = question["mean"]
        row["points"] = [
            {"point": point, "count": count, "share": count / answers if answers else 0}
            for point, count in question["distribution"].items()
        ]
    elif question["kind"] == "choice":
        row["choices"] = [
            {"label": choice, "count": count, "share": count / answers if answers else 0}
            for choice, count in zip(question["choices"], question["counts"], strict=True)
        ]
    else:
        row["texts"] = [text.strip() for text in question.get("texts", [])]
    return row
