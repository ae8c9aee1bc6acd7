"""The names the command line gives to phases and states, as the meeting brief names them.

Marked for translation here (`N_`), translated where printed, so that every command says
"Review of the findings" — "Examen des constats" — where the brief does.
"""

from __future__ import annotations

from palabre.commands.common import N_, _

PHASE_NAMES = {
    "observe": N_("Observations"),
    "review": N_("Review of the findings"),
    "propose": N_("Proposals of actions"),
    "rank": N_("Ranking of the actions"),
    "evaluate": N_("Evaluation"),
    "follow": N_("Follow-up of the plan"),
}
STATUS_NAMES = {"scheduled": N_("scheduled"), "open": N_("open"), "closed": N_("closed")}


def phase_name(kind: str | None) -> str:
    """The phase `kind` (observe, review…) by its name, in the coordinator's language."""
    return _(PHASE_NAMES[kind]) if kind in PHASE_NAMES else kind or ""


def status_name(status: str) -> str:
    return _(STATUS_NAMES[status]) if status in STATUS_NAMES else status
