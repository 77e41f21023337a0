"""Typed rows of a spec's features: what every reader produces and the encoder takes.

A :class:`Batch` holds the number features (numeric, ordinal, boolean) as one float64 block, so that
the value checks and the encoder work on all of them at once, and each categorical feature as a
column of texts. Files, JSON records, Arrow tables and Spark partitions all become batches
(:mod:`.files`, :mod:`.records`, :mod:`.arrow`), and :meth:`klarna_pd.model.PDModel.predict` scores
batches: one path from a raw value to a PD.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..spec import DatasetSpec

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RowProblem:
    """One row that does not fit: where, which column, and what was expected and what arrived."""

    line: int | None
    """The row's line in its file (header = line 1), or its position in a request; None where
    the reader cannot know it (Spark's partitions)."""
    column: str
    reason: str
    id: str | None = None
    """The row's id, when it could be read."""

    def message(self) -> str:
        where = "" if self.line is None else f"line {self.line}, "
        return f"{where}column {self.column!r}: {self.reason}"


@dataclass(frozen=True)
class Batch:
    """Rows of typed features.

    Args:
        spec: the dataset spec.
        numbers: float64 array (rows x ``spec.number_names``); NaN is missing, booleans 1.0/0.0.
        texts: each categorical feature's values, an object array of ``str`` or ``None``.
        ids: the rows' ids (object array of ``str`` or ``None``), if known.
        target: float64 1.0 / 0.0 / NaN (rows to score), files only.
    """

    spec: DatasetSpec
    numbers: np.ndarray
    texts: dict[str, np.ndarray]
    ids: np.ndarray | None = None
    target: np.ndarray | None = field(default=None)

    def __len__(self) -> int:
        return self.numbers.shape[0]

    def take(self, index: np.ndarray | slice) -> Batch:
        """The rows at ``index`` (a boolean mask, positions or a slice)."""
        pick = (lambda a: None if a is None else a[index])
        return Batch(self.spec, self.numbers[index], {k: v[index] for k, v in self.texts.items()},
                     pick(self.ids), pick(self.target))

    def column(self, name: str) -> np.ndarray:
        """One feature's values: float64 for numbers, object for texts."""
        if name in self.texts:
            return self.texts[name]
        return self.numbers[:, self.spec.number_names.index(name)]

    @classmethod
    def concat(cls, batches: Sequence[Batch]) -> Batch:
        if not batches:
            raise ValueError("concat needs at least one batch")
        if len(batches) == 1:
            return batches[0]
        first = batches[0]
        join = (lambda parts: None if parts[0] is None else np.concatenate(parts))
        return cls(
            first.spec,
            np.concatenate([b.numbers for b in batches]),
            {k: np.concatenate([b.texts[k] for b in batches]) for k in first.texts},
            join([b.ids for b in batches]),
            join([b.target for b in batches]),
        )

    @classmethod
    def empty(cls, spec: DatasetSpec) -> Batch:
        return cls(spec, np.empty((0, len(spec.number_names))), {n: np.empty(0, dtype=object) for n in spec.text_names},
                   np.empty(0, dtype=object), np.empty(0))

    # -- pandas, for people and tests; the scoring path never needs it ------------------------

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame with the spec's columns: id, target, then features in order."""
        import pandas as pd

        spec = self.spec
        data: dict[str, Any] = {
            spec.id: self.ids if self.ids is not None else np.full(len(self), None, dtype=object),
            spec.target: self.target if self.target is not None else np.full(len(self), np.nan),
        }
        numbers = {name: self.numbers[:, j] for j, name in enumerate(spec.number_names)}
        for name in spec.feature_names:
            data[name] = self.texts[name] if name in self.texts else numbers[name]
        return pd.DataFrame(data, columns=spec.columns, copy=False)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, spec: DatasetSpec) -> Batch:
        """A frame typed as :meth:`to_frame` makes it (id and target columns optional)."""
        missing = [c for c in spec.feature_names if c not in frame.columns]
        if missing:
            raise ValueError(f"frame lacks feature columns {missing}")
        numbers = frame[spec.number_names].to_numpy(dtype=np.float64, na_value=np.nan) if spec.number_names else np.empty((len(frame), 0))
        texts = {}
        for n in spec.text_names:
            col = frame[n].to_numpy(dtype=object, copy=True)
            col[frame[n].isna().to_numpy()] = None  # pandas may hold NaN for a missing text
            texts[n] = col
        ids = frame[spec.id].to_numpy(dtype=object) if spec.id in frame.columns else None
        target = frame[spec.target].to_numpy(dtype=np.float64) if spec.target in frame.columns else None
        return cls(spec, np.ascontiguousarray(numbers), texts, ids, target)
