"""The one printed page: ``report.md``, and the top of ``report.html``.

A section is a function of :class:`ReportData` returning Markdown lines; :data:`PAGE` lists them
in order. The page must print on one sheet (the tests print it in chromium): about 60 lines.
"""

from __future__ import annotations

from typing import Any

from ..masterscale import LIGHTS, RED_BELOW, YELLOW_BELOW
from ..metrics import FEW_EVENTS
from .common import ReportData, Section, band, pct, pval, table


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
    given = r.m.get("input", {})
    rarer = given.get("rarer_outcome_rows")
    if rarer is not None and rarer < FEW_EVENTS:
        lines += [f"> **Only {rarer:,} labelled rows of the rarer outcome** (fewer than {FEW_EVENTS}): the "
                  "model learns from few events, and the AUC interval and the Hosmer-Lemeshow test below are "
                  "rough approximations at this count.", ""]
    for key, title, why in (
        ("all_missing_features", "Missing in every labelled row",
         "The model cannot use these features; check the extract before trusting this model."),
        ("constant_features", "The same value in every labelled row",
         "The model cannot use these features, whatever the rows to score hold; check the extract."),
        ("features_with_grouped_thousands", "Most fractional values with exactly three decimals",
         "Thousands separators read as decimal points (2.006 for 2,006)? Check the export."),
    ):
        names = given.get(key) or []
        if names:
            lines += [f"> **{title}**: {', '.join(f'`{c}`' for c in names)}. {why}", ""]
    against = given.get("directions_against_the_data") or {}
    if against:
        shown = ", ".join(f"`{n}` ({d['declared']:+d}, Spearman {d['spearman']:+.3f})"
                          for n, d in against.items())
        lines += [f"> **Declared directions the labelled rows contradict**: {shown}. The constraint holds "
                  "in the model anyway; check the direction (the appendix's constraint sets show its "
                  "AUC cost when measured).", ""]
    for names in given.get("identical_features") or []:
        lines += [f"> **Equal in every labelled row**: {', '.join(f'`{c}`' for c in names)}. The trees "
                  "may split on any of them: a monotone constraint on one does not hold for the others.", ""]
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
        + f"Calibration: {m['calibration']['method']} on the booster's margin. " + _strongest(m),
        "",
    ]


def _strongest(m: dict[str, Any]) -> str:
    """The features that move the PD most; those the trees never use are no one's strongest."""
    used = [k for k, v in m["feature_importance"].items() if v["mean_abs_shap"] > 0][:6]
    if not used:
        return "The trees use no feature: every applicant gets the same PD."
    names = ", ".join(f"`{k}`" for k in used)
    return f"Strongest features (mean absolute SHAP on the log-odds): {names}."


def _validation(r: ReportData) -> list[str]:
    cal = r.m["calibration"]
    return [
        "## Validation",
        f"Stratified {_folds(r.m)} cross-validation, early stopping inside each fold; every row's "
        "out-of-fold (OOF) PD comes from models that did not see it, calibrated by a calibrator that did "
        "not see it either: the calibration figures use these, the AUC and ROC the order the served "
        "model gives them. "
        # Models trained before the fold count was recorded compared with 5.
        f"Platt and isotonic calibration compared by a further {cal.get('comparison_folds', 5)}-fold "
        "cross-validation (log loss "
        + ", ".join(f"{k} {v['log_loss']:.5f}" for k, v in cal["methods_cross_validated"].items())
        + "). " + _served(r.m),
        "",
    ]


def _folds(m: dict[str, Any]) -> str:
    st = m["stability"]
    repeats = st.get("repeats", 1)
    k = st["folds"] // max(repeats, 1)
    return f"{k}-fold" + (f", repeated {repeats} times with other seeds," if repeats > 1 else "")


def _served(m: dict[str, Any]) -> str:
    """What is served, and how much one held-out fold moves the AUC and log loss (m["stability"])."""
    pred, st = m["predictor"], m["stability"]
    served = (f"Served: the mean of the {pred['fold_models']} fold models, merged into one booster "
              f"({pred['trees']:,} trees)" if pred["kind"] == "folds" else
              f"Served: one booster refit on all labelled rows with the folds' mean number of rounds ({pred['trees']:,} trees)")
    return (f"{served}. Over {st['folds']} folds ({st['repeats']} repeat(s)) AUC {st['auc']['mean']:.4f} ± "
            f"{st['auc']['std']:.4f} (min {st['auc']['min']:.4f}, max {st['auc']['max']:.4f}), calibrated log loss "
            f"{st['log_loss']['mean']:.5f} ± {st['log_loss']['std']:.5f}" + _in_the_appendix(m) + ".")


def _in_the_appendix(m: dict[str, Any]) -> str:
    there = [what for what, shown in (("constraint costs", (m.get("constraints") or {}).get("sets")),
                                      ("the parameter search", m.get("tuning"))) if shown]
    return f"; {' and '.join(there)} in the appendix" if there else ""


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
    if f"{loss[0]:.5f}" == f"{loss[1]:.5f}":
        moved = f"unchanged at {loss[1]:.5f}"
    else:
        moved = f"{'fell' if loss[1] < loss[0] else 'rose'}: {loss[0]:.5f} to {loss[1]:.5f}"
    return [
        f"ECE rose with calibration ({before:.5f} to {after:.5f}): the calibrator minimises log loss "
        f"({moved}), not the 10-bin ECE, and a "
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
        ["Hosmer-Lemeshow", *(
            [f"χ² {hl['statistic']:.1f}, {hl['df']} df, p {pval(hl['p_value'])}", "deciles of OOF PD"]
            if hl["p_value"] is not None else ["n/a", "PDs in fewer than 3 groups: no test"])],
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
    return ["## Results", *table(["measure", "value", "note"], "lrl", rows), "", *_ece_sentence(m)]


def _master_scale(r: ReportData) -> list[str]:
    ms = r.m["master_scale"]
    rows = [
        [g["grade"], band(g["pd_low"], g["pd_high"]), f"{g['rows']:,}", f"{g['defaults']:,}", pct(g["default_rate"]),
         pct(g["mean_pd"]), pval(g["jeffreys_p"]), pval(g["binomial_p"]), g["light"] or "n/a", f"{g['scored_rows']:,}"]
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
        *table(["grade", "PD band", "rows", "defaults", "observed", "mean PD", "Jeffreys p", "binomial p", "light",
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
