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
_FORMULA = re.compile(r"^[=+\-@]", re.M)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_CONTROL_OR_LF = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def formula_like(text: str) -> bool:
    """Whether a spreadsheet would take a cell holding ``text`` for a formula (or a tab/CR start)."""
    return text[:1] in FORMULA_START or text[:1] in ("\t", "\r")


def id_refusal(ident: str) -> str | None:
    """Why an id cannot be written (None if it can)."""
    if ident[:1] in FORMULA_START:
        return (f"ids starting with {ident[0]!r} are refused: a spreadsheet opening the output would run "
                f"{kinds.shown(ident)} as a formula")
    if _CONTROL_OR_LF.search(ident):
        return f"ids with a control character (tab, line break, ...) are refused, got {kinds.shown(ident)}"
    return None


def unsafe_ids(ids: np.ndarray) -> list[int]:
    """Positions of ids :func:`id_refusal` refuses."""
    if not len(ids):
        return []
    joined = "\n".join(ids.tolist())
    # One pass over the joined ids finds nothing in a clean chunk; only then look id by id.
    if (_FORMULA.search(joined) is None and _CONTROL.search(joined) is None
            and joined.count("\n") == len(ids) - 1):
        return []
    return [i for i, ident in enumerate(ids.tolist()) if id_refusal(ident) is not None]


class IdLedger:
    """The ids already scored in a run, as 64-bit hashes (16 bytes a row, with the line).

    Sorted runs merged as they grow (a log-structured merge), so that adding n ids costs
    O(n log n) in all and a look-up one binary search per run. Two different ids share a hash with
    probability about n^2 / 2^65 (3e-6 for 10 million rows); within one chunk ids are compared
    exactly.
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def first_lines(self, hashes: np.ndarray) -> np.ndarray:
        """For each hash, the line of the earlier id with it, or -1."""
        out = np.full(len(hashes), -1, dtype=np.int64)
        for keys, lines in self._runs:
            at = np.searchsorted(keys, hashes)
            at[at == len(keys)] = 0
            hit = (keys[at] == hashes) & (out < 0)
            out[hit] = lines[at[hit]]
        return out

    def add(self, hashes: np.ndarray, lines: np.ndarray) -> None:
        order = np.argsort(hashes, kind="stable")
        self._runs.append((hashes[order], lines[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 2 * len(self._runs[-1][0]):
            (k1, l1), (k2, l2) = self._runs.pop(-2), self._runs.pop()
            keys, lines_ = np.concatenate((k1, k2)), np.concatenate((l1, l2))
            order = np.argsort(keys, kind="stable")
            self._runs.append((keys[order], lines_[order]))


def _hashes(ids: np.ndarray) -> np.ndarray:
    return np.fromiter(map(hash, ids.tolist()), dtype=np.int64, count=len(ids))


def duplicate_reason(ident: str, first_line: int) -> str:
    where = f"first scored on line {first_line}" if first_line > 0 else "scored earlier in the file"
    return f"duplicate id {kinds.shown(ident)}, {where}; each id is scored once"


def screen_ids(ids: np.ndarray, lines: np.ndarray, ledger: IdLedger | None, id_name: str) -> tuple[np.ndarray, list[RowProblem]]:
    """Which rows keep their id: not refused, not already scored. Records the kept ones in ``ledger``.

    Args:
        ids: the ids of rows that passed the value checks, in file order.
        lines: each row's line (0 where unknown, as on Spark).
        ledger: the ids scored so far in this run (None: do not look for duplicates).
        id_name: the id column's name, for the problems.

    Returns:
        A mask of the rows to score, and the problems of the others in line order.
    """
    problems: dict[int, RowProblem] = {}
    for i in unsafe_ids(ids):
        problems[i] = RowProblem(int(lines[i]), id_name, id_refusal(ids[i]), ids[i])
    keep = np.ones(len(ids), dtype=bool)
    if ledger is not None and len(ids):
        hashes = _hashes(ids)
        earlier = ledger.first_lines(hashes)
        for i in np.flatnonzero(earlier >= 0):
            problems.setdefault(int(i), RowProblem(int(lines[i]), id_name, duplicate_reason(ids[i], int(earlier[i])), ids[i]))
        order = np.argsort(hashes, kind="stable")
        same = np.flatnonzero(hashes[order][1:] == hashes[order][:-1])
        if len(same):
            first_of: dict[str, int] = {}
            for i in sorted(set(order[same].tolist()) | set(order[same + 1].tolist())):
                if i in problems:
                    continue
                j = first_of.setdefault(ids[i], i)
                if j != i:
                    problems[i] = RowProblem(int(lines[i]), id_name, duplicate_reason(ids[i], int(lines[j])), ids[i])
        keep[list(problems)] = False
        ledger.add(hashes[keep], np.asarray(lines)[keep])
    else:
        keep[list(problems)] = False
    return keep, [problems[i] for i in sorted(problems)]


def screen(batch: Batch, lines: np.ndarray, ledger: IdLedger | None, id_name: str) -> tuple[Batch, np.ndarray, list[RowProblem]]:
    """:func:`screen_ids` on a batch: the rows to score, their lines, and the problems of the others."""
    if batch.ids is None or not len(batch):
        return batch, lines, []
    keep, problems = screen_ids(batch.ids, lines, ledger, id_name)
    if not problems:
        return batch, lines, []
    return batch.take(keep), lines[keep], problems
