"""After the page, in ``report.html`` only: the figures and the appendix of tables.

:data:`FIGURES` make SVG figures, :data:`APPENDIX` sections Markdown lines, each in order.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import figures
from .common import ReportData, Section, band, pct, pval, table


def _appendix_grades(r: ReportData) -> list[str]:
    ms = r.m["master_scale"]
    rows = [
        [g["grade"], band(g["pd_low"], g["pd_high"]), f"{g['rows']:,}", f"{g['defaults']:,}",
         pct(g["default_rate"], 3), pct(g["mean_pd"], 3),
         "n/a" if g["jeffreys_p"] is None else f"{g['jeffreys_p']:.4g}",
         "n/a" if g["binomial_p"] is None else f"{g['binomial_p']:.4g}", g["light"] or "n/a",
         f"{g['scored_rows']:,}", pct(g["scored_mean_pd"], 3)]
        for g in ms["grades"]
    ]
    hh = ms["herfindahl"]
    conc = [[name, *("n/a" if v[k] is None else f"{v[k]:.4f}" for k in ("hhi", "hi", "cv"))] for name, v in hh.items()]
    return [
        "## Appendix",
        "### Master scale, every grade",
        *table(["grade", "PD band", "rows", "defaults", "observed", "mean PD", "Jeffreys p", "binomial p", "light",
                 "scored rows", "scored mean PD"], "lrrrrrrrlrr", rows),
        "",
        "Jeffreys p: the Beta(defaults + 1/2, rows - defaults + 1/2) distribution function at the grade's mean PD. "
        "Binomial p: P(at least the observed defaults) for a Binomial(rows, mean PD). Both test whether the mean PD "
        "is below the true default rate; a PD far above the observed rate shows in the table, not in the light. With "
        "ten grades tested together, one yellow grade happens in about 40 % of well calibrated models.",
        "",
        *table(["rows", "HHI", "ECB HI", "CV"], "lrrr", conc),
        "",
        "HHI is the sum of the squared shares of the grades; the ECB's HI = 1 + ln(HHI) / ln(K) and "
        "CV = sqrt(K Σ (share - 1/K)²) over the scale's K = 10 grades.",
        "",
    ]


def _appendix_calibration(r: ReportData) -> list[str]:
    cal, hl = r.m["calibration"], r.m["hosmer_lemeshow"]
    rows = [
        [b["bin"] + 1, f"{b['rows']:,}", pct(a["mean_pd"], 3), pct(b["mean_pd"], 3), pct(b["default_rate"], 3)]
        for a, b in zip(cal["table_before"], cal["table_after"])
    ]
    if hl["p_value"] is None:
        test = "Hosmer-Lemeshow: not run, the PDs fall into fewer than 3 groups (equal PDs share one)."
    else:
        test = (f"Hosmer-Lemeshow on these deciles: statistic {hl['statistic']:.2f}, {hl['df']} degrees of "
                f"freedom (the groups: the PDs are cross-fitted, each from a calibrator that did not see "
                f"its row), p = {pval(hl['p_value'])}. On many rows it detects very small gaps, on few "
                "it detects little: read it with the table.")
    return [
        "### Calibration by decile of PD (out-of-fold)",
        *table(["decile", "rows", "mean PD before", "mean PD after", "observed"], "rrrrr", rows),
        "",
        test,
        "",
    ]


def _appendix_distribution(r: ReportData) -> list[str]:
    dist = r.m["pd_distribution"]
    names = {"labelled_oof": "labelled, out-of-fold", "labelled_final": "labelled, final model", "scored": "scored, final model"}
    keys = list(dist["labelled_oof"])
    rows = [[names[k], *(pct(v.get(q), 3) for q in keys)] for k, v in dist.items() if v]
    return ["### PD quantiles", *table(["rows", *(q.replace("p", "") + "%" for q in keys)], "l" + "r" * len(keys), rows), ""]


def _appendix_folds(r: ReportData) -> list[str]:
    m = r.m
    rows = [[k, f"{a:.4f}", rounds] for k, (a, rounds) in enumerate(zip(m["fold_auc"], m["fold_best_iterations"]), start=1)]
    return ["### Folds", *table(["fold", "ROC AUC", "rounds"], "rrr", rows), ""]


def _appendix_importance(r: ReportData, top: int = 20) -> list[str]:
    rows = [[f"`{k}`", f"{v['mean_abs_shap']:.4f}", pct(v["gain"], 1)]
            for k, v in list(r.m["feature_importance"].items())[:top]]
    return [f"### Feature importance, top {min(top, len(r.m['feature_importance']))}",
            *table(["feature", "mean absolute SHAP (log-odds)", "share of gain"], "lrr", rows), ""]


def _appendix_quality(r: ReportData) -> list[str]:
    """Stability over the folds, the constraint sets' AUC cost, and the parameter search (if any)."""
    m = r.m
    st = m["stability"]
    rows = [[name, f"{st[name]['mean']:.5f}", f"{st[name]['std']:.5f}", f"{st[name]['min']:.5f}", f"{st[name]['max']:.5f}"]
            for name in ("auc", "log_loss", "brier", "ece")]
    lines = [f"### Stability over {st['folds']} folds ({st['repeats']} repeat(s))",
             *table(["measure", "mean", "std", "min", "max"], "lrrrr", rows), ""]
    if "oof_auc_over_repeats" in st:
        o = st["oof_auc_over_repeats"]
        lines += [f"OOF AUC per repeat: {o['mean']:.4f} ± {o['std']:.4f}.", ""]
    sets = (m.get("constraints") or {}).get("sets") or {}
    if sets:
        lines += ["### Monotone constraint sets, same folds",
                  *table(["constraint set", "features constrained", "OOF AUC"], "lrr",
                         [[name, len(v["features"]), f"{v['oof_auc']:.4f}"] for name, v in sets.items()]), ""]
    tuning = m.get("tuning")
    if tuning:
        space = ", ".join(f"{k} {v['low']:g}-{v['high']:g}" for k, v in tuning["search_space"].items())
        winner = ", ".join(f"{k} {v:.3g}" for k, v in tuning["winner_median"].items())
        budget = (f"{tuning['trials_per_fold_asked']} trials per fold" if tuning["trials_per_fold_asked"]
                  else f"budget {tuning['budget_seconds']:g} s")
        lines += ["### Parameter search (nested cross-validation)",
                  f"{budget}, {tuning['seconds']:.0f} s used: {tuning['trials_run']} trials over "
                  f"{len(tuning['outer_folds'])} outer folds; search space: {space}. Median winner: {winner}; "
                  f"the default kept in {tuning['folds_won_by_default']} folds.", ""]
    return lines


#: Tables a reviewer may want after the page (report.html only), in order.
APPENDIX: tuple[Section, ...] = (_appendix_grades, _appendix_calibration, _appendix_distribution, _appendix_folds,
                                 _appendix_quality, _appendix_importance)


def _figures(r: ReportData) -> list[str]:
    res, m = r.result, r.m
    cal = m["calibration"]
    out = [
        figures.roc(res.y, res.oof_ranked, m["oof_auc"]),
        figures.reliability(cal["table_before"], cal["table_after"]),
        figures.master_scale(m["master_scale"]["grades"]),
        figures.score_distribution(res.y, res.oof_pd),
    ]
    if len(res.unlabelled_pd):
        out.append(figures.scored_distribution(res.labelled_pd, res.unlabelled_pd))
    out.append(figures.importance(m["feature_importance"]))
    return out


#: SVG figures (report.html only), in order.
FIGURES: tuple[Callable[[ReportData], list[str]], ...] = (_figures,)
