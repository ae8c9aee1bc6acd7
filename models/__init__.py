"""Palabre's tables (SQLModel) and database helpers: SQLite by default, PostgreSQL in production."""

from models.consultation import Consultation, Phase
from models.contributions import (
    Action,
    ActionFinding,
    Ballot,
    Finding,
    FindingObservation,
    FindingVersion,
    Observation,
    Stance,
)
from models.enums import (
    ActionStatus,
    Cadence,
    Channel,
    EmailStatus,
    FindingStatus,
    OutboxStatus,
    PhaseKind,
    PhaseStatus,
    QuestionKind,
    QuestionnaireStatus,
    Role,
    ScopeStatus,
    StanceChoice,
)
from models.messaging import AuditEvent, InboundRecord, JobRun, OutboxMessage
from models.people import DialogueState, ForgottenAddress, Invitation, Participant
from models.questionnaires import Answer, Question, Questionnaire

__all__ = [
    "Action",
    "ActionFinding",
    "ActionStatus",
    "Answer",
    "AuditEvent",
    "Ballot",
    "Cadence",
    "Channel",
    "Consultation",
    "DialogueState",
    "EmailStatus",
    "Finding",
    "FindingObservation",
    "FindingStatus",
    "FindingVersion",
    "ForgottenAddress",
    "InboundRecord",
    "Invitation",
    "JobRun",
    "Observation",
    "OutboxMessage",
    "OutboxStatus",
    "Participant",
    "Phase",
    "PhaseKind",
    "PhaseStatus",
    "Question",
    "QuestionKind",
    "Questionnaire",
    "QuestionnaireStatus",
    "Role",
    "ScopeStatus",
    "Stance",
    "StanceChoice",
]
