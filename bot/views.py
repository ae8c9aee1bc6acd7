"""Plain dictionaries for the templates, built from rows (templates never touch the database)."""

from __future__ import annotations

from typing import Any

from consultation import clock
from models import Consultation, Phase


def consultation_view(consultation: Consultation) -> dict[str, Any]:
    return {
        "slug": consultation.slug,
        "title": consultation.title,
        "question": consultation.question,
        "scope_in": list(consultation.scope_in or []),
        "scope_out": list(consultation.scope_out or []),
        "timezone": consultation.timezone,
    }


def phase_view(phase: Phase | None, consultation: Consultation) -> dict[str, Any] | None:
    """The open phase with its deadline and the time left, or None."""
    if phase is None:
        return None
    left = (phase.closes_at - clock.now()).total_seconds()
    return {
        "id": phase.id,
        "kind": phase.kind,
        "closes_at": phase.closes_at.isoformat(),
        "timezone": consultation.timezone,
        "seconds_left": max(left, 0),
        "overdue": left <= 0,
    }
