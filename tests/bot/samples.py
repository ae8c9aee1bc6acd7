"""A sample context for every template the bot renders, for the template tests.

User-written text in the samples carries HTML-looking characters, so the tests see that it is
escaped wherever it appears.
"""

from __future__ import annotations

from typing import Any

EVIL = 'Coops <b>&</b> "SCIC" <script>'
WHEN = "2026-03-16T17:00:00+00:00"
TZ = "Europe/Paris"
PHASE = {
    "id": 2,
    "kind": "review",
    "closes_at": WHEN,
    "timezone": TZ,
    "seconds_left": 3 * 86400 + 7200,
    "overdue": False,
}
CONSULTATION = {
    "slug": "ess",
    "title": "Plan ESS <2026>",
    "question": "Comment soutenir l'ESS ?",
    "scope_in": ["L'accompagnement", EVIL],
    "scope_out": ["Les subventions"],
    "timezone": TZ,
}
FINDING = {
    "code": "F2",
    "text": EVIL,
    "version": 2,
    "observation_count": 3,
    "choice": "contest",
    "reason": EVIL,
    "previous_choice": "confirm",
}
ACTION = {"code": "A3", "text": EVIL}
OBSERVATION = {"id": 12, "text": EVIL, "theme": "foncier"}
CONTRIBUTIONS = [
    {
        "kind": "observation",
        "excerpt": EVIL,
        "scope_status": "in_scope",
        "findings": [
            {
                "code": "F2",
                "actions": [
                    {
                        "code": "A3",
                        "rank": 1,
                        "tied": False,
                        "status": "shortlisted",
                        "of": 8,
                        "decision": "retained",
                        "progress": "late",
                        "due": "2028-06-30",
                    }
                ],
            }
        ],
    },
    {
        "kind": "proposal",
        "excerpt": EVIL,
        "code": "A5",
        "status": "merged",
        "became": {"code": "A3", "rank": 2, "tied": True, "status": "shortlisted", "of": 8},
    },
]
# An action after the vote, as `consultation.followup.action_state` gives it.
DECIDED = {
    "code": "A3",
    "text": EVIL,
    "shortlisted": True,
    "decision": "retained_with_changes",
    "wording": EVIL,
    "reason": EVIL,
    "lead": EVIL,
    "due": "2028-06-30",
    "status": "late",
    "note": EVIL,
    "status_at": WHEN,
    "decided_at": WHEN,
    "milestones": [
        {"position": 1, "text": EVIL, "done": True},
        {"position": 2, "text": "Ouverture", "done": False},
    ],
}
REFUSED = {
    **DECIDED,
    "code": "A9",
    "decision": "not_retained",
    "wording": None,
    "lead": None,
    "due": None,
    "status": None,
    "note": None,
    "milestones": [],
}
PLAN = {
    "ranking_over": True,
    "ranking_closed_at": WHEN,
    "actions": [
        {**DECIDED, "rank": 1, "members": {"yes": 3, "partly": 1, "no": 0, "unknown": 2}},
        {**REFUSED, "rank": 2, "members": None},
        {**REFUSED, "code": "A4", "decision": None, "reason": None, "rank": None, "members": None},
    ],
    "missing": ["A4"],
    "decisions": {"retained_with_changes": 1, "not_retained": 1},
    "statuses": {"late": 1},
}
WAITING = {
    "phase": {"kind": "review", "closes_at": WHEN},
    "timezone": TZ,
    "findings": ["F1", "F2"],
    "findings_count": 2,
    "ballot_needed": True,
    "questionnaires": ["after-observe"],
    "observations_welcome": True,
    "proposals_welcome": False,
    "contributed_in_phase": 1,
    "remaining_today": 9,
    "is_empty": False,
}
LIMITS = {"observation_max_length": 1000, "daily_cap": 10, "ballot_k": 5}

# What the bot sends in answer to a person (rendered by the handlers).
BOT: dict[str, dict[str, Any]] = {
    "unknown_chat": {},
    "consent": {"title": EVIL, "declined": True},
    "consent_given": {},
    "consent_declined": {},
    "invitation_move": {},
    "invitation_move_cancelled": {},
    "invitation_elsewhere": {"moved": True},
    "welcome": {"consultation": CONSULTATION, "phase": PHASE, "name": EVIL, "coordinator": True},
    "help": {"coordinator": True},
    "cancelled": {},
    "status": {"waiting": WAITING, "phase": PHASE, "coordinator": False, "limit": 1000},
    "observe_help": {
        "phase": PHASE,
        "open": False,
        "limit": 1000,
        "scope_in": [EVIL],
        "scope_out": [EVIL],
    },
    "too_long": {"limit": 1000, "length": 1200},
    "record_this": {"kind": "observation", "text": EVIL, "limit": 1000},
    "recorded": {"kind": "proposal", "text": EVIL, "recorded": True, "code": "A7"},
    "propose_prompt": {"limit": 1000},
    "propose_help": {"limit": 1000},
    "findings_intro": {"count": 2, "all": False, "phase": PHASE},
    "finding": {"finding": FINDING, "revised": True},
    "contest_reason": {"code": "F2"},
    "stance_recorded": {"finding": FINDING},
    "ballot": {"actions": [ACTION], "picked": [ACTION], "k": 5, "remaining": 4},
    "ballot_review": {"actions": [ACTION], "picked": [ACTION], "k": 5, "remaining": 4},
    "ballot_recorded": {
        "actions": [ACTION],
        "picked": [ACTION],
        "k": 5,
        "remaining": 4,
        "phase": PHASE,
    },
    "ballot_current": {"picked": [ACTION], "phase": PHASE},
    "ballot_no_shortlist": {},
    "question": {
        "title": EVIL,
        "position": 2,
        "count": 3,
        "kind": "choice",
        "prompt": EVIL,
        "choices": [EVIL, "bonne"],
    },
    "question_answered": {
        "title": EVIL,
        "position": 2,
        "count": 3,
        "kind": "text",
        "prompt": EVIL,
        "choices": [],
        "answer": EVIL,
    },
    "questionnaire_done": {"title": EVIL, "more": 1},
    "questionnaire_none": {},
    "questionnaire_pick": {"titles": [EVIL]},
    "mine": {"contributions": CONTRIBUTIONS},
    "plan": {"plan": PLAN, "coordinator": True},
    "plan_recorded": {"action": DECIDED},
    "followup_question": {"action": {**DECIDED, "answer": "partly", "remark": EVIL}},
    "followup_recorded": {"code": "A3", "view": "unknown", "remark": None},
    "followup_done": {},
    "mydata": {},
    "report_preparing": {},
    "report": {"title": EVIL},
    "forget_confirm": {},
    "forgotten": {},
    "forget_kept": {},
    "stopped": {},
    "settings": {
        "language": "Français",
        "cadence": "weekly",
        "channel": "email",
        "email": "a@example.org",
        "saved": True,
    },
    "publish_nothing": {},
    "publish_confirm": {"drafts": [{"code": "F1", "text": EVIL}]},
    "published": {"codes": ["F1", "F2"]},
    "broadcast_confirm": {"text": EVIL, "category": "cooperative", "count": 12},
    "broadcast_sent": {"count": 12, "category": None},
    "phase": {
        "phase": PHASE,
        "min_end": WHEN,
        "max_end": WHEN,
        "can_close": True,
        "can_extend": True,
    },
    "phase_none": {},
    "phase_reason_prompt": {"action": "ext", "days": 7, "kind": "review"},
    "phase_changed": {"action": "ext", "phase": PHASE, "kind": "review"},
    "stats": {
        "rows": [
            {
                "label": {"fr": "Coopérative", "en": "Cooperative"},
                "invited": 10,
                "consented": 8,
                "contributed": 5,
                "rate": 0.5,
                "in_phase": 3,
                "under_represented": True,
            }
        ],
        "phase_kind": "review",
        "findings": [{"code": "F1", "answers": 7, "rate": 0.75, "contest": 1}],
    },
    "moderate_intro": {"count": 12, "shown": 10},
    "moderate_item": {"observation": OBSERVATION},
    "moderated": {"observation": OBSERVATION, "in_scope": False, "reason": EVIL},
    "scope_reason_prompt": {"observation": OBSERVATION},
    "scope_recorded": {"observation": OBSERVATION, "reason": EVIL},
}

# What the core (and the bot's broadcast) enqueue in the outbox: the payloads they write.
OUTBOX: dict[str, dict[str, Any]] = {
    "findings_published": {
        "codes": ["F2", "F1"],
        "count": 2,
        "deadline": WHEN,
        "timezone": TZ,
        "findings": [{"code": "F2", "text": EVIL}, {"code": "F1", "text": "b"}],
    },
    "finding_revised": {
        "code": "F2",
        "version": 2,
        "text": EVIL,
        "previous_choice": "contest",
        "deadline": WHEN,
        "timezone": TZ,
    },
    "phase_opened": {
        "kind": "observe",
        "closes_at": WHEN,
        "timezone": TZ,
        "question": EVIL,
        "limits": LIMITS,
    },
    "phase_closed": {
        "kind": "observe",
        "closed_at": WHEN,
        "timezone": TZ,
        "next_kind": "review",
        "next_opens_at": WHEN,
    },
    "phase_extended": {
        "kind": "review",
        "closes_at": WHEN,
        "previous_closes_at": WHEN,
        "timezone": TZ,
    },
    "observation_out_of_scope": {
        "excerpt": EVIL,
        "reason": EVIL,
        "submitted_at": WHEN,
        "timezone": TZ,
    },
    "questionnaire_opened": {
        "key": "after-observe",
        "title": {"fr": EVIL, "en": EVIL},
        "is_final": False,
        "after_phase": "observe",
        "closes_at": WHEN,
        "timezone": TZ,
        "questions": [
            {"position": 1, "kind": "likert", "prompt": {"fr": "x", "en": "x"}, "choices": []}
        ],
    },
    "reminder": {
        "phase_kind": "review",
        "closes_at": WHEN,
        "timezone": TZ,
        "hours": 48,
        "findings": ["F1", "F2"],
        "ballot": False,
        "observation": False,
        "proposal": False,
        "questionnaires": [{"key": "q", "title": {"fr": EVIL, "en": EVIL}, "closes_at": WHEN}],
    },
    "final_plan": {
        "plan": [{"code": "A3", "text": EVIL, "rank": 1, "tied": False}],
        "ballots": 12,
        "contributions": CONTRIBUTIONS,
        "observation_count": 1,
        "proposal_count": 1,
    },
    "broadcast": {"text": EVIL, "category": None, "title": EVIL},
    "follow_digest": {
        "since": None,
        "timezone": TZ,
        "actions": [
            {
                **DECIDED,
                "changes": ["decision", "milestone"],
                "ticked": [1],
                "touched": ["proposed", "finding"],
            },
            {**REFUSED, "changes": ["decision"], "ticked": [], "touched": []},
        ],
    },
    "followup_questionnaire": {
        "number": 1,
        "final": False,
        "closes_at": WHEN,
        "timezone": TZ,
        "actions": [DECIDED],
    },
    "plan_missing": {
        "ranking_closed_at": WHEN,
        "actions": [{"code": "A4", "text": EVIL}],
        "count": 1,
        "total": 3,
    },
    "plan_overdue": {"actions": [DECIDED], "timezone": TZ},
    "email_bounced": {
        "person": {"name": EVIL, "email": "a@example.org", "organisation": EVIL},
        "bounces": 3,
        "reason": EVIL,
    },
}
