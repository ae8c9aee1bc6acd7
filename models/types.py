"""Column types shared by every table: UTC timestamps that survive SQLite, and JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so values are stored as naive UTC
    and given their zone back on the way out. A naive datetime on the way in is a bug and raises.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Palabre stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_field(*, nullable: bool = True, index: bool = False, default: Any = None) -> Any:
    """A timestamp column of type `UTCDateTime`."""
    return Field(default=default, sa_type=UTCDateTime, nullable=nullable, index=index)


def json_field(default_factory: Any = None, nullable: bool = False) -> Any:
    """A JSON column (lists and dicts of plain values)."""
    if default_factory is None:
        return Field(default=None, sa_type=JSON, nullable=True)
    return Field(default_factory=default_factory, sa_type=JSON, nullable=nullable)
