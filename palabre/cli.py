"""The `palabre` command: set up a consultation, import its participants, run and watch it.

Each command lives in a module of `palabre.commands`, imported only when that command runs (or
its own `--help` is asked): `palabre --help` lists them from `COMMANDS` without loading the
database layer, the Telegram library or the mailer, so that it answers at once.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

# name → (module that registers it, one-line summary shown by `palabre --help`); in this order.
# The summary is the first line of the command's own help (a test keeps them equal).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "palabre.commands.setup",
        "Create the consultation FILE describes, or update the one with the same slug.",
    ),
    "db": ("palabre.commands.setup", "The database schema."),
    "participants": ("palabre.commands.people", "The people taking part."),
    "invite-link": (
        "palabre.commands.people",
        "Print a personal, single-use Telegram invitation link for one participant.",
    ),
    "status": (
        "palabre.commands.status",
        "Show the phases with their dates and state, and participation by category.",
    ),
    "schedule": (
        "palabre.commands.schedule",
        "Show what the scheduler will do next and when, in the consultation's time zone.",
    ),
    "phase": ("palabre.commands.phases", "Open, close or extend a phase of the timetable."),
    "observations": ("palabre.commands.observations", "The observations: list, moderate, merge."),
    "findings": ("palabre.commands.findings", "The draft findings: write, publish, list."),
    "actions": ("palabre.commands.actions", "The actions: add, link, merge, shortlist, list."),
    "ballots": ("palabre.commands.ballots", "Paper ballots."),
    "results": (
        "palabre.commands.results",
        "Findings with their confirmation rates, the ranking of the actions, participation.",
    ),
    "meeting": (
        "palabre.commands.meeting",
        "What a meeting or a workshop said, recorded anonymously.",
    ),
    "export": (
        "palabre.commands.export",
        "Write observations, findings, stances, actions, ballots and answers, with pseudonyms.",
    ),
    "plan": (
        "palabre.commands.plan",
        "The plan after the vote: the official answer to each action, and its progress.",
    ),
    "broadcast": (
        "palabre.commands.coordination",
        "Write a message to every participant (or one category), on the channel that reaches them.",
    ),
    "audit": (
        "palabre.commands.coordination",
        "The audit trail: forced phase changes, refusals, erasures, broadcasts, with their reason.",
    ),
    "questionnaire": (
        "palabre.commands.coordination",
        "The questionnaires: list, open, close, remind.",
    ),
    "serve": (
        "palabre.commands.serve",
        "Run Palabre: the Telegram bot, the email and Telegram senders, and the scheduler.",
    ),
    "invite": (
        "palabre.commands.mail",
        "Email the invitations: question, scope, personal Telegram link, the email-only way.",
    ),
    "digest": ("palabre.commands.mail", "The email digest."),
    "mail": ("palabre.commands.mail", "Sending email and reading replies."),
}


class _Summary(TyperCommand):
    """A command as `palabre --help` lists it: its name and summary, nothing imported."""

    def __init__(self, name: str, summary: str) -> None:
        super().__init__(name, help=summary, short_help=summary)


def load_command(name: str) -> Any:
    """The real command `name`, its module imported and its commands registered."""
    module = importlib.import_module(COMMANDS[name][0])
    holder = typer.Typer()
    module.register(holder)
    return typer.main.get_group(holder).commands[name]


class LazyGroup(TyperGroup):
    """The root group: lists every command of `COMMANDS`, loads one only to run it."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        return [*super().list_commands(ctx), *COMMANDS]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:
        if cmd_name in COMMANDS:
            return _Summary(cmd_name, COMMANDS[cmd_name][1])
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: typer.Context, args: list[str]
    ) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Summary) and name is not None:
            command = load_command(name)
        return name, command, rest


app = typer.Typer(
    name="palabre",
    cls=LazyGroup,
    help="Palabre: run a shared diagnosis between meetings, on Telegram and by email.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # Plain help: rich's formatting alone costs more than the rest of `palabre --help`.
    rich_markup_mode=None,
)


@app.callback()
def _configure(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log more."),
) -> None:
    from palabre.commands.common import configure_logging

    configure_logging(verbose, serving=ctx.invoked_subcommand == "serve")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
