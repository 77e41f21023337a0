"""The report's figures as self-contained SVG (no plotting library in the runtime image)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np
from sklearn.metrics import roc_curve

W, H = 420, 300
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 44
BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#999999"


class _Axes:
    def __init__(self, title: str, xlim: tuple[float, float], ylim: tuple[float, float], xlabel: str, ylabel: str):
        self.xlim, self.ylim = xlim, ylim
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
            'font-family="sans-serif" font-size="11">',
            f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>',
            f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" fill="none" stroke="#333"/>',
            f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">{escape(xlabel)}</text>',
            f'<text x="14" y="{H / 2}" text-anchor="middle" transform="rotate(-90 14 {H / 2})">{escape(ylabel)}</text>',
        ]

    def x(self, v: float) -> float:
        lo, hi = self.xlim
        return LEFT + (v - lo) / (hi - lo) * (W - LEFT - RIGHT)

    def y(self, v: float) -> float:
        lo, hi = self.ylim
        return H - BOTTOM - (v - lo) / (hi - lo) * (H - TOP - BOTTOM)

    def ticks(self, xs: Sequence[float], ys: Sequence[float], fmt_x=str, fmt_y=str) -> None:
        for v in xs:
            self.parts.append(f'<text x="{self.x(v):.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{fmt_x(v)}</text>')
        for v in ys:
            self.parts.append(f'<text x="{LEFT - 4}" y="{self.y(v) + 4:.1f}" text-anchor="end">{fmt_y(v)}</text>')

    def line(self, xs: Sequence[float], ys: Sequence[float], color: str, dash: bool = False, width: float = 1.6) -> None:
        pts = " ".join(f"{self.x(a):.1f},{self.y(b):.1f}" for a, b in zip(xs, ys))
        style = ' stroke-dasharray="4 3"' if dash else ""
        self.parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{width}"{style}/>')

    def dots(self, xs: Sequence[float], ys: Sequence[float], color: str) -> None:
        for a, b in zip(xs, ys):
            self.parts.append(f'<circle cx="{self.x(a):.1f}" cy="{self.y(b):.1f}" r="3" fill="{color}"/>')

    def legend(self, items: Sequence[tuple[str, str]]) -> None:
        for i, (label, color) in enumerate(items):
            y = TOP + 14 + 14 * i
            self.parts.append(f'<rect x="{LEFT + 8}" y="{y - 8}" width="10" height="3" fill="{color}"/>')
            self.parts.append(f'<text x="{LEFT + 22}" y="{y}">{escape(label)}</text>')

    def svg(self) -> str:
        return "\n".join([*self.parts, "</svg>"])


def _pct(v: float) -> str:
    return f"{100 * v:g}%"


def roc(y: np.ndarray, p: np.ndarray, auc: float) -> str:
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 400)).astype(int))
    ax = _Axes(f"ROC curve (out-of-fold), AUC {auc:.3f}", (0, 1), (0, 1), "false positive rate", "true positive rate")
    ax.ticks([0, 0.25, 0.5, 0.75, 1], [0, 0.25, 0.5, 0.75, 1])
    ax.line([0, 1], [0, 1], GREY, dash=True, width=1)
    ax.line(fpr[keep], tpr[keep], BLUE)
    return ax.svg()


def reliability(before: list[dict], after: list[dict]) -> str:
    top = max(max(r["mean_pd"], r["default_rate"]) for r in [*before, *after]) * 1.1 or 1.0
    ax = _Axes("Reliability (deciles of PD, out-of-fold)", (0, top), (0, top), "mean predicted PD", "observed default rate")
    ticks = list(np.linspace(0, top, 5))
    ax.ticks(ticks, ticks, fmt_x=lambda v: f"{100 * v:.1f}%", fmt_y=lambda v: f"{100 * v:.1f}%")
    ax.line([0, top], [0, top], GREY, dash=True, width=1)
    for table, color in ((before, ORANGE), (after, BLUE)):
        xs = [r["mean_pd"] for r in table]
        ys = [r["default_rate"] for r in table]
        ax.line(xs, ys, color)
        ax.dots(xs, ys, color)
    ax.legend([("before calibration", ORANGE), ("after calibration", BLUE)])
    return ax.svg()


def score_distribution(y: np.ndarray, p: np.ndarray) -> str:
    logp = np.log10(np.clip(p, 1e-6, 1.0))
    edges = np.linspace(np.floor(logp.min() * 2) / 2, 0.0, 31)
    dens = []
    for cls in (0.0, 1.0):
        counts, _ = np.histogram(logp[y == cls], bins=edges)
        dens.append(counts / max(counts.sum(), 1))
    top = max(d.max() for d in dens) * 1.1 or 1.0
    ax = _Axes("PD by outcome (out-of-fold)", (edges[0], edges[-1]), (0, top), "PD (log scale)", "share of rows")
    xt = [e for e in np.arange(np.ceil(edges[0]), 0.5, 1.0)]
    ax.ticks(xt, list(np.linspace(0, top, 5)), fmt_x=lambda v: f"{10 ** v:g}", fmt_y=lambda v: f"{100 * v:.0f}%")
    mids = (edges[:-1] + edges[1:]) / 2
    ax.line(mids, dens[0], BLUE)
    ax.line(mids, dens[1], ORANGE)
    ax.legend([("no default", BLUE), ("default", ORANGE)])
    return ax.svg()


def importance(table: dict[str, dict[str, float]], top: int = 15) -> str:
    rows = sorted(table.items(), key=lambda kv: -kv[1]["mean_abs_shap"])[:top]
    height = 40 + 18 * len(rows)
    name_w = 250
    bar_w = 300
    max_shap = max(r["mean_abs_shap"] for _, r in rows) or 1.0
    max_gain = max(r["gain"] for _, r in rows) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{name_w + bar_w + 20}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{(name_w + bar_w) / 2}" y="16" text-anchor="middle" font-size="13">'
        "Feature importance: mean |SHAP| (blue) and share of gain (orange), each scaled to its largest</text>",
    ]
    for i, (name, r) in enumerate(rows):
        y = 30 + 18 * i
        parts.append(f'<text x="{name_w - 6}" y="{y + 11}" text-anchor="end">{escape(name)}</text>')
        parts.append(f'<rect x="{name_w}" y="{y + 1}" width="{bar_w * r["mean_abs_shap"] / max_shap:.1f}" height="7" fill="{BLUE}"/>')
        parts.append(f'<rect x="{name_w}" y="{y + 8}" width="{bar_w * r["gain"] / max_gain:.1f}" height="7" fill="{ORANGE}"/>')
    parts.append("</svg>")
    return "\n".join(parts)
