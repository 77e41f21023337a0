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


RESPELLED, UNKNOWN = "respelled", "unknown"


def _rank(item: tuple[str, int]) -> tuple[int, str]:
    # Most rows first, ties by name: the same lines whatever order the chunks came in.
    return -item[1], item[0]


def _ranked(levels: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(levels.items(), key=_rank)


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _quoted(pairs: Iterable[tuple[str, int]], sep: str = ", ") -> str:
    return sep.join(f"{level!r} ({n:,})" for level, n in pairs)


def spelling(level: str) -> str:
    """What two spellings of one level share: case and surrounding white space dropped."""
    return level.strip().casefold()


def spelled_apart(counts: Mapping[str, int]) -> list[list[tuple[str, int]]]:
    """Groups of levels (with their counts, most frequent first) that differ only in case or
    surrounding white space: one category the data spells several ways."""
    groups: dict[str, dict[str, int]] = {}
    for level, n in counts.items():
        groups.setdefault(spelling(level), {})[level] = n
    return [_ranked(g) for g in groups.values() if len(g) > 1]


def spelled_apart_in(batch: Batch) -> list[str]:
    """One line per categorical feature of ``batch`` (training rows) whose levels differ only in
    case or surrounding spaces: the encoder codes them apart, each with its own (or the rare) PD."""
    lines = []
    for name in batch.spec.text_names:
        counts = Counter(v for v in batch.texts[name] if v is not None)
        groups = spelled_apart(counts)
        if groups:
            shown = "; ".join(_quoted(g, " / ") for g in groups[:SHOWN])
            more = f"; and {len(groups) - SHOWN:,} more" if len(groups) > SHOWN else ""
            lines.append(f"{name}: levels that differ only in case or surrounding spaces are learned as "
                         f"different levels: {shown}{more}")
    return lines


def _add(state: dict, name: str, kind: str, rows: int, levels: Mapping[str, int],
         trimmed: bool = False) -> None:
    """Add ``rows`` (``levels`` by name) of one kind to ``state``; past :data:`MAX_NAMED` names only
    the most frequent stay named (the rows are always counted)."""
    per = state.setdefault(name, {}).setdefault(kind, {"rows": 0, "levels": {}, "trimmed": False})
    per["rows"] += rows
    named = per["levels"]
    for level, n in levels.items():
        named[level] = named.get(level, 0) + n
    if len(named) > MAX_NAMED:
        per["levels"] = dict(_ranked(named)[:MAX_NAMED])
        trimmed = True
    per["trimmed"] = per["trimmed"] or trimmed


def merged_state(into: dict, other: Mapping) -> dict:
    """``other``'s counts (:meth:`UncodedLevels.state`) added to ``into``, which is returned.
    Beyond :data:`MAX_NAMED` levels, which ones stay named depends on the order of the merges."""
    for name, kinds in other.items():
        for kind, per in kinds.items():
            _add(into, name, kind, per["rows"], per["levels"], per["trimmed"])
    return into


class UncodedLevels:
    """A run's tally of categorical values that ``encoder`` codes as "other".

    Call :meth:`add` with each scored batch and its encoded matrix, then read :meth:`respelled`
    (warnings: levels the model knows under another spelling) and :meth:`unknown` (information:
    levels it has no code for at all). Rows are counted exactly; levels are named up to
    :data:`MAX_NAMED` per feature and kind.
    """

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.counts: dict[str, dict[str, dict]] = {}
        # The encoder lists levels most frequent first: a spelling shared by two known levels (the
        # data's own fault, see spelled_apart_in) is shown as the more frequent one.
        self._known = {name: {spelling(level): level for level in reversed(levels)}
                       for name, levels in encoder.levels_.items()}

    def add(self, batch: Batch, matrix: np.ndarray) -> None:
        """Count the rows of ``batch`` (``matrix`` is its ``encoder.encode``) coded "other"."""
        for name, values in self.encoder.uncoded(batch, matrix).items():
            known = self._known.get(name, {})
            split: dict[str, Counter[str]] = {RESPELLED: Counter(), UNKNOWN: Counter()}
            for level, n in Counter(values).items():
                split[RESPELLED if spelling(level) in known else UNKNOWN][level] = n
            for kind, levels in split.items():
                if levels:
                    _add(self.counts, name, kind, sum(levels.values()), levels)

    def state(self) -> dict[str, dict[str, dict]]:
        """The counts as plain data, for another process to :meth:`merge` (Spark's executors send
        theirs to the driver)."""
        return self.counts

    def merge(self, state: Mapping) -> None:
        """Add counts made elsewhere (:meth:`state`)."""
        merged_state(self.counts, state)

    def rows(self, name: str, kind: str | None = None) -> int:
        """Rows of feature ``name`` coded "other" (of one kind, or both)."""
        kinds = self.counts.get(name, {})
        return sum(per["rows"] for k, per in kinds.items() if kind in (None, k))

    def _named(self, name: str, kind: str) -> tuple[int, list[tuple[str, int]], bool]:
        per = self.counts.get(name, {}).get(kind)
        if per is None:
            return 0, [], False
        return per["rows"], _ranked(per["levels"]), per["trimmed"]

    @staticmethod
    def _more(named: list, trimmed: bool) -> str:
        if trimmed:
            return f" and more (over {MAX_NAMED:,} distinct levels; the rarest not named)"
        return f" and {len(named) - SHOWN:,} more" if len(named) > SHOWN else ""

    def respelled(self) -> list[str]:
        """One line per feature whose rows hold a known level spelled otherwise: scored as its
        "other" level, almost always a fault in the data."""
        lines = []
        for name in sorted(self.counts):
            rows, named, trimmed = self._named(name, RESPELLED)
            if rows:
                known = self._known.get(name, {})
                shown = ", ".join(f"{level!r} ({n:,}, known as {known[spelling(level)]!r})"
                                  for level, n in named[:SHOWN])
                lines.append(f"{name}: {_rows(rows)} with a level the model knows under another spelling "
                             f"(case or surrounding spaces), scored as its 'other' level: "
                             f"{shown}{self._more(named, trimmed)}")
        return lines

    def unknown(self) -> list[str]:
        """One line per feature whose rows hold levels the model has no code for."""
        lines = []
        for name in sorted(self.counts):
            rows, named, trimmed = self._named(name, UNKNOWN)
            if rows:
                rare = self.encoder.min_level_count
                lines.append(f"{name}: {_rows(rows)} with a level unseen in training or rarer than {rare:,} "
                             f"rows there, scored as its 'other' level: "
                             f"{_quoted(named[:SHOWN])}{self._more(named, trimmed)}")
        return lines

    def to_dict(self) -> dict[str, dict]:
        """Per feature and kind (respelled, unknown): rows coded "other", and the ten most frequent
        levels by name (for metrics.json)."""
        return {name: {kind: {"rows": per["rows"], "levels": dict(_ranked(per["levels"])[:10])}
                       for kind, per in sorted(kinds.items())}
                for name, kinds in sorted(self.counts.items())}
