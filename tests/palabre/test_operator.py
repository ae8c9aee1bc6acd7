"""The coordinator's first hour on the command line: one language, every zero explained, every
list saying what it left out, dates as they happened, and `palabre --help` loading nothing heavy.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from palabre.cli import COMMANDS, load_command

ROOT = Path(__file__).resolve().parents[2]
TOML = str(ROOT / "examples" / "ess-plan.toml")
CSV = str(ROOT / "examples" / "participants.csv")
PARIS = ZoneInfo("Europe/Paris")
# The example's category keys that are not also a French label.
KEYS = ("cooperative", "mutual", "network", "elected", "agency", "citizen")


def a_consultation_with_its_people(cli, url: str, **env: str) -> dict[str, str]:
    env = {"PALABRE_DATABASE_URL": url, **env}
    assert cli("init", TOML, env=env).exit_code == 0
    assert cli("participants", "import", CSV, env=env).exit_code == 0
    return env


def test_french_output_names_categories_and_phases_as_the_brief_does(cli, empty_database_url):
    env = a_consultation_with_its_people(cli, empty_database_url, PALABRE_LOCALE="fr")
    outputs = {
        command: cli(command, *rest, env=env)
        for command, *rest in (("participants", "list"), ("status",), ("results",))
    }
    for command, result in outputs.items():
        assert result.exit_code == 0, result.output
        for key in KEYS:
            assert not re.search(rf"\b{key}\b", result.output), (command, key)
    listing = outputs["participants"].output
    assert "Coopérative (SCOP, SCIC)" in listing and "Habitant·e" in listing
    assert listing.splitlines()[0].split()[:2] == ["nom", "e-mail"]  # a table with its header
    assert listing.splitlines()[-1] == "30 participants"
    status = outputs["status"].output
    assert "Examen des constats" in status and "review" not in status
    assert "Personne n’a encore donné son accord" in status


def test_participants_list_shows_the_channel_that_really_reaches_each_person(
    cli, empty_database_url
):
    """Nobody of the example has opened their Telegram link yet: whatever they prefer, email is
    how they are reached, and the list says so."""
    env = a_consultation_with_its_people(cli, empty_database_url)
    rows = json.loads(cli("participants", "list", "--json", env=env).output)
    assert any(row["channel"] == "telegram" for row in rows)  # some prefer Telegram…
    assert {row["reached_by"] for row in rows} == {"email"}  # …but none is bound to it
    text = cli("participants", "list", env=env).output
    header, *lines = text.splitlines()
    assert header.split()[-2:] == ["reached", "by"]
    assert not [line for line in lines[:-1] if line.rstrip().endswith("Telegram")]


def test_status_after_an_early_open_shows_when_the_phase_really_opened(
    cli, empty_database_url, clock
):
    env = a_consultation_with_its_people(cli, empty_database_url)
    clock.set(datetime(2027, 1, 4, 8, 30, tzinfo=PARIS))  # a week before the planned 11 January
    opened = cli("phase", "open", "observe", "--force", "--reason", "Réunion avancée", env=env)
    assert opened.exit_code == 0, opened.output

    text = cli("status", env=env).output
    (observe,) = [line for line in text.splitlines() if "Observations" in line]
    start, end = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", observe)
    assert start == "2027-01-04 08:30"
    assert end > start
    document = json.loads(cli("status", "--json", env=env).output)
    assert document["phases"][0]["started"].startswith("2027-01-04T07:30")


def test_schedule_says_how_many_steps_it_left_out_and_why_counts_are_zero(
    cli, empty_database_url, clock
):
    env = a_consultation_with_its_people(cli, empty_database_url)
    everything = json.loads(cli("schedule", "--json", "--limit", "0", env=env).output)
    total = len(everything["jobs"])
    assert everything["left_out"] == 0 and total > 3

    text = cli("schedule", "--limit", "3", env=env).output
    assert f"… and {total - 3} more steps, until " in text
    assert "palabre schedule --limit 0" in text
    assert "Nobody has consented yet, so the counts are 0" in text
    assert "(0 people)" in text
    assert "after-observe" not in cli("schedule", "--limit", "0", env=env).output  # titles


def test_help_lists_every_command_without_loading_the_database_telegram_or_email():
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from palabre.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = ['sqlalchemy', 'sqlmodel', 'telegram', 'aiosmtplib', 'aioimaplib',\n"
        "         'apscheduler', 'jinja2', 'babel', 'pydantic']\n"
        "heavy = [name for name in heavy if name in sys.modules]\n"
        "print(result.output)\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "HEAVY []" in done.stdout
    for name in COMMANDS:
        assert f"  {name} " in done.stdout


def test_each_command_summary_is_the_first_line_of_its_own_help():
    for name, (_module, summary) in COMMANDS.items():
        command = load_command(name)
        assert (command.help or "").strip().splitlines()[0] == summary, name


def test_opening_review_while_observe_is_open_offers_to_close_observe_in_the_same_command(
    cli, empty_database_url, clock
):
    env = a_consultation_with_its_people(cli, empty_database_url)
    clock.set(datetime(2027, 1, 11, 9, 0, tzinfo=PARIS))
    assert cli("phase", "open", "observe", env=env).exit_code == 0
    clock.set(datetime(2027, 1, 20, 9, 0, tzinfo=PARIS))

    refused = cli("phase", "open", "review", env=env)
    assert refused.exit_code == 1
    assert "“Observations” is still open" in refused.output and "--force --reason" in refused.output
    done = cli(
        "phase", "open", "review", "--force", "--reason", "Réunion avancée", "--yes", env=env
    )
    assert done.exit_code == 0, done.output
    assert "The phase “Observations” is closed." in done.output
    assert "The phase “Review of the findings” is open until" in done.output
    trail = json.loads(cli("audit", "--json", env=env).output)["events"]
    logged = [(row["action"], row["subject"], row["reason"]) for row in trail[-2:]]
    assert [reason for *_, reason in logged] == ["Réunion avancée", "Réunion avancée"]
    assert [action for action, *_ in logged] == ["phase.closed", "phase.opened"]
