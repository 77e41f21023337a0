"""The validation report: ``report.md`` (one printed page) and ``report.html`` (that page rendered,
the figures, and an appendix of tables).

Both are built from sections: functions of a :class:`ReportData` returning Markdown lines.
:data:`PAGE` makes ``report.md``; the HTML page renders the same Markdown, then the figures, then
:data:`APPENDIX`. Adding a section is one function added to one of the tuples. Markdown becomes
HTML through markdown-it-py (CommonMark with tables), never by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from markdown_it import MarkdownIt

from . import figures
from .cv import TrainResult
from .masterscale import LIGHTS, RED_BELOW, YELLOW_BELOW


@dataclass(frozen=True)
class ReportData:
    """What every section may use: the run, its ``metrics.json`` document and where it came from."""

    result: TrainResult
    m: dict[str, Any]
    context: dict[str, Any]
    """data_path, data_sha256, synthetic, synthetic_record (path or None), model_tag."""


Section = Callable[[ReportData], list[str]]


# -- formatting ---------------------------------------------------------------------------------


def _pct(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{100 * v:.{digits}f}%"


def _p(v: float | None) -> str:
    return "n/a" if v is None else "<0.001" if v < 0.001 else f"{v:.3f}"


def _band(low: float, high: float) -> str:
    return f"{100 * low:g}-{100 * high:g}%"


def _table(header: list[str], align: str, rows: list[list[Any]]) -> list[str]:
    """A Markdown table; ``align`` has one letter per column: l(eft) or r(ight)."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |",
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


# -- the page (report.md) -----------------------------------------------------------------------


def _title(r: ReportData) -> list[str]:
    return [f"# PD model validation report: `{r.context['model_tag']}`", ""]


def _warnings(r: ReportData) -> list[str]:
    lines = []
    if r.context.get("synthetic"):
        record = r.context.get("synthetic_record")
        lines += [
            "> **Trained on the synthetic stand-in**"
            + (f" (its provenance record: `{record}`)" if record else "")
            + ", not on real data:",
            "> the figures describe the generator's known true PD, not real customers.",
            "",
        ]
    empty = r.m.get("input", {}).get("all_missing_features") or []
    if empty:
        lines += [
            f"> **Missing in every labelled row**: {', '.join(f'`{c}`' for c in empty)}. The model cannot",
            "> use these features; check the extract before trusting this model.",
            "",
        ]
    return lines


def _data(r: ReportData) -> list[str]:
    spec, m, rows = r.result.model.spec, r.m, r.m["rows"]
    kinds = {k: len(spec.names_of(k)) for k in ("numeric", "ordinal", "categorical", "boolean")}
    return [
        "## Data",
        f"`{r.context['data_path']}` (sha256 `{r.context['data_sha256'][:16]}`), spec `{spec.name}`: "
        f"{rows['labelled']:,} labelled rows ({rows['defaults']:,} defaults, rate {m['default_rate']:.2%}) and "
        f"{rows['unlabelled']:,} rows to score; {len(spec.features)} features "
        f"({', '.join(f'{v} {k}' for k, v in kinds.items() if v)}).",
        "",
    ]


def _model(r: ReportData) -> list[str]:
    m, spec = r.m, r.result.model.spec
    p = m["params"]
    monotone = [f.name for f in spec.features if f.monotone]
    return [
        "## Model",
        f"LightGBM gradient-boosted trees: {p['num_boost_round']} rounds, learning rate {p['learning_rate']}, "
        f"{p['num_leaves']} leaves, at least {p['min_data_in_leaf']} rows per leaf, L2 {p['lambda_l2']}. "
        + (f"Monotone (PD never falls as these worsen): {', '.join(f'`{n}`' for n in monotone)}. "
           if monotone and "monotone_constraints" in p else "")
        + f"Calibration: {m['calibration']['method']} on the booster's margin. Strongest features (mean absolute "
        "SHAP on the log-odds): " + ", ".join(f"`{k}`" for k in list(m["feature_importance"])[:6]) + ".",
        "",
    ]


def _validation(r: ReportData) -> list[str]:
    cal = r.m["calibration"]
    return [
        "## Validation",
        f"Stratified {len(r.m['fold_auc'])}-fold cross-validation, early stopping inside each fold; every row's "
        "out-of-fold (OOF) PD comes from the one model that did not see it, and every figure here uses these. "
        "Platt and isotonic calibration compared by a further 5-fold cross-validation (log loss "
        + ", ".join(f"{k} {v['log_loss']:.5f}" for k, v in cal["methods_cross_validated"].items())
        + "); the final model is refit on all labelled rows with the folds' mean number of rounds.",
        "",
    ]


def _psi_note(psi: float | None) -> str:
    if psi is None:
        return "no rows to score"
    return "stable (< 0.1)" if psi < 0.1 else "watch (0.1-0.25)" if psi < 0.25 else "shifted (> 0.25)"


def _ece_sentence(m: dict[str, Any]) -> list[str]:
    cal = m["calibration"]
    before, after = cal["before"]["ece"], cal["after"]["ece"]
    if after <= before:
        return []
    noise = cal["ece_noise"]
    loss = cal["before"]["log_loss"], cal["after"]["log_loss"]
    verdict = (
        "the rise is within that noise, not a sign of worse calibration"
        if after - before < noise
        else "the rise exceeds that noise: see the reliability figure and the grades below"
    )
    return [
        f"ECE rose with calibration ({before:.5f} to {after:.5f}): the calibrator minimises log loss "
        f"({'fell' if loss[1] <= loss[0] else 'rose'}: {loss[0]:.5f} to {loss[1]:.5f}), not the 10-bin ECE, and a "
        f"decile's observed default rate carries a sampling error of about {noise:.5f} (one standard error); "
        f"{verdict}.",
        "",
    ]


def _results(r: ReportData) -> list[str]:
    m = r.m
    cal, ci, hl = m["calibration"], m["auc_ci"], m["hosmer_lemeshow"]
    psi = m["psi_labelled_vs_unlabelled"]
    rows = [
        ["ROC AUC, mean of folds", f"{m['cv_auc_mean']:.4f} ± {m['cv_auc_std']:.4f}", f"{len(m['fold_auc'])} folds, ± one std"],
        ["ROC AUC, out-of-fold", f"{m['oof_auc']:.4f} ({ci['level']:.0%} CI {ci['low']:.4f}-{ci['high']:.4f})",
         "DeLong interval; all labelled rows pooled"],
        ["Gini", f"{m['gini']:.4f}", "2 AUC - 1"],
        ["KS", f"{m['ks']:.4f}", "max gap of the class CDFs"],
        ["PR AUC", f"{m['pr_auc']:.4f}", f"base rate {m['default_rate']:.4f}"],
        ["Brier", f"{cal['before']['brier']:.5f} → {m['brier']:.5f}", "before → after calibration"],
        ["Log loss", f"{cal['before']['log_loss']:.5f} → {m['log_loss']:.5f}", "before → after calibration"],
        ["ECE (10 bins)", f"{cal['before']['ece']:.5f} → {m['ece']:.5f}", "before → after calibration"],
        ["Hosmer-Lemeshow", f"χ² {hl['statistic']:.1f}, {hl['df']} df, p {_p(hl['p_value'])}", "deciles of OOF PD"],
        ["PSI labelled vs scored rows", "n/a" if psi is None else f"{psi:.4f}", _psi_note(psi)],
    ]
    truth = m.get("true_pd")
    if truth:
        rows += [
            ["ROC AUC of the true PD", f"{truth['auc_labelled']:.4f}", "the ceiling, same labelled rows"],
            ["Mean absolute error vs true PD", f"{truth['mean_abs_error_labelled']:.5f} (OOF)"
             + ("" if truth["mean_abs_error_scored"] is None else f", {truth['mean_abs_error_scored']:.5f} (scored)"),
             "labelled rows; rows scored"],
        ]
    return ["## Results", *_table(["measure", "value", "note"], "lrl", rows), "", *_ece_sentence(m)]


def _master_scale(r: ReportData) -> list[str]:
    ms = r.m["master_scale"]
    rows = [
        [g["grade"], _band(g["pd_low"], g["pd_high"]), f"{g['rows']:,}", f"{g['defaults']:,}", _pct(g["default_rate"]),
         _pct(g["mean_pd"]), _p(g["jeffreys_p"]), _p(g["binomial_p"]), g["light"] or "n/a", f"{g['scored_rows']:,}"]
        for g in ms["grades"] if g["rows"] or g["scored_rows"]
    ]
    hh = ms["herfindahl"]
    lights = ms["lights"]
    scored = hh["scored"]
    return [
        "## Master scale",
        "Labelled rows graded by OOF PD, scored rows by the final model's PD. Per grade, one-sided Jeffreys and exact "
        f"binomial tests of PD underestimation; light from the smaller p: red < {RED_BELOW}, yellow < {YELLOW_BELOW}.",
        "",
        *_table(["grade", "PD band", "rows", "defaults", "observed", "mean PD", "Jeffreys p", "binomial p", "light",
                 "scored rows"], "lrrrrrrrlr", rows),
        "",
        f"Lights: {', '.join(f'{lights[c]} {c}' for c in LIGHTS)}. Herfindahl index of the grades: labelled "
        f"HHI {hh['labelled']['hhi']:.3f} (ECB HI {hh['labelled']['hi']:.3f})"
        + ("" if scored["hhi"] is None else f", scored HHI {scored['hhi']:.3f} (HI {scored['hi']:.3f})")
        + "; HI runs from 0 (even over the grades) to 1 (one grade).",
        "",
    ]


def _limits(r: ReportData) -> list[str]:
    return [
        "## Limits",
        "- Early stopping on each fold's held-out rows makes fold AUCs slightly optimistic; the calibrator is fitted "
        "on the fold models' margins and applied to the refit model's.",
        "- No time ordering is known, so validation is not out-of-time; a shift between periods is only watched through PSI.",
        "- Rows to score were never granted or refused by this model: no reject inference is attempted.",
        "",
    ]


#: The one printed page, in order: report.md, and the top of report.html.
PAGE: tuple[Section, ...] = (_title, _warnings, _data, _model, _validation, _results, _master_scale, _limits)


# -- the appendix (report.html only) ------------------------------------------------------------


def _appendix_grades(r: ReportData) -> list[str]:
    ms = r.m["master_scale"]
    rows = [
        [g["grade"], _band(g["pd_low"], g["pd_high"]), f"{g['rows']:,}", f"{g['defaults']:,}",
         _pct(g["default_rate"], 3), _pct(g["mean_pd"], 3),
         "n/a" if g["jeffreys_p"] is None else f"{g['jeffreys_p']:.4g}",
         "n/a" if g["binomial_p"] is None else f"{g['binomial_p']:.4g}", g["light"] or "n/a",
         f"{g['scored_rows']:,}", _pct(g["scored_mean_pd"], 3)]
        for g in ms["grades"]
    ]
    hh = ms["herfindahl"]
    conc = [[name, *("n/a" if v[k] is None else f"{v[k]:.4f}" for k in ("hhi", "hi", "cv"))] for name, v in hh.items()]
    return [
        "## Appendix",
        "### Master scale, every grade",
        *_table(["grade", "PD band", "rows", "defaults", "observed", "mean PD", "Jeffreys p", "binomial p", "light",
                 "scored rows", "scored mean PD"], "lrrrrrrrlrr", rows),
        "",
        "Jeffreys p: the Beta(defaults + 1/2, rows - defaults + 1/2) distribution function at the grade's mean PD. "
        "Binomial p: P(at least the observed defaults) for a Binomial(rows, mean PD). Both test whether the mean PD "
        "is below the true default rate; a PD far above the observed rate shows in the table, not in the light. With "
        "ten grades tested together, one yellow grade happens in about 40 % of well calibrated models.",
        "",
        *_table(["rows", "HHI", "ECB HI", "CV"], "lrrr", conc),
        "",
        "HHI is the sum of the squared shares of the grades; the ECB's HI = 1 + ln(HHI) / ln(K) and "
        "CV = sqrt(K Σ (share - 1/K)²) over the scale's K = 10 grades.",
        "",
    ]


def _appendix_calibration(r: ReportData) -> list[str]:
    cal, hl = r.m["calibration"], r.m["hosmer_lemeshow"]
    rows = [
        [b["bin"] + 1, f"{b['rows']:,}", _pct(a["mean_pd"], 3), _pct(b["mean_pd"], 3), _pct(b["default_rate"], 3)]
        for a, b in zip(cal["table_before"], cal["table_after"])
    ]
    return [
        "### Calibration by decile of PD (out-of-fold)",
        *_table(["decile", "rows", "mean PD before", "mean PD after", "observed"], "rrrrr", rows),
        "",
        f"Hosmer-Lemeshow on these deciles: statistic {hl['statistic']:.2f}, {hl['df']} degrees of freedom "
        f"(groups - 2: the calibrator's two parameters were fitted on these rows), p = {hl['p_value']:.4g}. On "
        "tens of thousands of rows it detects very small gaps; read it with the table.",
        "",
    ]


def _appendix_distribution(r: ReportData) -> list[str]:
    dist = r.m["pd_distribution"]
    names = {"labelled_oof": "labelled, out-of-fold", "labelled_final": "labelled, final model", "scored": "scored, final model"}
    keys = list(dist["labelled_oof"])
    rows = [[names[k], *(_pct(v.get(q), 3) for q in keys)] for k, v in dist.items() if v]
    return ["### PD quantiles", *_table(["rows", *(q.replace("p", "") + "%" for q in keys)], "l" + "r" * len(keys), rows), ""]


def _appendix_folds(r: ReportData) -> list[str]:
    m = r.m
    rows = [[k, f"{a:.4f}", rounds] for k, (a, rounds) in enumerate(zip(m["fold_auc"], m["fold_best_iterations"]), start=1)]
    return ["### Folds", *_table(["fold", "ROC AUC", "rounds"], "rrr", rows), ""]


def _appendix_importance(r: ReportData, top: int = 20) -> list[str]:
    rows = [[f"`{k}`", f"{v['mean_abs_shap']:.4f}", _pct(v["gain"], 1)]
            for k, v in list(r.m["feature_importance"].items())[:top]]
    return [f"### Feature importance, top {min(top, len(r.m['feature_importance']))}",
            *_table(["feature", "mean absolute SHAP (log-odds)", "share of gain"], "lrr", rows), ""]


#: Tables a reviewer may want after the page (report.html only), in order.
APPENDIX: tuple[Section, ...] = (_appendix_grades, _appendix_calibration, _appendix_distribution, _appendix_folds,
                                 _appendix_importance)


def _figures(r: ReportData) -> list[str]:
    res, m = r.result, r.m
    cal = m["calibration"]
    out = [
        figures.roc(res.y, res.oof_pd, m["oof_auc"]),
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


# -- rendering ----------------------------------------------------------------------------------

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def _light_classes(tokens: list) -> None:
    """Give a table cell holding a traffic light the class ``light <colour>``, for its background."""
    for cell, content in zip(tokens, tokens[1:]):
        if cell.type == "td_open" and content.type == "inline" and content.content in LIGHTS:
            cell.attrSet("class", f"light {content.content}")


def markdown_to_html(text: str) -> str:
    """Render the report's Markdown (CommonMark and tables) to an HTML fragment."""
    env: dict[str, Any] = {}
    tokens = _MARKDOWN.parse(text, env)
    _light_classes(tokens)
    return _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, env)


def _compose(sections: tuple[Section, ...], data: ReportData) -> str:
    return "\n".join(line for section in sections for line in section(data))


def render_markdown(result: TrainResult, m: dict[str, Any], context: dict[str, Any]) -> str:
    """The one-page report as Markdown (``report.md``).

    Args:
        result: the training run.
        m: its ``metrics.json`` document.
        context: data_path, data_sha256, synthetic, synthetic_record, model_tag.
    """
    return _compose(PAGE, ReportData(result, m, context))


_STYLE = """
body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:0.5em 0}
th,td{border:1px solid #ccc;padding:2px 8px}th{background:#f3f3f3}
blockquote{background:#fff3cd;border-left:4px solid #e0a800;margin:1em 0;padding:4px 12px}
code{background:#f3f3f3;padding:0 3px}
td.light.green{background:#d4edda}td.light.yellow{background:#fff3cd}td.light.red{background:#f8d7da}
.figs svg{margin:4px;vertical-align:top}
@media print{body{font-size:8pt;line-height:1.25;margin:0;max-width:none}h1{font-size:14pt}h2{font-size:11pt;margin:0.6em 0 0.2em}
p,ul{margin:0.3em 0}th,td{padding:0 4px}.figs,.appendix{break-before:page}
td.light,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def html_document(body: str, title: str) -> str:
    """A self-contained HTML page around ``body``, with the report's style (screen and print)."""
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>\n{body}</body></html>\n"
    )


def render_html(result: TrainResult, m: dict[str, Any], context: dict[str, Any], markdown_text: str) -> str:
    """The report as one self-contained HTML page: the page of ``report.md``, the figures, the appendix.

    Printed, the page of ``report.md`` is the first sheet; figures and appendix start new ones.

    Args:
        result: the training run.
        m: its ``metrics.json`` document.
        context: as for :func:`render_markdown`.
        markdown_text: the page as :func:`render_markdown` returned it.
    """
    data = ReportData(result, m, context)
    svgs = [svg for make in FIGURES for svg in make(data)]
    body = (
        markdown_to_html(markdown_text)
        + "<div class='figs'>\n<h2>Figures</h2>\n" + "\n".join(svgs) + "\n</div>\n"
        + "<div class='appendix'>\n" + markdown_to_html(_compose(APPENDIX, data)) + "</div>\n"
    )
    return html_document(body, f"{context['model_tag']} validation report")
