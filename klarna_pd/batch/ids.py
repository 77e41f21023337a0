"""The ids batch scoring writes: exact, unique, and never a spreadsheet formula.

Policy (README, "Batch scoring"), the same on both engines:

- An id is written exactly as it was read, in CSV and Parquet alike, so that scores join back to
  their rows. CSV quotes an id only when it must (it holds the separator or a quote).
- An id that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-`` or ``@``:
  OWASP's "CSV injection" list) or that holds a control character (tab, line break, ...) is
  refused: the row is rejected with that reason. Rewriting it (OWASP's ``'`` prefix) would make
  the CSV's id differ from the input's and from the Parquet output's, and the score would silently
  fail to join; refusing keeps every written id exact and every output file safe to open.
- The first scored row of an id keeps it; a later row with the same id is rejected, naming the
  line of the first, so each id has one score (training refuses duplicate ids outright).
"""

from __future__ import annotations

import re

import numpy as np

from ..data import kinds
from ..data.batch import Batch, RowProblem

FORMULA_START = ("=", "+", "-", "@")
_FORMULA_SET = frozenset(FORMULA_START)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def formula_like(text: str) -> bool:
    """Whether a spreadsheet would take a cell holding ``text`` for a formula (or a tab/CR start)."""
    return text[:1] in FORMULA_START or text[:1] in ("\t", "\r")


def id_refusal(ident: str) -> str | None:
    """Why an id cannot be written (None if it can)."""
    if ident[:1] in FORMULA_START:
        return (f"ids starting with {ident[0]!r} are refused: a spreadsheet opening the output would run "
                f"{kinds.shown(ident)} as a formula")
    if _CONTROL.search(ident):
        return f"ids with a control character (tab, line break, ...) are refused, got {kinds.shown(ident)}"
    return None


def unsafe_ids(ids: np.ndarray) -> list[int]:
    """Positions of ids :func:`id_refusal` refuses."""
    if not len(ids):
        return []
    values = ids.tolist()
    # Whole-chunk tests first (a clean chunk passes both at C speed), then id by id. isprintable is
    # stricter than "no control character" (it also fails on e.g. a no-break space): only a hint.
    if "".join(values).isprintable() and not _FORMULA_SET.intersection({v[:1] for v in values}):
        return []
    return [i for i, ident in enumerate(values) if id_refusal(ident) is not None]


class IdLedger:
    """The ids already scored in a run, as 64-bit hashes (16 bytes a row, with the line).

    Sorted runs merged as they grow (a log-structured merge), so that adding n ids costs
    O(n log n) in all and a look-up one binary search per run. Two different ids share a hash with
    probability about n^2 / 2^65 (3e-6 for 10 million rows); within one chunk ids are compared
    exactly.
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """For each of the sorted hashes ``keys``, the line of an earlier id with it, or -1."""
        found = np.full(len(keys), -1, dtype=np.int64)
        for run, lines in self._runs:
            at = np.searchsorted(run, keys)  # sorted look-ups walk the run in order: few cache misses
            at[at == len(run)] = 0
            hit = (run[at] == keys) & (found < 0)
            found[hit] = lines[at[hit]]
        return found

    def add(self, keys: np.ndarray, lines: np.ndarray) -> None:
        """Record sorted hashes ``keys`` and their lines."""
        self._runs.append((keys, lines))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (k1, l1), (k2, l2) = self._runs.pop(-2), self._runs.pop()
            # Merge two sorted runs in O(n): each key of the second goes after its equals in the first.
            at = np.searchsorted(k1, k2, side="right") + np.arange(len(k2))
            keys = np.empty(len(k1) + len(k2), dtype=k1.dtype)
            lines_ = np.empty(len(keys), dtype=l1.dtype)
            mask = np.ones(len(keys), dtype=bool)
            mask[at] = False
            keys[at], lines_[at] = k2, l2
            keys[mask], lines_[mask] = k1, l1
            self._runs.append((keys, lines_))


def _hashes(ids: np.ndarray) -> np.ndarray:
    return np.fromiter(map(hash, ids.tolist()), dtype=np.int64, count=len(ids))


def duplicate_reason(ident: str, first_line: int) -> str:
    where = f"first scored on line {first_line}" if first_line > 0 else "scored earlier in the file"
    return f"duplicate id {kinds.shown(ident)}, {where}; each id is scored once"


def screen_ids(ids: np.ndarray, lines: np.ndarray, ledger: IdLedger | None, id_name: str) -> tuple[np.ndarray, list[RowProblem]]:
    """Which rows keep their id: not refused, not already scored. Records the kept ones in ``ledger``.

    Args:
        ids: the ids of rows that passed the value checks, in file order.
        lines: each row's line (0 where unknown, as on Spark: the problems then say None).
        ledger: the ids scored so far in this run (None: do not look for duplicates).
        id_name: the id column's name, for the problems.

    Returns:
        A mask of the rows to score, and the problems of the others in line order.
    """
    problems: dict[int, RowProblem] = {}
    for i in unsafe_ids(ids):
        problems[i] = RowProblem(int(lines[i]) or None, id_name, id_refusal(ids[i]), ids[i])
    keep = np.ones(len(ids), dtype=bool)
    keep[list(problems)] = False
    if ledger is None or not len(ids):
        return keep, [problems[i] for i in sorted(problems)]
    lines = np.asarray(lines, dtype=np.int64)
    hashes = _hashes(ids)
    order = np.argsort(hashes, kind="stable")  # equal hashes stay in file order
    keys = hashes[order]
    earlier = ledger.lookup(keys)
    for k in np.flatnonzero(earlier >= 0):
        i = int(order[k])
        problems.setdefault(i, RowProblem(int(lines[i]) or None, id_name,
                                          duplicate_reason(ids[i], int(earlier[k])), ids[i]))
    same = np.flatnonzero(keys[1:] == keys[:-1])
    if len(same):
        first_of: dict[str, int] = {}
        for i in sorted(set(order[same].tolist()) | set(order[same + 1].tolist())):
            if i in problems:
                continue
            j = first_of.setdefault(ids[i], i)
            if j != i:
                problems[i] = RowProblem(int(lines[i]) or None, id_name,
                                         duplicate_reason(ids[i], int(lines[j])), ids[i])
    keep[list(problems)] = False
    scored = keep[order]
    ledger.add(keys[scored], lines[order][scored])
    return keep, [problems[i] for i in sorted(problems)]


def screen(batch: Batch, lines: np.ndarray, ledger: IdLedger | None, id_name: str) -> tuple[Batch, list[RowProblem]]:
    """:func:`screen_ids` on a batch: the rows to score and the problems of the others."""
    if batch.ids is None or not len(batch):
        return batch, []
    keep, problems = screen_ids(batch.ids, lines, ledger, id_name)
    if not problems:
        return batch, []
    return batch.take(keep), problems
