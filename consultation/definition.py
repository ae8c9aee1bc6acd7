"""The consultation definition file (TOML): its schema, its validation, and applying it.

`palabre init FILE.toml` creates a consultation, or updates the one with the same slug; applying
the same file twice changes nothing. Every problem is reported as one line naming the file, the
field and what is wrong, and nothing is written unless the whole file is valid.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import audit, clock, files
from consultation.errors import DefinitionError
from models import Consultation, Phase, PhaseKind, PhaseStatus, Question, Questionnaire

Localized = dict[Literal["fr", "en"], Annotated[str, Field(min_length=1)]]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")]
DAY = 86_400


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CategorySpec(_Strict):
    key: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,79}$")]
    label: Localized

    @field_validator("label")
    @classmethod
    def _both_languages(cls, value: dict[str, str]) -> dict[str, str]:
        return _require_fr_en(value)


class PhaseSpec(_Strict):
    kind: PhaseKind
    opens: datetime
    closes: datetime
    min_days: float = Field(default=1, ge=0)
    max_days: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _coherent(self) -> PhaseSpec:
        if self.opens.tzinfo is None or self.closes.tzinfo is None:
            raise ValueError("opens and closes need a UTC offset, e.g. 2026-03-02T09:00:00+01:00")
        if self.closes <= self.opens:
            raise ValueError(
                f"closes ({self.closes.isoformat()}) is not after opens ({self.opens.isoformat()})"
            )
        if self.min_days > self.max_days:
            raise ValueError("min_days is larger than max_days")
        days = (self.closes - self.opens).total_seconds() / DAY
        if days < self.min_days or days > self.max_days:
            raise ValueError(
                f"lasts {days:g} days, outside min_days={self.min_days:g} and "
                f"max_days={self.max_days:g}"
            )
        return self


class QuestionSpec(_Strict):
    kind: Literal["likert", "choice", "text"]
    prompt: Localized
    choices: list[Localized] = Field(default_factory=list)

    @field_validator("prompt")
    @classmethod
    def _both_languages(cls, value: dict[str, str]) -> dict[str, str]:
        return _require_fr_en(value)

    @model_validator(mode="after")
    def _choices_match_kind(self) -> QuestionSpec:
        if self.kind == "choice" and len(self.choices) < 2:
            raise ValueError("a choice question needs at least two choices")
        if self.kind != "choice" and self.choices:
            raise ValueError(f"a {self.kind} question takes no choices")
        for choice in self.choices:
            _require_fr_en(choice)
        return self


class QuestionnaireSpec(_Strict):
    key: Slug
    title: Localized
    after_phase: PhaseKind | None = None
    final: bool = False
    open_days: int = Field(default=7, ge=1, le=60)
    questions: list[QuestionSpec] = Field(min_length=1)

    @field_validator("title")
    @classmethod
    def _both_languages(cls, value: dict[str, str]) -> dict[str, str]:
        return _require_fr_en(value)

    @model_validator(mode="after")
    def _when(self) -> QuestionnaireSpec:
        if self.final == (self.after_phase is not None):
            raise ValueError('set exactly one of after_phase = "<phase kind>" or final = true')
        return self


class RulesSpec(_Strict):
    observation_max_length: int = Field(default=1000, ge=50, le=4000)
    daily_cap: int = Field(default=10, ge=1, le=1000)
    ballot_k: int = Field(default=5, ge=1, le=50)
    quiet_hours: tuple[time, time] = (time(21, 0), time(8, 0))
    reminder_offsets_hours: list[int] = Field(default_factory=lambda: [48, 6])
    digest_hour: time = time(8, 0)
    digest_weekday: int = Field(default=0, ge=0, le=6)
    invitation_days: int = Field(default=30, ge=1, le=365)
    # The follow phase (after the vote): how often members hear what became of the actions they
    # touched (nothing is sent when nothing changed), when they are asked whether the plan
    # progresses as announced (every so many months, 0 for never, and at the end), and after
    # how many days coordinators are reminded of the decisions still missing once ranking closed.
    follow_digest: Literal["weekly", "monthly", "quarterly"] = "monthly"
    follow_questionnaire_months: int = Field(default=12, ge=0, le=60)
    follow_questionnaire_at_end: bool = True
    follow_questionnaire_days: int = Field(default=14, ge=1, le=60)
    decision_reminder_days: int = Field(default=14, ge=1, le=120)

    @field_validator("quiet_hours", mode="before")
    @classmethod
    def _parse_range(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = value.replace(" ", "").split("-")
            if len(parts) != 2:
                raise ValueError('write quiet hours as "21:00-08:00"')
            return tuple(parts)
        return value

    @field_validator("reminder_offsets_hours")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(offset <= 0 for offset in value):
            raise ValueError("reminder offsets are hours before a deadline: positive numbers")
        return sorted(set(value), reverse=True)

    def as_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["quiet_hours"] = [
            self.quiet_hours[0].strftime("%H:%M"),
            self.quiet_hours[1].strftime("%H:%M"),
        ]
        data["digest_hour"] = self.digest_hour.strftime("%H:%M")
        return data


class ConsultationSpec(_Strict):
    slug: Slug
    title: Annotated[str, Field(min_length=3, max_length=300)]
    question: Annotated[str, Field(min_length=10, max_length=2000)]
    default_locale: Literal["fr", "en"] = "fr"
    timezone: str = "Europe/Paris"
    scope_in: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    scope_out: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    categories: list[CategorySpec] = Field(min_length=1)
    phases: list[PhaseSpec] = Field(min_length=1)
    questionnaires: list[QuestionnaireSpec] = Field(default_factory=list)
    rules: RulesSpec = Field(default_factory=RulesSpec)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Paris)") from exc
        return value

    @model_validator(mode="after")
    def _coherent(self) -> ConsultationSpec:
        keys = [category.key for category in self.categories]
        if len(set(keys)) != len(keys):
            raise ValueError(f"categories: duplicate key in {keys}")
        kinds = {phase.kind for phase in self.phases}
        follows = [i for i, phase in enumerate(self.phases) if phase.kind == PhaseKind.FOLLOW]
        if follows:
            if len(follows) > 1 or follows[0] != len(self.phases) - 1:
                raise ValueError("the follow phase comes once, as the last phase")
            if PhaseKind.RANK not in kinds:
                raise ValueError("a follow phase follows the actions ranked: add a rank phase")
        for index, (before, after) in enumerate(zip(self.phases, self.phases[1:], strict=False)):
            if after.opens < before.closes:
                raise ValueError(
                    f"phases[{index + 1}] ({after.kind}) opens before phases[{index}] "
                    f"({before.kind}) closes"
                )
        qkeys = [questionnaire.key for questionnaire in self.questionnaires]
        if len(set(qkeys)) != len(qkeys):
            raise ValueError(f"questionnaires: duplicate key in {qkeys}")
        for questionnaire in self.questionnaires:
            if questionnaire.after_phase and questionnaire.after_phase not in kinds:
                raise ValueError(
                    f"questionnaire {questionnaire.key!r} follows phase "
                    f"{questionnaire.after_phase!r}, which this consultation does not have"
                )
        if sum(1 for questionnaire in self.questionnaires if questionnaire.final) > 1:
            raise ValueError("only one questionnaire can be final")
        return self


def _require_fr_en(value: dict[str, str]) -> dict[str, str]:
    missing = [lang for lang in ("fr", "en") if not value.get(lang)]
    if missing:
        raise ValueError(f"missing the {' and '.join(missing)} text")
    return value


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    field = ".".join(str(part) for part in error["loc"]) or None
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "required field is missing"
    elif error["type"] == "extra_forbidden":
        message = "unknown field (check its spelling)"
    return field or "", message


def parse(text: str, source: str = "<definition>") -> ConsultationSpec:
    """Validate a definition; raises `DefinitionError` naming the first problem precisely."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(source, None, f"not valid TOML: {exc}") from exc
    files.refuse_controls(text, source=source)
    _refuse_escaped_controls(data, source=source, path=())
    try:
        return ConsultationSpec.model_validate(data)
    except ValidationError as exc:
        field, message = _describe(exc.errors()[0])
        extra = len(exc.errors()) - 1
        if extra:
            message += f" (and {extra} more problem{'s' if extra > 1 else ''})"
        raise DefinitionError(source, field or None, message) from exc


def _refuse_escaped_controls(value: Any, *, source: str, path: tuple[str, ...]) -> None:
    """A control character written as a TOML escape (`\\u0000`) is refused like a raw one."""
    if isinstance(value, str):
        char = files.control_character(value)
        if char is not None:
            raise DefinitionError(source, ".".join(path) or None, files.describe_control(char))
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_escaped_controls(item, source=source, path=(*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_escaped_controls(item, source=source, path=(*path, str(index)))


def load(path: str | Path) -> ConsultationSpec:
    return parse(files.read_text(path), str(path))


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


async def apply(
    *, session: AsyncSession, spec: ConsultationSpec, allow_past: bool = False
) -> tuple[Consultation, bool]:
    """Create or update the consultation `spec.slug`; returns it and whether anything changed.

    A phase yet to run whose closing date is already past is refused (the service would open
    and close it at once, and send its messages too late) unless `allow_past` says it is meant.
    """
    current = clock.now()
    consultation = (
        await session.exec(select(Consultation).where(Consultation.slug == spec.slug))
    ).first()
    fields = {
        "title": spec.title,
        "question": spec.question,
        "scope_in": list(spec.scope_in),
        "scope_out": list(spec.scope_out),
        "categories": [category.model_dump() for category in spec.categories],
        "default_locale": spec.default_locale,
        "timezone": spec.timezone,
        "rules": spec.rules.as_json(),
    }
    changed = False
    if consultation is None:
        consultation = Consultation(
            slug=spec.slug, created_at=current, updated_at=current, **fields
        )
        session.add(consultation)
        await session.flush()
        changed = True
    else:
        for name, value in fields.items():
            if getattr(consultation, name) != value:
                setattr(consultation, name, value)
                changed = True
    changed |= await _apply_phases(session, consultation, spec.phases, allow_past=allow_past)
    changed |= await _apply_questionnaires(session, consultation, spec.questionnaires)
    if changed:
        consultation.updated_at = current
        session.add(consultation)
        await audit.record(
            session=session,
            consultation_id=consultation.id,
            action="consultation.defined",
            actor_label="cli",
            subject=spec.slug,
        )
    return consultation, changed


async def _apply_phases(
    session: AsyncSession, consultation: Consultation, specs: list[PhaseSpec], *, allow_past: bool
) -> bool:
    existing = {
        phase.position: phase
        for phase in (
            await session.exec(select(Phase).where(Phase.consultation_id == consultation.id))
        ).all()
    }
    changed = False
    for position, spec in enumerate(specs, start=1):
        values = {
            "kind": spec.kind.value,
            "opens_at": _utc(spec.opens),
            "closes_at": _utc(spec.closes),
            "min_duration_s": round(spec.min_days * DAY),
            "max_duration_s": round(spec.max_days * DAY),
        }
        phase = existing.pop(position, None)
        yet_to_run = phase is None or phase.status == PhaseStatus.SCHEDULED
        if yet_to_run and not allow_past and values["closes_at"] <= clock.now():
            raise DefinitionError(
                "definition",
                f"phases[{position - 1}].closes",
                f"the {spec.kind.value} phase (phase {position}) closes on "
                f"{spec.closes.isoformat()}, which is already past: fix the timetable, "
                "or pass --allow-past to keep it on purpose",
            )
        if phase is None:
            session.add(Phase(consultation_id=consultation.id, position=position, **values))
            changed = True
            continue
        if phase.status != PhaseStatus.SCHEDULED:
            # An open or closed phase keeps its kind and actual dates; only a coordinator's
            # logged decision (close, extend) changes them.
            if phase.kind != values["kind"]:
                raise DefinitionError(
                    "definition",
                    f"phases[{position - 1}].kind",
                    f"phase {position} is already {phase.status}; its kind cannot change",
                )
            values = {k: v for k, v in values.items() if k in {"min_duration_s", "max_duration_s"}}
        for name, value in values.items():
            if getattr(phase, name) != value:
                setattr(phase, name, value)
                changed = True
        session.add(phase)
    for position, phase in existing.items():
        if phase.status != PhaseStatus.SCHEDULED:
            raise DefinitionError(
                "definition",
                "phases",
                f"phase {position} ({phase.kind}) has started; it cannot be removed",
            )
        await session.delete(phase)
        changed = True
    return changed


async def _apply_questionnaires(
    session: AsyncSession, consultation: Consultation, specs: list[QuestionnaireSpec]
) -> bool:
    existing = {
        questionnaire.key: questionnaire
        for questionnaire in (
            await session.exec(
                select(Questionnaire).where(Questionnaire.consultation_id == consultation.id)
            )
        ).all()
    }
    changed = False
    for spec in specs:
        values = {
            "title": dict(spec.title),
            "after_phase": spec.after_phase.value if spec.after_phase else None,
            "is_final": spec.final,
            "open_days": spec.open_days,
        }
        questionnaire = existing.get(spec.key)
        if questionnaire is None:
            questionnaire = Questionnaire(consultation_id=consultation.id, key=spec.key, **values)
            session.add(questionnaire)
            await session.flush()
            changed = True
        else:
            for name, value in values.items():
                if getattr(questionnaire, name) != value:
                    setattr(questionnaire, name, value)
                    changed = True
            session.add(questionnaire)
        changed |= await _apply_questions(session, questionnaire, spec.questions)
    return changed


async def _apply_questions(
    session: AsyncSession, questionnaire: Questionnaire, specs: list[QuestionSpec]
) -> bool:
    existing = {
        question.position: question
        for question in (
            await session.exec(
                select(Question).where(Question.questionnaire_id == questionnaire.id)
            )
        ).all()
    }
    changed = False
    for position, spec in enumerate(specs, start=1):
        values = {
            "kind": spec.kind,
            "prompt": dict(spec.prompt),
            "choices": [dict(choice) for choice in spec.choices],
        }
        question = existing.pop(position, None)
        if question is None:
            session.add(Question(questionnaire_id=questionnaire.id, position=position, **values))
            changed = True
            continue
        for name, value in values.items():
            if getattr(question, name) != value:
                setattr(question, name, value)
                changed = True
        session.add(question)
    for question in existing.values():
        await session.delete(question)
        changed = True
    return changed
