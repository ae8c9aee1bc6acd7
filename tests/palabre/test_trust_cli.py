"""Promises the command line keeps under hostile or careless input (issue 10), on SQLite and
PostgreSQL: no timetable in the past by accident, no NUL byte anywhere, no forgotten person
brought back by an import, nothing of them left in the file backend's copies."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOML = EXAMPLES / "ess-plan.toml"
CSV = EXAMPLES / "participants.csv"
AICHA = "aicha.benali@example.org"


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_a_timetable_already_past_is_refused_unless_meant(cli, empty_database_url, tmp_path):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    past = tmp_path / "past.toml"
    # Two years back; the follow-up's end moves with it so that it keeps its length.
    text = TOML.read_text(encoding="utf-8").replace("2027-", "2025-").replace("2030-", "2028-")
    past.write_text(text, encoding="utf-8")

    refused = cli("init", str(past), env=env)

    assert refused.exit_code == 1
    line = one_line(refused)
    assert "phases[0].closes" in line and "observe phase" in line and "--allow-past" in line
    accepted = cli("init", str(past), "--allow-past", env=env)
    assert accepted.exit_code == 0, accepted.output


def test_a_nul_byte_in_the_definition_is_one_line(cli, empty_database_url, tmp_path):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    text = TOML.read_text(encoding="utf-8")
    escaped, raw = tmp_path / "escaped.toml", tmp_path / "raw.toml"
    escaped.write_text(text.replace('title = "', 'title = "\\u0000', 1), encoding="utf-8")
    raw.write_text(text.replace("# ", "# \x00", 1), encoding="utf-8")

    for bad in (escaped, raw):
        result = cli("init", str(bad), env=env)
        assert result.exit_code == 1
        assert "control character U+0000" in one_line(result)
    assert cli("status", env=env).exit_code == 1  # nothing was written


def test_a_nul_byte_in_a_csv_field_is_one_line(cli, empty_database_url, tmp_path):
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    assert cli("init", str(TOML), env=env).exit_code == 0
    bad = tmp_path / "people.csv"
    bad.write_text(
        CSV.read_text(encoding="utf-8").replace("Aïcha Benali", "Aïcha\x00Benali", 1),
        encoding="utf-8",
    )

    result = cli("participants", "import", str(bad), env=env)

    assert result.exit_code == 1
    assert f"{bad}: line 2, column 6: contains the control character U+0000" in one_line(result)


def test_a_forgotten_person_stays_forgotten(cli, empty_database_url, tmp_path):
    """Given Aïcha was invited by email (file backend) and then forgotten, her `.eml` copies
    are gone and importing the same list again skips her, saying so in one line."""
    env = {"PALABRE_DATABASE_URL": empty_database_url}
    assert cli("init", str(TOML), env=env).exit_code == 0
    assert cli("participants", "import", str(CSV), env=env).exit_code == 0
    assert cli("invite", env=env).exit_code == 0
    assert cli("mail", "send", env=env).exit_code == 0
    mail = tmp_path / "mail"
    assert any(AICHA in path.read_text(errors="replace") for path in mail.glob("*.eml"))

    forgotten = cli("participants", "forget", AICHA, "--yes", env=env)

    assert forgotten.exit_code == 0, forgotten.output
    assert not any(AICHA in path.read_text(errors="replace") for path in mail.glob("*.eml"))
    again = cli("participants", "import", str(CSV), env=env)
    assert again.exit_code == 0, again.output
    assert f"line 2: {AICHA} asked to be forgotten: not imported again." in again.output
    assert "0 imported, 0 updated, 29 unchanged, 0 rejected." in again.output
