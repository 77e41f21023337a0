"""What every report section shares: the run it describes, and how numbers and tables are written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..cv import TrainResult


@dataclass(frozen=True)
class ReportData:
    """What every section may use: the run, its ``metrics.json`` document and where it came from."""

    result: TrainResult
    m: dict[str, Any]
    context: dict[str, Any]
    """data_path, data_sha256, synthetic, synthetic_record (path or None), model_tag."""


Section = Callable[[ReportData], list[str]]


def pct(v: float | None, digits: int = 2) -> str:
    """A share as a percentage (``1.43%``); ``n/a`` for None."""
    return "n/a" if v is None else f"{100 * v:.{digits}f}%"


def pval(v: float | None) -> str:
    """A p-value to three decimals (``<0.001`` below); ``n/a`` for None."""
    return "n/a" if v is None else "<0.001" if v < 0.001 else f"{v:.3f}"


def band(low: float, high: float) -> str:
    """A PD band as percentages: ``0.1-0.2%``."""
    return f"{100 * low:g}-{100 * high:g}%"


def table(header: list[str], align: str, rows: list[list[Any]]) -> list[str]:
    """A Markdown table; ``align`` has one letter per column: l(eft) or r(ight)."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |",
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]
