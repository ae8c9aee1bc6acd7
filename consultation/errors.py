"""The two kinds of error, as in Zulip's email mirror.

`UserError` is a person's mistake or a refusal by the rules: the channel answers it kindly, in
the person's language, from the `common/error` template, using `code` and `params`; it is logged
at info. Anything else is a fault: logged with addresses and tokens redacted, and the person gets
a short apology.
"""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """A refusal to explain to the person. `code` selects the sentence in `common/error`."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.params!r})"

    def __str__(self) -> str:
        if not self.params:
            return self.code
        details = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{self.code} ({details})"


class PermissionDenied(UserError):
    """A participant called a coordinator operation."""

    def __init__(self, code: str = "permission.coordinator_only", **params: Any) -> None:
        super().__init__(code, **params)


class NotFound(UserError):
    """The thing named does not exist (an unknown code, an erased participant)."""


class PhaseClosed(UserError):
    """The contribution belongs to a phase that is not open now (a stale button, a late reply)."""


class DefinitionError(Exception):
    """A consultation definition, CSV or config file is invalid: one line naming file and field."""

    def __init__(self, source: str, field: str | None, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")
