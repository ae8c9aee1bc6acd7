"""The foundation's command line, as a coordinator types it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOML = str(EXAMPLES / "ess-plan.toml")
CSV = str(EXAMPLES / "participants.csv")


def test_the_example_consultation_loads_and_reloading_changes_nothing(cli, empty_database_url):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    first = cli("init", TOML, env=env)
    assert first.exit_code == 0, first.output
    assert "Consultation ess-plan saved." in first.output
    imported = cli("participants", "import", CSV, env=env)
    assert imported.exit_code == 0, imported.output
    assert "30 imported, 0 updated, 0 unchanged, 0 rejected." in imported.output
    status_before = json.loads(cli("status", "--json", env=env).output)

    again = cli("init", TOML, env=env)
    assert "already up to date" in again.output
    reimported = cli("participants", "import", CSV, env=env)
    assert "0 imported, 0 updated, 30 unchanged, 0 rejected." in reimported.output

    status_after = json.loads(cli("status", "--json", env=env).output)
    status_before.pop("now"), status_after.pop("now")
    assert status_after == status_before
    assert [phase["kind"] for phase in status_after["phases"]] == [
        "observe",
        "review",
        "propose",
        "rank",
        "evaluate",
        "follow",
    ]
    # The two coordinators run the consultation: they are not among the invited.
    assert status_after["totals"]["invited"] == 28
    assert status_after["participation"]["cooperative"]["invited"] == 5


def test_a_file_with_one_bad_row_imports_nothing_and_names_every_bad_line(
    cli, empty_database_url, tmp_path
):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    cli("init", TOML, env=env)
    bad = tmp_path / "people.csv"
    bad.write_text(
        "name,email,organisation,category,role,locale\n"
        "Aïcha Benali,aicha@example.org,Régie,association,participant,fr\n"
        "Paul Sans Arobase,paul.example.org,,citizen,participant,fr\n"
        "Zoé Inconnue,zoe@example.org,,astronaut,participant,fr\n"
        "Aïcha Bis,AICHA@example.org,,association,participant,fr\n",
        encoding="utf-8",
    )
    result = cli("participants", "import", str(bad), env=env)
    assert result.exit_code == 1
    assert "line 3: invalid email 'paul.example.org'" in result.output
    assert "line 4: unknown category 'astronaut'" in result.output
    assert "line 5: duplicate email aicha@example.org (already on line 2)" in result.output
    assert "Nothing imported" in result.output
    listing = json.loads(cli("participants", "list", "--json", env=env).output)
    assert listing == []


def test_a_malformed_definition_gives_one_line_and_writes_nothing(
    cli, empty_database_url, tmp_path
):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    broken = tmp_path / "broken.toml"
    broken.write_text('slug = "x"\ntitle = "unterminated\n', encoding="utf-8")
    result = cli("init", str(broken), env=env)
    assert result.exit_code == 1
    assert result.output.strip().startswith(f"{broken}: not valid TOML")
    assert len(result.output.strip().splitlines()) == 1


def test_a_phase_that_closes_before_it_opens_is_refused(cli, empty_database_url, tmp_path):
    text = (
        Path(TOML)
        .read_text(encoding="utf-8")
        .replace("closes = 2027-02-01T18:00:00+01:00", "closes = 2027-01-01T18:00:00+01:00", 1)
    )
    bad = tmp_path / "backwards.toml"
    bad.write_text(text, encoding="utf-8")
    result = cli("init", str(bad), env={"PALABRE_DATABASE_URL": empty_database_url})
    assert result.exit_code == 1
    assert "phases.0: closes (2027-01-01T18:00:00+01:00) is not after opens" in result.output
    assert cli("status", env={"PALABRE_DATABASE_URL": empty_database_url}).exit_code == 1


def test_an_unreachable_database_is_named_in_one_line(cli):
    url = "postgresql://postgres:secret@127.0.0.1:9/nowhere"
    result = cli("init", TOML, env={"PALABRE_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "Cannot reach the database postgresql://postgres:***@127.0.0.1:9/nowhere" in (
        result.output
    )
    assert "secret" not in result.output
    assert "Traceback" not in result.output


def test_an_unknown_database_scheme_is_refused_at_start(cli):
    result = cli("status", env={"PALABRE_DATABASE_URL": "mysql://root@localhost/palabre"})
    assert result.exit_code == 1
    assert "PALABRE_DATABASE_URL: unsupported database URL scheme 'mysql'" in result.output


def test_invite_link_is_personal_and_single_use_token_is_not_stored(cli, empty_database_url):
    env = {"PALABRE_DATABASE_URL": empty_database_url, "PALABRE_TELEGRAM_BOT_USERNAME": "ess_bot"}
    cli("init", TOML, env=env)
    cli("participants", "import", CSV, env=env)
    first = cli("invite-link", "aicha.benali@example.org", env=env)
    second = cli("invite-link", "aicha.benali@example.org", env=env)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("https://t.me/ess_bot?start=")
    assert first.output != second.output
    token = first.output.strip().rsplit("=", 1)[1]
    assert len(token) <= 64
    unknown = cli("invite-link", "nobody@example.org", env=env)
    assert unknown.exit_code == 1
    assert "No participant has the address nobody@example.org." in unknown.output


def test_invite_link_asks_the_bot_api_for_the_username(cli, empty_database_url, botapi):
    env = {
        "PALABRE_DATABASE_URL": empty_database_url,
        "PALABRE_TELEGRAM_TOKEN": "123:ABC",
        "PALABRE_TELEGRAM_API_URL": botapi.url,
    }
    cli("init", TOML, env=env)
    cli("participants", "import", CSV, env=env)
    result = cli("invite-link", "emma.wilson@example.org", env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("https://t.me/palabre_test_bot?start=")
    assert [call.method for call in botapi.calls] == ["getMe"]


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["init"],
        ["participants"],
        ["participants", "import"],
        ["participants", "list"],
        ["invite-link"],
        ["status"],
        ["db"],
        ["db", "upgrade"],
    ],
)
def test_every_command_has_help(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_a_person_can_get_their_data_and_be_forgotten_from_the_command_line(
    cli, empty_database_url
):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    cli("init", TOML, env=env)
    cli("participants", "import", CSV, env=env)
    exported = cli("participants", "export", "emma.wilson@example.org", env=env)
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["profile"]["email"] == "emma.wilson@example.org"

    forgotten = cli("participants", "forget", "emma.wilson@example.org", "--yes", env=env)
    assert forgotten.exit_code == 0, forgotten.output
    listing = json.loads(cli("participants", "list", "--json", env=env).output)
    assert "emma.wilson@example.org" not in json.dumps(listing)
    assert len(listing) == 30
    again = cli("participants", "export", "emma.wilson@example.org", env=env)
    assert again.exit_code == 1
