"""The booster's trees compiled to machine code (lleaves, LLVM), bit for bit LightGBM's margins.

LightGBM walks its trees as data: ~22 ns a tree per row here (140,000 rows/s for the 326 trees of
the stand-in's model on one core), and that walk is most of the CPU time of large JSON and Arrow
requests and of batch scoring (benchmarks/results/serve.md). lleaves compiles the same text model
into one function per forest: 1.6 million rows/s on the same rows and core.

Same bits, not just close: lleaves adds the trees of a block into a partial sum and the blocks into
the margin, so with blocks of fewer trees than the model the margin rounds differently from
LightGBM's, which adds tree by tree (93 % of the stand-in's rows differed, by up to 1.6e-14). One
block holding every tree adds in LightGBM's order; then every one of the stand-in's 89,976
labelled rows came out identical. The skew contract (the same PD on every path, to the last bit)
rests on that, so :func:`compile_booster` also checks it on every model it compiles: rows made to
fall on each split's threshold and on either side of it, missing values and unseen categories,
through both predictors; a single differing bit and the model is scored by LightGBM (the reason is
logged).

Optional (``requirements-compiled.txt``: lleaves and the llvmlite it was built against, ~110 MB);
the service image does not carry it (issue 12's size line). Off unless asked for (the service's
``KLARNA_PD_COMPILED_TREES``, the batch CLI's ``--compiled-trees``): compiling and checking the 326
trees of the stand-in's model took 1.4 s, which pays back after some 200,000 rows, and 30 s for
3,265 trees (LLVM's time grows faster than the one block it compiles). Contributions
(reason codes) stay LightGBM's TreeSHAP. Nothing compiled is cached on disk: machine code is never
read back from a file a bucket or another process could have written.
"""

from __future__ import annotations

import logging
import os
import tempfile

import lightgbm as lgb
import numpy as np

log = logging.getLogger(__name__)

#: Rows of the parity probe, and its seed (the same probe for the same model, every load).
PROBE_ROWS = 2_048
PROBE_SEED = 20261130


class CompiledTrees:
    """Raw margins of encoded rows from the compiled forest (float64, LightGBM's order of sums)."""

    def __init__(self, model, n_features: int) -> None:
        self._model = model
        self.n_features = n_features

    def margin(self, matrix: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
        """The raw margin of each row of ``matrix`` (n x ``n_features``); up to ``num_threads``
        threads, one per 10,000 rows (the compiled function runs without the GIL)."""
        if len(matrix) == 0:
            return np.empty(0)
        threads = max(1, min(num_threads, len(matrix) // 10_000))
        return self._model.predict(np.ascontiguousarray(matrix, dtype=np.float64), n_jobs=threads)


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
        block: trees per block (default: all of them, LightGBM's order of sums; smaller blocks
            round differently, and the parity check refuses them).

    Raises nothing: LightGBM stays the scorer whenever compiling is not possible.
    """
    try:
        import lleaves
    except ImportError:
        log.warning("compiled trees asked for, but lleaves is not installed (requirements-compiled.txt): "
                    "scoring with LightGBM")
        return None
    trees = booster.num_trees()
    text = booster.model_to_string()
    fd, path = tempfile.mkstemp(prefix="klarna-pd-booster-", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        model = lleaves.Model(model_file=path)
        # One block of every tree: LightGBM's order of additions, so the same bits (module docstring).
        model.compile(raw_score=True, fblocksize=block or max(trees, 1))
    except Exception as exc:  # LLVM or the model parser: never fatal, LightGBM still scores
        log.warning("could not compile the booster's %d trees (%s: %s): scoring with LightGBM",
                    trees, type(exc).__name__, exc)
        return None
    finally:
        os.unlink(path)
    compiled = CompiledTrees(model, booster.num_feature())
    probe = parity_probe(booster)
    expected = booster.predict(probe, raw_score=True, num_threads=1)
    got = compiled.margin(probe)
    differ = int(np.count_nonzero(expected.view(np.int64) != got.view(np.int64)))
    if differ:
        log.warning("the compiled trees differ from LightGBM on %d of %d probe rows (largest gap %.3g): "
                    "scoring with LightGBM", differ, len(probe), float(np.max(np.abs(expected - got))))
        return None
    return compiled


def parity_probe(booster: lgb.Booster, rows: int = PROBE_ROWS, seed: int = PROBE_SEED) -> np.ndarray:
    """Rows that reach every kind of branch of ``booster``: per feature, each split threshold, the
    next float above it and the one below, missing (NaN), zero, and for categorical splits each
    category named, a code no split names and a negative code (LightGBM's missing)."""
    n_features = booster.num_feature()
    candidates: list[set[float]] = [{np.nan, 0.0} for _ in range(n_features)]
    categorical = [False] * n_features
    stack = [tree["tree_structure"] for tree in booster.dump_model()["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" not in node:
            continue
        j = node["split_feature"]
        if node["decision_type"] == "==":
            categorical[j] = True
            candidates[j].update(float(c) for c in str(node["threshold"]).split("||"))
        else:
            t = float(node["threshold"])
            candidates[j].update((t, float(np.nextafter(t, np.inf)), float(np.nextafter(t, -np.inf))))
        stack.extend((node["left_child"], node["right_child"]))
    for j in range(n_features):
        if categorical[j]:
            named = [v for v in candidates[j] if v == v]
            candidates[j].update((max(named) + 1.0, -1.0))
    rng = np.random.default_rng(seed)
    columns = [rng.choice(np.array(sorted(c, key=lambda v: (v != v, v))), size=rows) for c in candidates]
    return np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)
