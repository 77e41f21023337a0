"""The validation report: ``report.md`` (one printed page) and ``report.html`` (that page rendered,
the figures, and an appendix of tables).

Both are built from sections: functions of a :class:`ReportData` returning Markdown lines.
:data:`PAGE` (:mod:`.page`) makes ``report.md``; the HTML page renders the same Markdown, then
:data:`FIGURES` and :data:`APPENDIX` (:mod:`.appendix`). Adding a section is one function added to
one of the tuples. Markdown becomes HTML through markdown-it-py (CommonMark with tables), never by
hand.
"""

from __future__ import annotations

from html import escape
from typing import Any

from markdown_it import MarkdownIt

from ..cv import TrainResult
from ..masterscale import LIGHTS
from .appendix import APPENDIX, FIGURES
from .common import ReportData, Section
from .page import PAGE

__all__ = ["APPENDIX", "FIGURES", "PAGE", "ReportData", "Section", "html_document", "markdown_to_html",
           "render_html", "render_markdown"]

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
