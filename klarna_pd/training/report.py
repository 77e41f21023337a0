"""The one-page validation report: ``report.md`` for reading anywhere, ``report.html`` with figures."""

from __future__ import annotations

from html import escape
from typing import Any

from . import figures
from .cv import TrainResult


def _row(name: str, value: Any, note: str = "") -> str:
    return f"| {name} | {value} | {note} |"


def _results_table(m: dict[str, Any]) -> list[str]:
    cal = m["calibration"]
    psi = m["psi_labelled_vs_unlabelled"]
    psi_note = "" if psi is None else ("stable (< 0.1)" if psi < 0.1 else "watch (0.1-0.25)" if psi < 0.25 else "shifted (> 0.25)")
    return [
        "| measure | value | note |",
        "|---|---|---|",
        _row("ROC AUC, mean of folds", f"{m['cv_auc_mean']:.4f} ± {m['cv_auc_std']:.4f}", f"{len(m['fold_auc'])} folds, ± one std"),
        _row("ROC AUC, out-of-fold", f"{m['oof_auc']:.4f}", "all labelled rows pooled"),
        _row("Gini", f"{m['gini']:.4f}", "2 AUC - 1"),
        _row("KS", f"{m['ks']:.4f}", "max gap of the class CDFs"),
        _row("PR AUC", f"{m['pr_auc']:.4f}", f"base rate {m['default_rate']:.4f}"),
        _row("Brier", f"{cal['before']['brier']:.5f} → {m['brier']:.5f}", "before → after calibration"),
        _row("Log loss", f"{cal['before']['log_loss']:.5f} → {m['log_loss']:.5f}", "before → after calibration"),
        _row("ECE (10 bins)", f"{cal['before']['ece']:.5f} → {m['ece']:.5f}", "before → after calibration"),
        _row("PSI labelled vs scored rows", "n/a" if psi is None else f"{psi:.4f}", psi_note),
    ]


def render_markdown(result: TrainResult, m: dict[str, Any], context: dict[str, Any]) -> str:
    """The report as Markdown; ``context`` has data_path, data_sha256, synthetic, model_tag."""
    spec = result.model.spec
    rows = m["rows"]
    kinds = {k: len(spec.names_of(k)) for k in ("numeric", "ordinal", "categorical", "boolean")}
    monotone = [f.name for f in spec.features if f.monotone]
    cal = m["calibration"]
    lines = [f"# PD model validation report: `{context['model_tag']}`", ""]
    if context.get("synthetic"):
        lines += [
            "> **Trained on the synthetic stand-in**, not on the real file: the figures below describe",
            "> the generator's known true PD, not real customers.",
            "",
        ]
    empty = m.get("input", {}).get("all_missing_features") or []
    if empty:
        lines += [
            f"> **Missing in every labelled row**: {', '.join(f'`{c}`' for c in empty)}. The model cannot",
            "> use these features; check the extract before trusting this model.",
            "",
        ]
    lines += [
        "## Data",
        f"`{context['data_path']}` (sha256 `{context['data_sha256'][:16]}…`), spec `{spec.name}`: "
        f"{rows['labelled']:,} labelled rows ({rows['defaults']:,} defaults, rate {m['default_rate']:.4%}) and "
        f"{rows['unlabelled']:,} rows to score; {len(spec.features)} features "
        f"({', '.join(f'{v} {k}' for k, v in kinds.items() if v)}).",
        "",
        "## Model",
        f"LightGBM gradient-boosted trees: {m['params']['num_boost_round']} rounds, learning rate "
        f"{m['params']['learning_rate']}, {m['params']['num_leaves']} leaves, at least "
        f"{m['params']['min_data_in_leaf']} rows per leaf, L2 {m['params']['lambda_l2']}. "
        + (f"Monotone (PD never falls as these worsen): {', '.join(monotone)}. " if monotone and "monotone_constraints" in m["params"] else "")
        + f"Calibration: **{cal['method']}** on the booster's margin.",
        "",
        "## Validation",
        f"Stratified {len(m['fold_auc'])}-fold cross-validation; each fold stops early on its own held-out rows. "
        "Every row's out-of-fold (OOF) prediction comes from the one model that did not see it; all figures use "
        "these. Platt and isotonic calibration were compared by a further 5-fold cross-validation on the OOF margins "
        f"(log loss: " + ", ".join(f"{k} {v['log_loss']:.5f}" for k, v in cal["methods_cross_validated"].items())
        + "). The final model is refit on all labelled rows with the mean of the folds' rounds.",
        "",
        "## Results",
        *_results_table(m),
        "",
        "Strongest features (mean |SHAP| on the log-odds): "
        + ", ".join(f"`{k}`" for k in list(m["feature_importance"])[:8])
        + ".",
        "",
        "## Limits",
        "- Early stopping on each fold's held-out rows makes fold AUCs slightly optimistic (by the choice of one number).",
        "- The calibrator is fitted on the fold models' margins and applied to the refit model's, which trains on 1/k more rows.",
        "- No time ordering is known, so validation is not out-of-time; a shift between periods is only watched through PSI.",
        "- Rows to score were never granted or refused by this model: no reject inference is attempted.",
        "",
    ]
    return "\n".join(lines)


def render_html(result: TrainResult, m: dict[str, Any], context: dict[str, Any], markdown_text: str) -> str:
    """The report as one self-contained HTML page with the figures."""
    body = []
    in_table = False
    for line in markdown_text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("# "):
            body.append(f"<h1>{escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{escape(line[3:])}</h2>")
        elif line.startswith("> "):
            body.append(f"<p class='warn'>{escape(line[2:])}</p>")
        elif line.startswith("- "):
            body.append(f"<li>{escape(line[2:])}</li>")
        elif line:
            body.append(f"<p>{escape(line)}</p>")
    if in_table:
        body.append("</table>")
    cal = m["calibration"]
    figs = [
        figures.roc(result.y, result.oof_pd, m["oof_auc"]),
        figures.reliability(cal["table_before"], cal["table_after"]),
        figures.score_distribution(result.y, result.oof_pd),
        figures.importance(m["feature_importance"]),
    ]
    style = (
        "body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td{border:1px solid #ccc;padding:2px 8px}"
        ".warn{background:#fff3cd;padding:6px}.figs svg{margin:4px}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(context['model_tag'])} validation report</title><style>{style}</style></head><body>"
        + "\n".join(body)
        + "<h2>Figures</h2><div class='figs'>"
        + "\n".join(figs)
        + "</div></body></html>\n"
    )
