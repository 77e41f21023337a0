"""What a risk team sees: the validation report and metrics.json on the synthetic stand-in and on
the UCI Taiwan file, the report as a browser renders it, and how training tells synthetic data."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from klarna_pd.spec import klarna_spec, load_spec
from klarna_pd.synth import write_synthetic
from klarna_pd.synth.provenance import record_path
from klarna_pd.training import TrainConfig
from klarna_pd.training.masterscale import GRADES
from klarna_pd.training.pipeline import run
from klarna_pd.training.report import html_document, markdown_to_html

from ..helpers import browser
from ..helpers.paths import UCI, UCI_SPEC

pytestmark = [pytest.mark.training]

# Enough to exercise every part of the report on the whole UCI file in seconds; the 5-fold quality
# bar on it is tests/training/test_training.py's.
QUICK = TrainConfig(folds=2, seed=0, params={"learning_rate": 0.2}, early_stopping_rounds=20)


@pytest.fixture(scope="module")
def uci_trained(tmp_path_factory, bentoml_home):
    if not UCI.exists():
        pytest.skip("../shared/data/uci_taiwan is not beside the checkout")
    return run(UCI, load_spec(UCI_SPEC), tmp_path_factory.mktemp("uci_out"), QUICK, log=lambda *_: None)


@pytest.fixture(scope="module", params=["synthetic", "uci"])
def trained_run(request):
    return request.getfixturevalue("small_trained" if request.param == "synthetic" else "uci_trained")


@pytest.fixture(scope="session")
def chromium():
    path, why = browser.find_or_install()
    if path is None:
        pytest.skip(why)
    return path


def _metrics(summary):
    return json.loads((summary.out / "metrics.json").read_text())


# -- metrics.json and report.md on both datasets --------------------------------------------------


def test_master_scale_in_metrics(trained_run):
    m = _metrics(trained_run)
    ms = m["master_scale"]
    assert len(ms["grades"]) == GRADES and [g["grade"] for g in ms["grades"]] == list(range(1, GRADES + 1))
    assert sum(g["rows"] for g in ms["grades"]) == m["rows"]["labelled"]
    assert sum(g["defaults"] for g in ms["grades"]) == m["rows"]["defaults"]
    assert sum(g["scored_rows"] for g in ms["grades"]) == m["rows"]["unlabelled"]
    for g in ms["grades"]:
        if g["rows"]:
            assert g["pd_low"] <= g["mean_pd"] < g["pd_high"]
            assert 0 <= g["jeffreys_p"] <= 1 and 0 <= g["binomial_p"] <= 1
            assert g["light"] in ("green", "yellow", "red")
        else:
            assert g["light"] is None
    assert sum(ms["lights"].values()) == sum(1 for g in ms["grades"] if g["rows"])
    hh = ms["herfindahl"]["labelled"]
    assert 1 / GRADES <= hh["hhi"] <= 1 and 0 <= hh["hi"] <= 1
    assert ms["light_thresholds"] == {"red_below": 0.01, "yellow_below": 0.05}


def test_validation_measures_in_metrics(trained_run):
    m = _metrics(trained_run)
    ci = m["auc_ci"]
    assert ci["low"] < m["oof_auc"] < ci["high"] and ci["auc"] == pytest.approx(m["oof_auc"]) and ci["level"] == 0.95
    hl = m["hosmer_lemeshow"]
    # Deciles of the PDs, fewer when equal PDs (isotonic calibration's blocks) span a decile's edge.
    # out of sample (cross-fitted PDs): the degrees of freedom are the groups, nothing fitted on them
    assert 3 <= hl["groups"] <= 10 and hl["df"] == hl["groups"] and 0 <= hl["p_value"] <= 1
    assert m["calibration"]["ece_noise"] > 0
    dist = m["pd_distribution"]
    assert list(dist["labelled_oof"]) == ["p1", "p10", "p50", "p90", "p99"]
    assert bool(dist["scored"]) == (m["rows"]["unlabelled"] > 0)


def test_true_pd_comparison_only_on_synthetic_data(small_trained, uci_trained):
    truth = _metrics(small_trained)["true_pd"]
    assert 0.8 < truth["auc_labelled"] < 1 and truth["oof_auc"] == pytest.approx(_metrics(small_trained)["oof_auc"])
    assert 0 < truth["mean_abs_error_labelled"] < 0.05 and 0 < truth["mean_abs_error_scored"] < 0.05
    assert _metrics(uci_trained)["true_pd"] is None
    assert "ROC AUC of the true PD" in (small_trained.out / "report.md").read_text()
    assert "true PD" not in (uci_trained.out / "report.md").read_text()


def test_report_page_shows_the_master_scale(trained_run):
    md = (trained_run.out / "report.md").read_text()
    lines = md.splitlines()
    assert len(lines) < 60  # one printed page (the browser test prints it)
    for section in ("## Data", "## Model", "## Validation", "## Results", "## Master scale", "## Limits"):
        assert section in lines
    start = lines.index("## Master scale")
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("| grade |"))
    assert lines[header].split(" | ")[-2:] == ["light", "scored rows |"]
    grades = [ln for ln in lines[header + 2:] if ln.startswith("| ")]
    m = _metrics(trained_run)["master_scale"]
    assert len(grades) == sum(1 for g in m["grades"] if g["rows"] or g["scored_rows"])
    assert "Herfindahl index of the grades: labelled HHI" in md
    assert "DeLong" in md and "Hosmer-Lemeshow" in md


def test_an_ece_that_rises_with_calibration_is_explained(small_trained):
    from klarna_pd.training.report import render_markdown

    m = json.loads((small_trained.out / "metrics.json").read_text())
    m["calibration"]["after"]["ece"] = m["calibration"]["before"]["ece"] + 1e-4
    md = render_markdown(small_trained.result, m, {"model_tag": "t", "data_path": "d", "data_sha256": "0" * 64})
    assert "ECE rose with calibration" in md and "within that noise" in md
    m["calibration"]["after"]["ece"] = m["calibration"]["before"]["ece"] - 1e-4
    assert "ECE rose" not in render_markdown(small_trained.result, m, {"model_tag": "t", "data_path": "d",
                                                                       "data_sha256": "0" * 64})


def test_models_and_outputs_are_named_after_the_spec(small_trained, uci_trained, bentoml_home):
    import bentoml

    assert small_trained.model_tag.startswith("klarna-pd:")
    assert uci_trained.model_tag.startswith("uci_taiwan-pd:")
    stored = bentoml.models.get(uci_trained.model_tag)
    assert stored.info.labels["spec"] == "uci_taiwan" and stored.info.metadata["spec"]["name"] == "uci_taiwan"
    assert len(stored.info.labels["data_sha256"]) == 64 and len(stored.info.labels["settings_sha256"]) == 64
    assert _metrics(uci_trained)["spec_name"] == "uci_taiwan"


# -- the synthetic stand-in, recognised by provenance --------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    data = tmp_path_factory.mktemp("tiny") / "dataset.csv"
    write_synthetic(data, rows=3_000, seed=2)
    return data


def _tiny_run(data, out, log=lambda *_: None):
    return run(data, klarna_spec(), out, TrainConfig(folds=2, early_stopping_rounds=20), store=False, log=log)


def test_the_stand_in_is_recognised_whatever_its_path(tiny, tmp_path):
    # data/dataset.csv is where the real file belongs: the name alone proves nothing.
    said = []
    m = _tiny_run(tiny, tmp_path / "a", log=said.append).metrics
    assert m["input"]["synthetic"] is True and m["input"]["synthetic_record"]["path"] == str(record_path(tiny))
    assert f"  TRAINING ON THE SYNTHETIC STAND-IN: {tiny}" in said  # in capitals on the console
    assert "**Trained on the synthetic stand-in**" in (tmp_path / "a" / "report.md").read_text()
    copy = tmp_path / "real" / "dataset.csv"  # the same bytes without their record
    copy.parent.mkdir()
    shutil.copy(tiny, copy)
    said.clear()
    m = _tiny_run(copy, tmp_path / "b", log=said.append).metrics
    assert m["input"]["synthetic"] is False and m["true_pd"] is None
    assert "synthetic" not in (tmp_path / "b" / "report.md").read_text()
    assert not any("SYNTHETIC" in line for line in said)


# -- the report in a real browser ----------------------------------------------------------------


def test_report_html_renders_as_a_reader_sees_it(trained_run, chromium, tmp_path):
    page = trained_run.out / "report.html"
    dom = browser.Dom(browser.dump_dom(chromium, page))
    assert dom.count("h1") == 1
    assert dom.count("table") >= 6 and dom.count("th") >= 10 * 2  # every table has a header row of th cells
    assert dom.count("thead") == dom.count("table")
    assert dom.count("ul") >= 1 and dom.count("li") >= 3  # the limits are a list
    assert "*" not in dom.text and "`" not in dom.text, [s for s in dom.text.split("  ") if "*" in s or "`" in s][:3]
    assert dom.count("svg") >= 5
    assert "light" in " ".join(dom.classes) and any(c.startswith("light ") for c in dom.classes)
    synthetic = _metrics(trained_run)["input"]["synthetic"]
    assert dom.count("blockquote") == (1 if synthetic else 0)  # one warning box, not one per line
    width, height = browser.screenshot(chromium, page, tmp_path / "report.png")
    assert (width, height) == (1100, 6000)
    with Image.open(tmp_path / "report.png") as shot:
        colours = {rgb for _, rgb in shot.convert("RGB").getcolors(maxcolors=1 << 20)}
        ink = sum(n for n, rgb in shot.convert("L").getcolors() if rgb < 200) / (width * height)
    assert ink > 0.01  # text, tables and figures, not an empty page
    assert (0xD4, 0xED, 0xDA) in colours  # a green traffic-light cell is painted
    assert ((0xFF, 0xF3, 0xCD) in colours) == synthetic  # the warning box, on synthetic data only


def test_report_md_prints_on_one_page(trained_run, chromium, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(html_document(markdown_to_html((trained_run.out / "report.md").read_text()), "page"))
    assert browser.print_pages(chromium, page, tmp_path / "page.pdf") == 1
    # The check can fail: the page with its tables twice over does not fit.
    md = (trained_run.out / "report.md").read_text()
    page.write_text(html_document(markdown_to_html(md + "\n" + md), "twice"))
    assert browser.print_pages(chromium, page, tmp_path / "twice.pdf") >= 2


def test_rendering_uses_markdown_not_hand_rolled_rules():
    html = markdown_to_html("# T `x`\n\n> **a**\n> b\n\n- one\n- two\n\n| a | b |\n|---|---:|\n| 1 | red |\n")
    assert "<h1>T <code>x</code></h1>" in html
    assert html.count("<blockquote>") == 1 and "<strong>a</strong>" in html
    assert "<ul>\n<li>one</li>" in html and "<th>a</th>" in html
    assert '<td style="text-align:right" class="light red">red</td>' in html or \
        '<td class="light red" style="text-align:right">red</td>' in html
    assert np.char.count(html, "*").item() == 0
