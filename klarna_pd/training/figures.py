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


def nice_ticks(low: float, high: float, most: int = 6) -> list[float]:
    """Round axis ticks covering [low, high]: steps of 1, 2 or 5 times a power of ten, at most ``most`` ticks."""
    span = high - low
    if not np.isfinite(span) or span <= 0:
        return [low]
    for power in range(int(np.floor(np.log10(span / most))) - 1, int(np.ceil(np.log10(span))) + 2):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**power
            first, last = np.floor(low / step + 1e-9), np.ceil(high / step - 1e-9)
            if last - first + 1 <= most:
                # round() drops the float noise of k * step (0.30000000000000004)
                return [round(float(k * step), 12) for k in np.arange(first, last + 1)]
    return [low, high]


def _pct(v: float) -> str:
    return f"{100 * v:.10g}%"


def roc(y: np.ndarray, p: np.ndarray, auc: float) -> str:
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 400)).astype(int))
    ax = _Axes(f"ROC curve (out-of-fold), AUC {auc:.3f}", (0, 1), (0, 1), "false positive rate", "true positive rate")
    ax.ticks([0, 0.25, 0.5, 0.75, 1], [0, 0.25, 0.5, 0.75, 1])
    ax.line([0, 1], [0, 1], GREY, dash=True, width=1)
    ax.line(fpr[keep], tpr[keep], BLUE)
    return ax.svg()


def reliability(before: list[dict], after: list[dict]) -> str:
    ticks = nice_ticks(0.0, max(max(r["mean_pd"], r["default_rate"]) for r in [*before, *after]) or 1.0)
    top = ticks[-1]
    ax = _Axes("Reliability (deciles of PD, out-of-fold)", (0, top), (0, top), "mean predicted PD", "observed default rate")
    ax.ticks(ticks, ticks, fmt_x=_pct, fmt_y=_pct)
    ax.line([0, top], [0, top], GREY, dash=True, width=1)
    for table, color in ((before, ORANGE), (after, BLUE)):
        xs = [r["mean_pd"] for r in table]
        ys = [r["default_rate"] for r in table]
        ax.line(xs, ys, color)
        ax.dots(xs, ys, color)
    ax.legend([("before calibration", ORANGE), ("after calibration", BLUE)])
    return ax.svg()


def _log_histograms(title: str, groups: Sequence[tuple[str, np.ndarray, str]]) -> str:
    """Shares of rows over 30 bins of log10 PD, one line per group (label, PDs, colour)."""
    logs = [np.log10(np.clip(p, 1e-6, 1.0)) for _, p, _ in groups if len(p)]
    low = min(float(v.min()) for v in logs)
    edges = np.linspace(np.floor(low * 2) / 2, 0.0, 31)
    shown = []
    for label, p, color in groups:
        if not len(p):
            continue
        counts, _ = np.histogram(np.log10(np.clip(p, 1e-6, 1.0)), bins=edges)
        shown.append((label, counts / counts.sum(), color))
    yt = nice_ticks(0.0, max(float(d.max()) for _, d, _ in shown) or 1.0)
    ax = _Axes(title, (edges[0], edges[-1]), (0, yt[-1]), "PD (log scale)", "share of rows")
    xt = [float(e) for e in np.arange(np.ceil(edges[0]), 0.5, 1.0)]
    ax.ticks(xt, yt, fmt_x=lambda v: _pct(10**v), fmt_y=_pct)
    mids = (edges[:-1] + edges[1:]) / 2
    for _, dens, color in shown:
        ax.line(mids, dens, color)
    ax.legend([(label, color) for label, _, color in shown])
    return ax.svg()


def score_distribution(y: np.ndarray, p: np.ndarray) -> str:
    return _log_histograms("PD by outcome (out-of-fold)", [("no default", p[y == 0], BLUE), ("default", p[y == 1], ORANGE)])


def scored_distribution(labelled_pd: np.ndarray, scored_pd: np.ndarray) -> str:
    """PDs of the rows scored next to those of the labelled rows, both from the final model."""
    return _log_histograms(
        "PD of scored and labelled rows (final model)",
        [(f"labelled rows ({len(labelled_pd):,})", labelled_pd, BLUE), (f"scored rows ({len(scored_pd):,})", scored_pd, ORANGE)],
    )


def master_scale(grades: list[dict]) -> str:
    """Observed default rate (with its 95 % Jeffreys interval) and mean PD per grade, log scale."""
    from scipy import stats

    rows = [g for g in grades if g["rows"]]
    lows, highs = [], []
    for g in rows:
        a, b = g["defaults"] + 0.5, g["rows"] - g["defaults"] + 0.5
        lows.append(float(stats.beta.ppf(0.025, a, b)))
        highs.append(float(stats.beta.ppf(0.975, a, b)))
    floor = 1e-4
    values = [v for g in rows for v in (g["mean_pd"], g["default_rate"])] + lows + highs
    lo = np.floor(np.log10(max(min(v for v in values if v > 0), floor)))
    hi = np.ceil(np.log10(max(values)))
    if hi <= lo:
        hi = lo + 1
    ax = _Axes("Master scale: observed vs predicted (out-of-fold)", (0.5, len(rows) + 0.5), (lo, hi),
               "grade", "default rate (log scale)")
    ax.ticks(range(1, len(rows) + 1), [float(v) for v in np.arange(lo, hi + 0.5)],
             fmt_x=lambda i: str(rows[i - 1]["grade"]), fmt_y=lambda v: _pct(10**v))
    for i, (g, l, h) in enumerate(zip(rows, lows, highs), start=1):
        ax.line([i, i], [np.log10(max(l, 10**lo)), np.log10(max(h, 10**lo))], ORANGE, width=1)
    xs = list(range(1, len(rows) + 1))
    # No dot for a grade without defaults: log scale has no zero; its interval still shows.
    seen = [(i, g["default_rate"]) for i, g in zip(xs, rows) if g["default_rate"] > 0]
    ax.dots([i for i, _ in seen], [np.log10(v) for _, v in seen], ORANGE)
    ax.line(xs, [np.log10(g["mean_pd"]) for g in rows], BLUE)
    ax.legend([("mean PD", BLUE), ("observed rate, 95% Jeffreys interval", ORANGE)])
    return ax.svg()


def _scale(parts: list[str], x0: float, width: float, y: float, ticks: list[float], fmt, color: str, up: bool) -> None:
    """A horizontal axis: baseline, tick marks and labels (above the line when ``up``)."""
    parts.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + width}" y2="{y}" stroke="{color}"/>')
    for v in ticks:
        x = x0 + width * v / ticks[-1]
        mark, label = (y - 4, y - 7) if up else (y + 4, y + 15)
        parts.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{mark}" stroke="{color}"/>')
        parts.append(f'<text x="{x:.1f}" y="{label}" text-anchor="middle" fill="{color}">{fmt(v)}</text>')


def importance(table: dict[str, dict[str, float]], top: int = 15) -> str:
    """Mean |SHAP| (log-odds, top axis) and share of total gain (bottom axis) of the strongest features."""
    rows = sorted(table.items(), key=lambda kv: -kv[1]["mean_abs_shap"])[:top]
    name_w, bar_w, first = 250, 300, 76
    height = first + 18 * len(rows) + 40
    shap_ticks = nice_ticks(0.0, max(r["mean_abs_shap"] for _, r in rows) or 1.0)
    gain_ticks = nice_ticks(0.0, max(r["gain"] for _, r in rows) or 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{name_w + bar_w + 40}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{(name_w + bar_w) / 2}" y="16" text-anchor="middle" font-size="13">Feature importance</text>',
        f'<rect x="{name_w}" y="26" width="10" height="7" fill="{BLUE}"/>',
        f'<text x="{name_w + 14}" y="33">mean |SHAP| on the log-odds (top axis)</text>',
        f'<rect x="{name_w}" y="40" width="10" height="7" fill="{ORANGE}"/>',
        f'<text x="{name_w + 14}" y="47">share of total gain (bottom axis)</text>',
    ]
    _scale(parts, name_w, bar_w, first - 6, shap_ticks, lambda v: f"{v:g}", BLUE, up=True)
    for i, (name, r) in enumerate(rows):
        y = first + 18 * i
        parts.append(f'<text x="{name_w - 6}" y="{y + 11}" text-anchor="end">{escape(name)}</text>')
        parts.append(f'<rect x="{name_w}" y="{y + 1}" width="{bar_w * r["mean_abs_shap"] / shap_ticks[-1]:.1f}" height="7" fill="{BLUE}"/>')
        parts.append(f'<rect x="{name_w}" y="{y + 8}" width="{bar_w * r["gain"] / gain_ticks[-1]:.1f}" height="7" fill="{ORANGE}"/>')
    _scale(parts, name_w, bar_w, first + 18 * len(rows) + 4, gain_ticks, _pct, ORANGE, up=False)
    parts.append("</svg>")
    return "\n".join(parts)
