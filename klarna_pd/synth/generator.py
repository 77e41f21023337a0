"""Klarna-like rows from a few latent traits of a customer.

Every row draws independent standard normal traits:

- ``history``: how much payment history the customer has. It decides, by thresholds taken from
  the published counts, which blocks of columns are empty or zero: no archived invoice in 24
  months (all ``status_*`` = 0, no archived counts), none in 12 or 6 months, no payment span
  (NA), and so on. Because one trait drives them, these patterns nest the way the real ones do.
- ``account``: whether the customer has a credit account (the ``account_*`` NA block), linked
  to ``history``.
- ``activity``: how much the customer buys (amounts, numbers of invoices).
- ``delinquency``: how badly the customer pays (statuses, days in collection, payment spans).

Each column's value is its published marginal (:mod:`.marginals`, level counts) evaluated at a
uniform that mixes ``activity``/``delinquency`` with noise (a Gaussian copula), so marginals
match the profile while columns correlate as a credit file's do. Values forced to zero by the
history thresholds take the bottom of the marginal, so the zero counts stay as published.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.special import ndtr

from .facts import level_shares, load_facts, merchant_category_counts
from .marginals import Marginal, fit_marginal

# (activity, delinquency) loadings of each column's uniform; the rest is the column's own noise.
LOADINGS: dict[str, tuple[float, float]] = {
    "account_amount_added_12_24m": (0.6, 0.0),
    "account_days_in_dc_12_24m": (0.0, 0.6),
    "account_days_in_rem_12_24m": (0.1, 0.6),
    "account_days_in_term_12_24m": (0.0, 0.5),
    "account_incoming_debt_vs_paid_0_24m": (0.1, 0.3),
    "account_status": (0.0, 0.6),
    "account_worst_status_0_3m": (0.0, 0.75),
    "account_worst_status_3_6m": (0.0, 0.75),
    "account_worst_status_6_12m": (0.0, 0.7),
    "account_worst_status_12_24m": (0.0, 0.65),
    "age": (0.3, -0.3),
    "avg_payment_span_0_12m": (0.0, 0.8),
    "avg_payment_span_0_3m": (0.0, 0.7),
    "max_paid_inv_0_12m": (0.8, 0.0),
    "max_paid_inv_0_24m": (0.85, 0.0),
    "num_active_div_by_paid_inv_0_12m": (-0.2, 0.5),
    "num_active_inv": (0.5, 0.0),
    "num_arch_dc_0_12m": (0.1, 0.6),
    "num_arch_dc_12_24m": (0.1, 0.55),
    "num_arch_ok_0_12m": (0.7, -0.2),
    "num_arch_ok_12_24m": (0.7, -0.15),
    "num_arch_rem_0_12m": (0.3, 0.5),
    "num_arch_written_off_0_12m": (0.0, 0.5),
    "num_arch_written_off_12_24m": (0.0, 0.5),
    "num_unpaid_bills": (0.4, 0.4),
    "status_last_archived_0_24m": (0.0, 0.7),
    "status_2nd_last_archived_0_24m": (0.0, 0.65),
    "status_3rd_last_archived_0_24m": (0.0, 0.6),
    "status_max_archived_0_6_months": (0.0, 0.7),
    "status_max_archived_0_12_months": (0.0, 0.75),
    "status_max_archived_0_24_months": (0.0, 0.75),
    "recovery_debt": (0.0, 0.6),
    "sum_capital_paid_account_0_12m": (0.6, 0.0),
    "sum_capital_paid_account_12_24m": (0.55, 0.0),
    "sum_paid_inv_0_12m": (0.85, 0.0),
    "time_hours": (0.0, 0.0),
    "worst_status_active_inv": (0.0, 0.6),
    "has_paid": (0.0, -0.3),
    "archive_count": (0.5, 0.0),
}
_ACCOUNT_HISTORY_LINK = 0.5


@dataclass(frozen=True)
class Thresholds:
    """Shares of all rows below which a history-driven pattern applies (nested by size)."""

    written_off_na: float
    no_archive_24m: float
    active_div_na: float
    span_12m_na: float
    no_archive_12m: float
    second_last_zero: float
    third_last_zero: float
    no_archive_6m: float
    span_3m_na: float
    account_days_na: float
    account: dict[str, float]
    no_active_invoice: float


@lru_cache(maxsize=1)
def thresholds() -> Thresholds:
    facts = load_facts()
    cols, rows = facts["columns"], facts["rows"]

    def missing(name: str) -> float:
        return cols[name]["missing"] / rows

    def zeros(name: str) -> float:
        return cols[name]["levels"]["0"] / rows

    account = {
        name: missing(name)
        for name in (
            "account_status",
            "account_worst_status_0_3m",
            "account_worst_status_3_6m",
            "account_incoming_debt_vs_paid_0_24m",
            "account_worst_status_6_12m",
            "account_worst_status_12_24m",
        )
    }
    return Thresholds(
        written_off_na=missing("num_arch_written_off_0_12m"),
        no_archive_24m=zeros("status_last_archived_0_24m"),
        active_div_na=missing("num_active_div_by_paid_inv_0_12m"),
        span_12m_na=missing("avg_payment_span_0_12m"),
        no_archive_12m=zeros("status_max_archived_0_12_months"),
        second_last_zero=zeros("status_2nd_last_archived_0_24m"),
        third_last_zero=zeros("status_3rd_last_archived_0_24m"),
        no_archive_6m=zeros("status_max_archived_0_6_months"),
        span_3m_na=missing("avg_payment_span_0_3m"),
        account_days_na=missing("account_days_in_dc_12_24m"),
        account=account,
        no_active_invoice=missing("worst_status_active_inv"),
    )


# Columns that are zero whenever a history pattern holds, and which pattern.
_STRUCTURAL_ZERO = {
    "num_arch_ok_0_12m": "no_archive_12m",
    "num_arch_dc_0_12m": "no_archive_12m",
    "num_arch_rem_0_12m": "no_archive_12m",
    "num_arch_ok_12_24m": "no_archive_24m",
    "num_arch_dc_12_24m": "no_archive_24m",
    "account_amount_added_12_24m": "no_account",
    "sum_capital_paid_account_0_12m": "no_account",
    "sum_capital_paid_account_12_24m": "no_account",
}


def _structural_share(kind: str) -> float:
    t = thresholds()
    return t.account["account_status"] if kind == "no_account" else getattr(t, kind)


@lru_cache(maxsize=None)
def marginal(name: str) -> Marginal:
    """The fitted marginal of a numeric column's present values."""
    col = load_facts()["columns"][name]
    zero_share = None
    floor = 0.0
    if name == "num_active_inv":
        # No active invoice <=> worst_status_active_inv is NA: the published NA count fixes the zeros.
        zero_share = thresholds().no_active_invoice
    elif name in _STRUCTURAL_ZERO:
        floor = _structural_share(_STRUCTURAL_ZERO[name])
    return fit_marginal(
        col["quantiles"],
        col["mean"],
        col["std"],
        integer=col["integer"],
        zero_share=zero_share,
        min_zero_share=floor,
    )


class _Draw:
    """Latent traits of ``n`` rows and the uniforms derived from them."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n = n
        self.rng = rng
        self.activity = rng.standard_normal(n)
        self.delinquency = rng.standard_normal(n)
        history = rng.standard_normal(n)
        self.history = ndtr(history)
        link = _ACCOUNT_HISTORY_LINK
        self.account = ndtr(link * history + np.sqrt(1 - link * link) * rng.standard_normal(n))

    def uniform(self, name: str) -> np.ndarray:
        wa, wd = LOADINGS[name]
        own = np.sqrt(1.0 - wa * wa - wd * wd)
        return ndtr(wa * self.activity + wd * self.delinquency + own * self.rng.standard_normal(self.n))


def _codes(levels: list[str], shares: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Level of each uniform by cumulative shares (in the order given: low codes first)."""
    idx = np.searchsorted(np.cumsum(shares)[:-1], u, side="right")
    return np.asarray([float(x) for x in levels])[idx]


def _ordered_levels(name: str) -> tuple[list[str], np.ndarray]:
    names, shares = level_shares(name, exclude=("NA", "0"))
    order = np.argsort([float(x) for x in names])
    return [names[i] for i in order], shares[order]


def _numeric(d: _Draw, name: str, zero: np.ndarray | None = None) -> np.ndarray:
    m = marginal(name)
    u = d.uniform(name)
    if zero is not None:
        s = float(np.clip(_structural_share(_STRUCTURAL_ZERO[name]), 0.0, m.zero_share))
        u = s + (1.0 - s) * u
        values = m.quantile(u)
        values[zero] = 0.0
        return values
    return m.quantile(u)


def _ordinal(d: _Draw, name: str, zero: np.ndarray | None = None, na: np.ndarray | None = None) -> np.ndarray:
    levels, shares = _ordered_levels(name)
    values = _codes(levels, shares, d.uniform(name))
    if zero is not None:
        values[zero] = 0.0
    if na is not None:
        values[na] = np.nan
    return values


def _level_index(rng: np.random.Generator, shares: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(np.cumsum(shares)[:-1], rng.random(n), side="right")


def generate_features(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` rows of the 41 Klarna features (typed as :mod:`klarna_pd.data` types them)."""
    facts = load_facts()
    t = thresholds()
    d = _Draw(n, rng)
    h, g = d.history, d.account
    out: dict[str, np.ndarray] = {}

    no24 = h < t.no_archive_24m
    no12 = h < t.no_archive_12m
    no6 = h < t.no_archive_6m
    no_account = g < t.account["account_status"]
    # Among customers with an archived invoice, fewer archived invoices -> no 2nd/3rd last status.
    count_u = d.uniform("archive_count")
    q2 = (t.second_last_zero - t.no_archive_24m) / (1.0 - t.no_archive_24m)
    q3 = (t.third_last_zero - t.no_archive_24m) / (1.0 - t.no_archive_24m)

    out["status_last_archived_0_24m"] = _ordinal(d, "status_last_archived_0_24m", zero=no24)
    out["status_2nd_last_archived_0_24m"] = _ordinal(d, "status_2nd_last_archived_0_24m", zero=no24 | (count_u < q2))
    out["status_3rd_last_archived_0_24m"] = _ordinal(d, "status_3rd_last_archived_0_24m", zero=no24 | (count_u < q3))
    out["status_max_archived_0_6_months"] = _ordinal(d, "status_max_archived_0_6_months", zero=no6)
    out["status_max_archived_0_12_months"] = _ordinal(d, "status_max_archived_0_12_months", zero=no12)
    out["status_max_archived_0_24_months"] = _ordinal(d, "status_max_archived_0_24_months", zero=no24)

    zero_of = {"no_archive_12m": no12, "no_archive_24m": no24, "no_account": no_account}
    for name, kind in _STRUCTURAL_ZERO.items():
        out[name] = _numeric(d, name, zero=zero_of[kind])

    for name, na in (
        ("avg_payment_span_0_12m", h < t.span_12m_na),
        ("avg_payment_span_0_3m", h < t.span_3m_na),
        ("num_active_div_by_paid_inv_0_12m", h < t.active_div_na),
        ("num_arch_written_off_0_12m", h < t.written_off_na),
        ("num_arch_written_off_12_24m", h < t.written_off_na),
        ("account_incoming_debt_vs_paid_0_24m", g < t.account["account_incoming_debt_vs_paid_0_24m"]),
    ):
        values = _numeric(d, name)
        values[na] = np.nan
        out[name] = values

    days_na = rng.random(n) < t.account_days_na
    for name in ("account_days_in_dc_12_24m", "account_days_in_rem_12_24m", "account_days_in_term_12_24m"):
        values = _numeric(d, name)
        values[days_na] = np.nan
        out[name] = values

    for name in ("account_status", "account_worst_status_0_3m", "account_worst_status_3_6m",
                 "account_worst_status_6_12m", "account_worst_status_12_24m"):
        out[name] = _ordinal(d, name, na=g < t.account[name])

    for name in ("age", "max_paid_inv_0_12m", "max_paid_inv_0_24m", "sum_paid_inv_0_12m",
                 "num_unpaid_bills", "recovery_debt", "num_active_inv"):
        out[name] = _numeric(d, name)
    out["worst_status_active_inv"] = _ordinal(d, "worst_status_active_inv", na=out["num_active_inv"] == 0)

    # Purchase time to the second, as the real column holds it.
    seconds = np.clip(np.round(_numeric(d, "time_hours") * 3600.0), 1.0, 86399.0)
    out["time_hours"] = seconds / 3600.0

    paid = facts["columns"]["has_paid"]["levels"]
    out["has_paid"] = (d.uniform("has_paid") >= paid["False"] / (paid["False"] + paid["True"])).astype(float)

    names, shares = level_shares("name_in_email")
    out["name_in_email"] = np.asarray(names, dtype=object)[_level_index(rng, shares, n)]
    counts = merchant_category_counts()
    cats = list(counts)
    idx = _level_index(rng, np.array([counts[c] for c in cats], dtype=float) / sum(counts.values()), n)
    out["merchant_category"] = np.asarray(cats, dtype=object)[idx]
    group_of = facts["merchant_category_group"]
    out["merchant_group"] = np.asarray([group_of[c] for c in cats], dtype=object)[idx]

    order = [c for c in facts["column_order"] if c in out]
    return pd.DataFrame({c: out[c] for c in order})
