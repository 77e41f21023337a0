"""Category levels the model has no code of its own for, counted over a run and described.

The encoder scores such a level as its "other" code, as it scored the rare levels of training
(:mod:`.encoder`): right for a merchant category that is new, wrong for ``'books '`` or ``'BOOKS'``
when training saw ``'Books'``: the same category, spelled otherwise, silently gets another PD.
Batch scoring and training count these levels per feature and name those that differ from a level
the model knows only in case or surrounding spaces (the server counts them in its
``klarna_pd_unknown_levels_total`` metric).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

from ..data.batch import Batch
from .encoder import Encoder

#: Distinct levels counted by name per feature; past it only the row count grows (a column of
#: free text must not make the tally as large as the file).
MAX_NAMED = 1_000
#: Levels named per feature in a description.
SHOWN = 3


def spelling(level: str) -> str:
    """What two spellings of one level share: case and surrounding white space dropped."""
    return level.strip().casefold()


def spelled_apart(counts: Mapping[str, int]) -> list[list[tuple[str, int]]]:
    """Groups of levels (with their counts, most frequent first) that differ only in case or
    surrounding white space: one category the data spells several ways."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for level, n in counts.items():
        groups.setdefault(spelling(level), []).append((level, n))
    return [sorted(g, key=lambda kv: (-kv[1], kv[0])) for g in groups.values() if len(g) > 1]


def spelled_apart_in(batch: Batch) -> list[str]:
    """One line per categorical feature of ``batch`` (training rows) whose levels differ only in
    case or surrounding spaces: the encoder codes them apart, each with its own (or the rare) PD."""
    lines = []
    for name in batch.spec.text_names:
        counts = Counter(v for v in batch.texts[name] if v is not None)
        groups = spelled_apart(counts)
        if groups:
            shown = "; ".join(" / ".join(f"{level!r} ({n:,})" for level, n in g) for g in groups[:SHOWN])
            more = f"; and {len(groups) - SHOWN:,} more" if len(groups) > SHOWN else ""
            lines.append(f"{name}: levels that differ only in case or surrounding spaces are learned as "
                         f"different levels: {shown}{more}")
    return lines


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _quoted(pairs: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{level!r} ({n:,})" for level, n in pairs)


def merged_state(a: Mapping, b: Mapping) -> dict[str, tuple[int, dict[str, int]]]:
    """Two :meth:`UncodedLevels.state` counts as one (the cap on named levels applies in
    :meth:`UncodedLevels.merge`)."""
    out = {name: (rows, dict(levels)) for name, (rows, levels) in a.items()}
    for name, (rows, levels) in b.items():
        total, named = out.get(name, (0, {}))
        for level, n in levels.items():
            named[level] = named.get(level, 0) + n
        out[name] = (total + rows, named)
    return out


class UncodedLevels:
    """A run's tally of categorical values that ``encoder`` codes as "other".

    Call :meth:`add` with each scored batch and its encoded matrix, then read :meth:`respelled`
    (warnings: levels the model knows under another spelling) and :meth:`unknown` (information:
    levels it has no code for at all).
    """

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.rows: Counter[str] = Counter()
        self.levels: dict[str, Counter[str]] = {}
        # The encoder lists levels most frequent first: a spelling shared by two known levels (the
        # data's own fault, see spelled_apart_in) is shown as the more frequent one.
        self._known = {name: {spelling(level): level for level in reversed(levels)}
                       for name, levels in encoder.levels_.items()}

    def add(self, batch: Batch, matrix: np.ndarray) -> None:
        """Count the rows of ``batch`` (``matrix`` is its ``encoder.encode``) coded "other"."""
        for name, values in self.encoder.uncoded(batch, matrix).items():
            self._count(name, len(values), Counter(values))

    def _count(self, name: str, rows: int, levels: Mapping[str, int]) -> None:
        self.rows[name] += rows
        named = self.levels.setdefault(name, Counter())
        for level, n in levels.items():
            if level in named or len(named) < MAX_NAMED:
                named[level] += n

    def state(self) -> dict[str, tuple[int, dict[str, int]]]:
        """The counts as plain data (per feature: rows, levels by name), for another process to
        :meth:`merge` (Spark's executors send theirs to the driver)."""
        return {name: (self.rows[name], dict(self.levels[name])) for name in self.rows}

    def merge(self, state: Mapping[str, tuple[int, Mapping[str, int]]]) -> None:
        """Add counts made elsewhere (:meth:`state`)."""
        for name, (rows, levels) in state.items():
            self._count(name, rows, levels)

    def _split(self, name: str) -> tuple[list[tuple[str, int, str]], list[tuple[str, int]]]:
        known = self._known.get(name, {})
        respelled, unknown = [], []
        for level, n in self._ranked(name):
            match = known.get(spelling(level))
            if match is not None:
                respelled.append((level, n, match))
            else:
                unknown.append((level, n))
        return respelled, unknown

    def respelled(self) -> list[str]:
        """One line per feature whose rows hold a known level spelled otherwise: scored as unseen,
        almost always a fault in the data."""
        lines = []
        for name in sorted(self.rows):
            respelled, _ = self._split(name)
            if respelled:
                rows = sum(n for _, n, _ in respelled)
                shown = ", ".join(f"{level!r} ({n:,}, known as {match!r})"
                                  for level, n, match in respelled[:SHOWN])
                more = f" and {len(respelled) - SHOWN:,} more" if len(respelled) > SHOWN else ""
                lines.append(f"{name}: {_rows(rows)} with a level the model knows under another spelling "
                             f"(case or surrounding spaces), scored as an unseen level: {shown}{more}")
        return lines

    def unknown(self) -> list[str]:
        """One line per feature whose rows hold levels the model has no code for."""
        lines = []
        for name in sorted(self.rows):
            respelled, unknown = self._split(name)
            rows = self.rows[name] - sum(n for _, n, _ in respelled)
            if rows > 0:
                if unknown:
                    more = f" and {len(unknown) - SHOWN:,} more" if len(unknown) > SHOWN else ""
                    named = f"{_quoted(unknown[:SHOWN])}{more}"
                else:  # every named slot went to other levels
                    named = f"levels past the first {MAX_NAMED:,} distinct ones, not named"
                rare = self.encoder.min_level_count
                lines.append(f"{name}: {_rows(rows)} with a level unseen in training or rarer than {rare:,} "
                             f"rows there, scored as its 'other' level: {named}")
        return lines

    def to_dict(self) -> dict[str, dict]:
        """Per feature: rows coded "other", and the most frequent levels by name (for metrics.json)."""
        return {name: {"rows": self.rows[name], "levels": dict(self._ranked(name)[:10])} for name in sorted(self.rows)}

    def _ranked(self, name: str) -> list[tuple[str, int]]:
        # Most rows first, ties by name: the same lines whatever order the chunks came in.
        return sorted(self.levels.get(name, Counter()).items(), key=lambda kv: (-kv[1], kv[0]))
