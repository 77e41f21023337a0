"""One LightGBM booster that predicts the mean margin of several boosters.

The served model averages the k fold models of cross-validation. Rather than ship k files, the
fold models' trees are put into one booster with every leaf value divided by k: a sum of trees is
the booster's raw score, so the merged booster's raw score is the mean of the fold models' raw
scores, and its TreeSHAP contributions are the mean of theirs (SHAP is linear in the trees). The
server, batch scoring, Spark and reason codes read it as any other ``booster.txt``.

LightGBM has no public call that merges boosters, so this works on its documented text format
(``Booster.model_to_string``): the header of the first booster, the ``Tree=`` blocks of all of
them renumbered and scaled, then LightGBM itself parses the result and writes it back out, which
recomputes ``tree_sizes`` and the feature importances.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import lightgbm as lgb

_TREE = re.compile(r"^Tree=\d+$", re.MULTILINE)
# Lines of a tree block holding node outputs; the rest (structure, counts, gains) is unchanged.
_SCALED = ("leaf_value=", "internal_value=", "shrinkage=")


def _split(text: str) -> tuple[list[str], list[str], str]:
    """Header lines, tree blocks (without their ``Tree=`` line), and the part after the trees."""
    head, sep, rest = text.partition("\nend of trees")
    if not sep:
        raise ValueError("not a LightGBM text model: no 'end of trees' line")
    starts = [m.start() for m in _TREE.finditer(head)]
    if not starts:
        raise ValueError("not a LightGBM text model: no 'Tree=' block")
    header = head[: starts[0]].strip("\n").splitlines()
    blocks = []
    for a, b in zip(starts, starts[1:] + [len(head)]):
        lines = head[a:b].strip("\n").splitlines()
        blocks.append(lines[1:])
    return header, blocks, "end of trees" + rest


def _scale_line(line: str, factor: float) -> str:
    for key in _SCALED:
        if line.startswith(key):
            values = line[len(key):].split()
            return key + " ".join(repr(float(v) * factor) for v in values)
    return line


def _merge_infos(infos: list[list[str]]) -> list[str]:
    """Per feature, the union of what the boosters saw: numeric ranges ``[lo:hi]``, category lists ``a:b:c``."""
    merged = []
    for column in zip(*infos):
        seen = [c for c in column if c != "none"]
        if not seen:
            merged.append("none")
        elif seen[0].startswith("["):
            bounds = [c[1:-1].split(":") for c in seen]
            lo = min(float(b[0]) for b in bounds)
            hi = max(float(b[1]) for b in bounds)
            merged.append(f"[{lo!r}:{hi!r}]")
        else:
            levels: list[str] = []
            for c in seen:
                levels += [v for v in c.split(":") if v not in levels]
            merged.append(":".join(levels))
    return merged


def merge_mean(boosters: Sequence[lgb.Booster], rounds: Sequence[int] | None = None) -> lgb.Booster:
    """One booster whose raw score is the mean of the raw scores of ``boosters``.

    Args:
        boosters: boosters of one objective, trained on the same features (e.g. cross-validation
            folds); at least one.
        rounds: boosting rounds of each booster to keep (default: all of its trees).

    Returns:
        A booster with all their trees, each leaf value divided by ``len(boosters)``.

    Raises:
        ValueError: no boosters, rounds of the wrong length, or boosters of different features or
            objectives.
    """
    if not boosters:
        raise ValueError("merge_mean needs at least one booster, got none")
    if rounds is not None and len(rounds) != len(boosters):
        raise ValueError(f"merge_mean: {len(boosters)} boosters but {len(rounds)} round counts")
    factor = 1.0 / len(boosters)
    headers, all_blocks, tail = [], [], None
    for i, booster in enumerate(boosters):
        n = None if rounds is None else int(rounds[i])
        header, blocks, rest = _split(booster.model_to_string(num_iteration=n))
        if any(line == "is_linear=1" for block in blocks for line in block):
            raise ValueError("merge_mean: linear trees (linear_tree=true) are not supported")
        headers.append(header)
        all_blocks += blocks
        tail = tail if tail is not None else rest

    def field(header: list[str], key: str) -> str:
        return next((line for line in header if line.startswith(key + "=")), "")

    for key in ("feature_names", "objective", "num_class", "num_tree_per_iteration"):
        values = {field(h, key) for h in headers}
        if len(values) != 1:
            raise ValueError(f"merge_mean: the boosters differ in {key}: {sorted(values)}")
    infos = _merge_infos([field(h, "feature_infos").partition("=")[2].split(" ") for h in headers])
    header = [
        line
        for line in headers[0]
        if not line.startswith("tree_sizes=")  # LightGBM recomputes it when it writes the model
    ]
    header = [("feature_infos=" + " ".join(infos)) if line.startswith("feature_infos=") else line for line in header]
    parts = ["\n".join(header), ""]
    for t, block in enumerate(all_blocks):
        parts.append(f"Tree={t}\n" + "\n".join(_scale_line(line, factor) for line in block) + "\n")
    text = "\n".join(parts) + "\n" + tail
    # Parse and write back through LightGBM: the canonical text, tree_sizes and importances included.
    return lgb.Booster(model_str=lgb.Booster(model_str=text).model_to_string())
