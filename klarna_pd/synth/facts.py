"""The published figures about the real Klarna file, as the generator reads them."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np


@lru_cache(maxsize=1)
def load_facts() -> dict:
    """``klarna_pd/resources/klarna_facts.json`` (made by ``scripts/extract_klarna_facts.py``)."""
    text = resources.files("klarna_pd.resources").joinpath("klarna_facts.json").read_text("utf-8")
    return json.loads(text)


def level_shares(column: str, *, exclude: tuple[str, ...] = ("NA",)) -> tuple[list[str], np.ndarray]:
    """Levels of a column and their shares among the rows where the level is not excluded."""
    levels = load_facts()["columns"][column]["levels"]
    names = [k for k in levels if k not in exclude]
    counts = np.array([levels[k] for k in names], dtype=float)
    return names, counts / counts.sum()


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    raw = weights / weights.sum() * total
    out = np.floor(raw).astype(int)
    short = total - out.sum()
    out[np.argsort(-(raw - out), kind="stable")[:short]] += 1
    return out


@lru_cache(maxsize=1)
def merchant_category_counts() -> dict[str, int]:
    """All-row counts of the 57 merchant categories.

    Published: the 11 most frequent over all rows, every group's total, and every category's
    count among the 10,000 unlabelled rows. The other 46 categories share what their group has
    left, in proportion to their unlabelled-row counts (plus a half, so the two categories absent
    from those rows still occur). Group totals are therefore exact.
    """
    facts = load_facts()
    group_of = facts["merchant_category_group"]
    known = facts["columns"]["merchant_category"]["levels"]
    unlabelled = facts["columns"]["merchant_category"]["levels_unlabelled_computed"]
    groups = facts["columns"]["merchant_group"]["levels"]
    counts = dict(known)
    for group, total in groups.items():
        members = [c for c in facts["merchant_category_all_levels"] if group_of[c] == group]
        rest = [c for c in members if c not in known]
        left = total - sum(known[c] for c in members if c in known)
        if not rest:
            continue
        weights = np.array([unlabelled.get(c, 0) + 0.5 for c in rest])
        for c, n in zip(rest, _largest_remainder(left, weights)):
            counts[c] = int(n)
    return counts
