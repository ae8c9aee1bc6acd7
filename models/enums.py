"""The closed vocabularies of the process. Stored as plain strings so migrations stay simple."""

from enum import StrEnum


class PhaseKind(StrEnum):
    OBSERVE = "observe"
    REVIEW = "review"
    PROPOSE = "propose"
    RANK = "rank"
    EVALUATE = "evaluate"
    # Optional, after evaluate: the local government's answer to every action, and its progress.
    FOLLOW = "follow"


class PhaseStatus(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"


class Role(StrEnum):
    PARTICIPANT = "participant"
    COORDINATOR = "coordinator"


class Channel(StrEnum):
    TELEGRAM = "telegram"
    EMAIL = "email"
    CLI = "cli"
    PAPER = "paper"
    MEETING = "meeting"


class Cadence(StrEnum):
    OFF = "off"
    DAILY = "daily"
    WEEKLY = "weekly"


class ScopeStatus(StrEnum):
    PENDING = "pending"
    IN_SCOPE = "in_scope"
    OUT_OF_SCOPE = "out_of_scope"
    MERGED = "merged"


class FindingStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class StanceChoice(StrEnum):
    CONFIRM = "confirm"
    CONTEST = "contest"
    ABSTAIN = "abstain"


class ActionStatus(StrEnum):
    PROPOSED = "proposed"
    SHORTLISTED = "shortlisted"
    MERGED = "merged"
    REJECTED = "rejected"


class QuestionKind(StrEnum):
    LIKERT = "likert"
    CHOICE = "choice"
    TEXT = "text"


class QuestionnaireStatus(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"
    CANCELLED = "cancelled"


class EmailStatus(StrEnum):
    OK = "ok"
    BOUNCED = "bounced"


class Decision(StrEnum):
    """The local government's official answer to an action."""

    RETAINED = "retained"
    RETAINED_WITH_CHANGES = "retained_with_changes"
    NOT_RETAINED = "not_retained"


class Progress(StrEnum):
    """Where a retained action stands; `planned` until the first progress update."""

    PLANNED = "planned"
    STARTED = "started"
    LATE = "late"
    DONE = "done"
    ABANDONED = "abandoned"


class FollowUpView(StrEnum):
    """A member's answer to "is this progressing as announced?"."""

    YES = "yes"
    PARTLY = "partly"
    NO = "no"
    UNKNOWN = "unknown"
