"""The encoder: typed rows in, LightGBM's float matrix out.

Number features (numeric, ordinal, boolean) pass through as floats (NaN = missing). A categorical
feature is coded by the levels learned in :meth:`Encoder.fit`:

- each level seen at least ``min_level_count`` times in training gets its own code 0..K-1,
  most frequent first;
- rarer levels and levels never seen in training share the code K ("other"), so an unknown
  merchant category at serving time scores like the rare ones did in training, never crashes;
- missing stays NaN, which LightGBM routes down its learned missing-value branch.

:meth:`Encoder.encode` is the only place that turns rows into model input, for training, the
service, batch scoring and Spark alike; it takes a :class:`~klarna_pd.data.batch.Batch`, which
every reader produces. The encoder is saved as JSON (no pickles).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..data.batch import Batch
from ..spec import DatasetSpec

FORMAT_VERSION = 1


class Encoder:
    """Maps typed rows to a float matrix with a fixed column order (the spec's feature order).

    Args:
        spec: the dataset spec.
        min_level_count: a categorical level needs this many training rows for its own code.
    """

    def __init__(self, *, spec: DatasetSpec, min_level_count: int = 20) -> None:
        self.spec = spec
        self.min_level_count = min_level_count

    # -- learning -----------------------------------------------------------------------------

    def fit(self, batch: Batch) -> Encoder:
        """Learn the categorical levels from training rows."""
        if self.min_level_count < 1:
            raise ValueError(f"min_level_count must be at least 1, got {self.min_level_count}")
        levels: dict[str, list[str]] = {}
        for name in self.spec.text_names:
            counts = Counter(v for v in batch.texts[name] if v is not None)
            kept = [(level, n) for level, n in counts.items() if n >= self.min_level_count]
            # Most frequent first; ties by name so that the codes do not depend on row order.
            levels[name] = [level for level, _ in sorted(kept, key=lambda kv: (-kv[1], kv[0]))]
        self.levels_ = levels
        self._build_lookup()
        return self

    def _build_lookup(self) -> None:
        spec = self.spec
        self.feature_names_ = spec.feature_names
        self.codes_ = {name: {lvl: float(i) for i, lvl in enumerate(lv)} for name, lv in self.levels_.items()}
        self.other_code_ = {name: float(len(lv)) for name, lv in self.levels_.items()}
        position = {name: j for j, name in enumerate(spec.feature_names)}
        self._number_columns = np.array([position[n] for n in spec.number_names], dtype=np.intp)
        self._text_plan = [(position[n], n, self.codes_[n], self.other_code_[n]) for n in spec.text_names]
        self.categorical_indices_ = [j for j, *_ in self._text_plan]

    @property
    def n_features(self) -> int:
        return len(self.feature_names_)

    # -- encoding -----------------------------------------------------------------------------

    def encode(self, batch: Batch) -> np.ndarray:
        """The model matrix of typed rows: float64, shape (rows, features), C order."""
        out = np.empty((len(batch), self.n_features), dtype=np.float64)
        out[:, self._number_columns] = batch.numbers
        nan = math.nan
        for j, name, codes, other in self._text_plan:
            lookup = codes.get
            out[:, j] = [nan if v is None else lookup(v, other) for v in batch.texts[name]]
        return out

    def uncoded(self, batch: Batch, matrix: np.ndarray) -> dict[str, list[str]]:
        """Per categorical feature, the values of ``batch`` coded "other" (unseen in training or
        rare there), in row order; ``matrix`` is :meth:`encode` of ``batch``. Features without
        such a value are left out. Only those rows are looked at again."""
        out = {}
        for j, name, _, other in self._text_plan:
            rows = np.flatnonzero(matrix[:, j] == other)
            if len(rows):
                out[name] = batch.texts[name][rows].tolist()
        return out

    def decode(self, j: int, value: float) -> Any:
        """The input value behind matrix column ``j``'s ``value`` (a level name for categoricals)."""
        if math.isnan(value):
            return None
        name = self.feature_names_[j]
        if name in self.levels_:
            levels = self.levels_[name]
            return levels[int(value)] if int(value) < len(levels) else "<other>"
        return float(value)

    # -- persistence ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "min_level_count": self.min_level_count,
            "feature_names": self.feature_names_,
            "categorical_levels": self.levels_,
            "unknown_level": "code len(levels): rare and unseen levels share it",
            "missing_value": "NaN",
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], spec: DatasetSpec) -> Encoder:
        """Rebuild a fitted encoder; checks that it was fitted for ``spec``."""
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"encoder format_version must be {FORMAT_VERSION}, got {raw.get('format_version')!r}")
        names = list(raw.get("feature_names", []))
        if names != spec.feature_names:
            raise ValueError("encoder was fitted for other features than the spec names")
        levels = raw.get("categorical_levels")
        if not isinstance(levels, dict) or sorted(levels) != sorted(spec.text_names):
            raise ValueError("encoder categorical_levels do not match the spec's categorical features")
        for name, lv in levels.items():
            if not isinstance(lv, list) or not all(isinstance(x, str) for x in lv) or len(set(lv)) != len(lv):
                raise ValueError(f"encoder levels of {name!r} must be a list of distinct strings")
        enc = cls(spec=spec, min_level_count=int(raw.get("min_level_count", 1)))
        enc.levels_ = {k: list(v) for k, v in levels.items()}
        enc._build_lookup()
        return enc
