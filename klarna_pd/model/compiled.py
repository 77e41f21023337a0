"""The booster's trees compiled to machine code (lleaves, LLVM), bit for bit LightGBM's margins.

LightGBM walks its trees as data, and that walk is most of the CPU time of large JSON and Arrow
requests and of batch scoring; lleaves compiles the same text model into one function, 11 times
LightGBM's rows per second on the stand-in's model (benchmarks/results/batch.md).

Same bits, not just close: lleaves adds the trees of a block into a partial sum and the blocks into
the margin, so with blocks of fewer trees than the model (its default is 34) the margin rounds
differently from LightGBM's, which adds tree by tree; one block holding every tree adds in
LightGBM's order. The skew contract (the same PD on every path, to the last bit) rests on that, so
:func:`compile_booster` checks it on every model it compiles, on rows that take every branch of
every tree (:func:`parity_probe`); a single differing bit and LightGBM scores (logged).

In the server's requirements (``requirements-serve.txt``; the ``compiled`` extra of the package)
and imported only when asked for (``PDModel.compile_trees``). The compiled function is called
through lleaves' entry point (``Model._c_entry_func``, a private name of the pinned version) rather
than its ``predict``, which leaves garbage per call (:class:`CompiledTrees`); the check above runs
through that call, so a lleaves that changed it fails the check and LightGBM scores.
Contributions (reason codes) stay LightGBM's TreeSHAP. Nothing compiled is cached on disk: machine
code is never read back from a file a bucket or another process could have written.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor

import lightgbm as lgb
import numpy as np

log = logging.getLogger(__name__)

#: Rows of the parity probe, and its seed (the same probe for the same model, every load).
PROBE_ROWS = 2_048
PROBE_SEED = 20261130


#: The compiled forest's entry point, lleaves' signature (rows in, margins out, first and end row)
#: with the arrays passed as plain addresses.
_ENTRY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32)


class CompiledTrees:
    """Raw margins of encoded rows from the compiled forest (float64, LightGBM's order of sums)."""

    def __init__(self, model) -> None:
        self._model = model  # holds the LLVM engine, and so the machine code, alive
        self._n_features = model.num_feature()
        # lleaves' own predict makes its two pointers per call with ndarray.ctypes.data_as: ctypes
        # objects in reference cycles (CPython bpo-12836) that only the garbage collector frees;
        # under steady traffic they piled up into 60-110 ms collections of the worker (see
        # single_row). The same function called with plain addresses leaves nothing behind.
        self._entry = _ENTRY(ctypes.cast(model._c_entry_func, ctypes.c_void_p).value)

    def margin(self, matrix: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
        """The raw margin of each encoded row; up to ``num_threads`` threads, one per 10,000 rows
        (the compiled function runs without the GIL)."""
        if len(matrix) == 0:
            return np.empty(0)
        if matrix.ndim != 2 or matrix.shape[1] != self._n_features:
            raise ValueError(f"expected rows of {self._n_features} features, got an array of shape "
                             f"{matrix.shape}")
        rows = np.ascontiguousarray(matrix, dtype=np.float64)
        n = len(rows)
        if n >= 2**31 - 1:  # the entry point counts rows in 32 bits
            raise ValueError(f"at most {2**31 - 2:,} rows per call, got {n:,}")
        out = np.empty(n, dtype=np.float64)
        data, margins = rows.ctypes.data, out.ctypes.data
        jobs = max(1, min(num_threads, n // 10_000))
        if jobs == 1:
            self._entry(data, margins, 0, n)
        else:
            step = math.ceil(n / jobs)
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(lambda first: self._entry(data, margins, first, min(first + step, n)),
                              range(0, n, step)))
        return out


def available() -> bool:
    """Whether lleaves can be imported here."""
    try:
        import lleaves  # noqa: F401
    except ImportError:
        return False
    return True


def compile_booster(booster: lgb.Booster, *, block: int | None = None) -> CompiledTrees | None:
    """The booster compiled, or None (logged) when lleaves is missing, fails, or differs by one bit.

    Args:
        booster: a binary LightGBM booster.
        block: trees per block (default: all of them; see the module's docstring).

    Raises nothing: LightGBM stays the scorer whenever compiling is not possible.
    """
    try:
        import lleaves
    except ImportError:
        log.warning("compiled trees asked for, but lleaves is not installed (requirements-serve.txt): "
                    "scoring with LightGBM")
        return None
    trees = booster.num_trees()
    fd, path = tempfile.mkstemp(prefix="klarna-pd-booster-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(booster.model_to_string())
        model = lleaves.Model(model_file=path)
        model.compile(raw_score=True, fblocksize=block or max(trees, 1))
        compiled = CompiledTrees(model)
        probe = parity_probe(booster)
        expected = booster.predict(probe, raw_score=True, num_threads=1)
        got = compiled.margin(probe)
    except Exception as exc:  # LLVM, lleaves' parser, the check: never fatal, LightGBM still scores
        log.warning("could not compile the booster's %d trees (%s: %s): scoring with LightGBM",
                    trees, type(exc).__name__, exc)
        return None
    finally:
        os.unlink(path)
    differ = int(np.count_nonzero(expected.view(np.int64) != got.view(np.int64)))
    if differ:
        log.warning("the compiled trees differ from LightGBM on %d of %d probe rows (largest gap %.3g): "
                    "scoring with LightGBM", differ, len(probe), float(np.max(np.abs(expected - got))))
        return None
    return compiled


def parity_probe(booster: lgb.Booster, random_rows: int = PROBE_ROWS, seed: int = PROBE_SEED) -> np.ndarray:
    """Rows that take every branch of every tree of ``booster``, and random rows besides.

    For each split: a row that follows the path down to it and goes left there, one that goes
    right, and one with the split's feature missing (NaN), so every leaf is reached. The other
    features, and the random rows, take each feature's candidate values: every threshold and the
    floats either side of it, 0 and +-1e-36 (LightGBM counts |x| <= 1e-35 as zero), NaN, and for
    categorical features every category named, the first codes past the largest one and past its
    32-bit word, and -1 (missing).
    """
    n_features = booster.num_feature()
    roots = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    candidates: list[set[float]] = [{0.0, 1e-36, -1e-36} for _ in range(n_features)]
    categorical = [False] * n_features
    # One walk, depth first, carrying what the path so far asks of each feature: per row to make,
    # the path it follows (feature -> rule) and the feature it leaves missing, if any.
    asks: list[tuple[dict, int | None]] = []
    # dump_model's JSON writes an infinite threshold as 1e300 (a split only a missing value passes
    # to the right); the text model has the thresholds as they are.
    work = [(root, {}, exact) for root, exact in zip(roots, _thresholds(booster.model_to_string()))]
    while work:
        node, path, exact = work.pop()
        if "split_feature" not in node:
            continue
        j = node["split_feature"]
        if node["decision_type"] == "==":
            categorical[j] = True
            candidates[j].update(_categories(node))
        else:
            node["threshold"] = t = exact[node["split_index"]]
            candidates[j].update((t, float(np.nextafter(t, np.inf)), float(np.nextafter(t, -np.inf))))
        for child, side in ((node["left_child"], "left"), (node["right_child"], "right")):
            down = {**path, j: _narrow(path.get(j), node, side)}
            asks.append((down, None))
            work.append((child, down, exact))
        asks.append((path, j))  # ... and that feature missing
    for j in range(n_features):
        if categorical[j]:
            top = max(candidates[j])
            candidates[j].update((top + 1.0, 32.0 * (top // 32 + 1), -1.0))
    rng = np.random.default_rng(seed)
    n = random_rows + len(asks)
    rows = np.column_stack([np.array(sorted(c))[rng.integers(len(c), size=n)] for c in candidates])
    rows[rng.random(rows.shape) < 0.1] = np.nan  # missing often, whatever the number of candidates
    for i, (path, missing) in enumerate(asks, start=random_rows):
        _on_path(rows[i], path)
        if missing is not None:
            rows[i, missing] = np.nan
    return rows


def _thresholds(text: str) -> list[list[float]]:
    """Each tree's ``threshold=`` line of a text model, parsed."""
    return [[float(v) for v in line[len("threshold="):].split(" ")] if line else []
            for line in (next((ln for ln in block.split("\n") if ln.startswith("threshold=")), "")
                         for block in text.split("\nTree=")[1:])]


def _categories(node: dict) -> list[float]:
    return [float(c) for c in str(node["threshold"]).split("||")]


def _narrow(rule: tuple | None, node: dict, side: str) -> tuple:
    """A feature's rule on the path, narrowed by one more split: ("num", low, high) for
    low < x <= high, ("cat", allowed or None, refused) for category codes."""
    if node["decision_type"] == "==":
        _, allowed, refused = rule or ("cat", None, frozenset())
        named = frozenset(_categories(node))
        if side == "left":
            return "cat", named if allowed is None else allowed & named, refused
        return "cat", allowed, refused | named
    _, low, high = rule or ("num", -np.inf, np.inf)
    t = float(node["threshold"])
    return ("num", low, min(high, t)) if side == "left" else ("num", max(low, t), high)


def _on_path(row: np.ndarray, path: dict) -> None:
    for j, rule in path.items():
        if rule[0] == "cat":
            _, allowed, refused = rule
            options = sorted(allowed - refused) if allowed is not None else \
                [c for c in range(int(max(refused, default=0)) + 2) if c not in refused]
            row[j] = options[0] if options else row[j]
        else:
            _, low, high = rule
            if low == np.inf:
                row[j] = np.nan  # right of an infinite threshold: only a missing value goes there
            elif np.isfinite(high):
                row[j] = high  # on the threshold: where "<=" and "<" would part
            elif np.isfinite(low):
                row[j] = np.nextafter(low, np.inf)
