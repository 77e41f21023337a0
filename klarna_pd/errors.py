"""The errors klarna_pd raises on purpose: one family, and no HTTP in it.

Every message says what was expected and what arrived. Only :mod:`klarna_pd.serving` turns these
into HTTP statuses; nothing below it knows what a status is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class KlarnaPDError(Exception):
    """Base class of every error klarna_pd raises for a reason it can explain."""


class SpecError(KlarnaPDError, ValueError):
    """A dataset spec that cannot be used."""


class DataError(KlarnaPDError, ValueError):
    """A data file that cannot be used, with where and why."""

    def __init__(
        self,
        reason: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column
        where = [p for p in (self.path, f"line {line}" if line else None) if p]
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


@dataclass(frozen=True)
class Problem:
    """One value (or record) that does not fit: where, and what was expected and what arrived."""

    loc: str
    """``applicants[3].age``, ``[2]``, or a field name."""
    msg: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.msg}" if self.loc else self.msg


class InputError(KlarnaPDError, ValueError):
    """Records (applicants) that do not fit the spec.

    Args:
        problems: every problem found, in order; the message names the first.
    """

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")

    @property
    def message(self) -> str:
        return str(self)


class ModelError(KlarnaPDError):
    """A model that cannot be used: missing, altered or unsigned files, or files that do not fit together."""


class SparkStartError(KlarnaPDError):
    """Spark could not start (no Java, a master that cannot be reached), with the reason."""


class RemoteError(KlarnaPDError):
    """A model transfer (S3 push or pull) that could not be done, with the reason."""
