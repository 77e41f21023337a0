"""The API document: OpenAPI 3.1 at ``/docs.json`` and a readable page of it at ``/docs`` (and ``/``).

Every endpoint the gateway answers is described with its request, its answers, every error status
and an example. The applicant schema comes from the kinds table (:mod:`.schema`), so the document
and the checks cannot drift apart. The page is rendered server-side with Jinja2 (autoescaped): no
scripts and no external assets, so it works on a closed network.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import jinja2
from pydantic import TypeAdapter

from ..data import kinds
from ..spec import DatasetSpec
from .applicants import APPLICANTS_FIELD, REASONS_FIELD
from .schema import applicant_type, result_type

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["status", "message", "errors"],
    "properties": {
        "status": {"const": "error"},
        "message": {"type": "string", "description": "what was expected and what arrived (the first problem)"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}}},
            "description": "every problem found (up to 50), with where it is",
        },
    },
}

_ERRORS = {
    "400": "malformed: not JSON, not UTF-8, NaN/Infinity tokens, nesting too deep, an empty body",
    "401": "no valid API key (when keys are configured): send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
    "408": "the body did not arrive in time",
    "413": "the body is over the size limit",
    "415": "not `application/json` (or, on /predict, `application/vnd.apache.arrow.stream`)",
    "422": "well-formed but invalid: an unknown field, a field given twice, a value of the wrong type or out of its "
           "range, too many applicants; every problem is listed in `errors`",
    "503": "no model loaded yet, or the worker is overloaded: retry after `Retry-After` seconds",
}

_PAGE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ doc.info.title }}</title>
<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222;line-height:1.4}
h2{border-top:1px solid #ccc;padding-top:.6em}code,pre{background:#f5f5f5}pre{padding:.6em;overflow-x:auto}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
.m{font-weight:bold;color:#05a}</style></head><body>
<h1>{{ doc.info.title }}</h1>
<p>{{ doc.info.description }}</p>
<p>Version {{ doc.info.version }}. Machine-readable: <a href="/docs.json">/docs.json</a> (OpenAPI {{ doc.openapi }}).</p>
{% for path, ops in doc.paths.items() %}{% for method, op in ops.items() %}
<h2><span class="m">{{ method|upper }}</span> <code>{{ path }}</code></h2>
<p>{{ op.summary }}</p>{% if op.description %}<p>{{ op.description }}</p>{% endif %}
{% if op.requestBody %}{% for media, body in op.requestBody.content.items() %}
<p>Request <code>{{ media }}</code>{% if body.example is defined %}, for example:</p>
<pre>{{ body.example | tojson(indent=2) }}</pre>{% else %}</p>{% endif %}{% endfor %}{% endif %}
<table><tr><th>status</th><th>meaning</th></tr>
{% for status, r in op.responses.items() %}<tr><td>{{ status }}</td><td>{{ r.description }}
{% for media, c in (r.content or {}).items() %}{% if c.example is defined %}<pre>{{ c.example | tojson(indent=2) }}</pre>{% endif %}{% endfor %}
</td></tr>{% endfor %}</table>
{% endfor %}{% endfor %}
<h2>Applicant fields</h2>
<table><tr><th>field</th><th>kind</th><th>accepts</th></tr>
{% for f in fields %}<tr><td><code>{{ f.name }}</code></td><td>{{ f.kind }}</td><td>{{ f.accepts }}</td></tr>{% endfor %}
</table></body></html>
""")


def _example_applicant(spec: DatasetSpec) -> dict[str, Any]:
    example: dict[str, Any] = {spec.id: "a1"}
    for f in spec.features[:8]:
        if f.kind == "categorical":
            example[f.name] = None
        elif f.kind == "boolean":
            example[f.name] = True
        else:
            example[f.name] = f.min if f.min is not None else 0
    example[REASONS_FIELD] = 2
    return example


def _responses(ok: str, example: Any = None, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema or {}}
    if example is not None:
        content["example"] = example
    out: dict[str, Any] = {"200": {"description": ok, "content": {"application/json": content}}}
    for status, text in _ERRORS.items():
        out[status] = {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return out


def document(spec: DatasetSpec, *, max_applicants: int, max_reasons: int, max_body_bytes: int, version: str) -> dict[str, Any]:
    """The OpenAPI document of the service serving a model of ``spec``."""
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}

    def schema_of(tp: type, name: str) -> dict[str, Any]:
        """A type's JSON schema under components/schemas, nested types beside it; returns its $ref."""
        raw = TypeAdapter(tp).json_schema(ref_template="#/components/schemas/{model}")
        components.update(raw.pop("$defs", {}))
        components[name] = raw
        return {"$ref": f"#/components/schemas/{name}"}

    applicant = schema_of(applicant_type(spec, max_reasons=max_reasons), "Applicant")
    result = schema_of(result_type(spec), "PDResult")
    example = _example_applicant(spec)
    predicted = [{"pd": 0.0123, spec.id: "a1", REASONS_FIELD: [{"feature": spec.features[0].name, "value": 0,
                                                                "contribution": 0.41}]}]
    legacy_in = {k: v for k, v in example.items() if k != REASONS_FIELD}
    invalid = {"status": "error", "message": f"{APPLICANTS_FIELD}[0].{spec.features[0].name}: expected "
               f"{kinds.expected(spec.features[0], spec, source='json')}, got 'abc'",
               "errors": [{"loc": f"{APPLICANTS_FIELD}[0].{spec.features[0].name}", "msg": "..."}]}
    predict_responses = _responses("one result per applicant, in order", predicted,
                                   {"type": "array", "items": result})
    predict_responses["422"]["content"]["application/json"]["example"] = invalid
    predict_responses["200"]["content"]["application/vnd.apache.arrow.stream"] = {
        "schema": {"type": "string", "format": "binary"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"klarna-pd: probability of default ({spec.name})",
            "version": version,
            "description": spec.description or f"PD model of the {spec.name} dataset spec",
        },
        "paths": {
            "/predict": {"post": {
                "operationId": "predict",
                "summary": f"PDs of 1 to {max_applicants:,} applicants (body up to {max_body_bytes:,} bytes).",
                "description": "Every feature may be absent or null (missing). A category level never seen in training "
                               "is scored as 'other'. `reasons: k` (at most "
                               f"{max_reasons}) returns the k features pushing the PD up most. For batch clients, an "
                               "Arrow IPC stream of columns (one per feature, optional id) is accepted too, answered "
                               "in Arrow when the request's Accept asks for it.",
                "requestBody": {"required": True, "content": {
                    "application/json": {
                        "schema": {"type": "object", "required": [APPLICANTS_FIELD], "additionalProperties": False,
                                   "properties": {APPLICANTS_FIELD: {"type": "array", "minItems": 1,
                                                                     "maxItems": max_applicants, "items": applicant}}},
                        "example": {APPLICANTS_FIELD: [example]},
                    },
                    "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
                }},
                "responses": predict_responses,
            }},
            "/estimate-default-probability": {"post": {
                "operationId": "estimate_default_probability",
                "summary": "The legacy contract: one applicant object, its PD.",
                "description": "For clients of the older service: `NaN` is read as a missing value, and the id and "
                               f"target columns ({spec.id!r}, {spec.target!r}) may be sent (the target is ignored). "
                               "`prediction_eta` is the seconds spent checking and scoring.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object"}, "example": legacy_in}}},
                "responses": _responses("the PD", {"default_probability": 0.0123, "status": "success",
                                                   "prediction_eta": 0.00012}),
            }},
            "/metadata": {"get": {
                "operationId": "metadata",
                "summary": "Which model and spec are served: tag, creation time, training metrics, feature spec, versions, limits.",
                "responses": _responses("model information"),
            }},
            "/livez": {"get": {"operationId": "livez", "summary": "Liveness: the process answers.",
                               "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"operationId": "readyz",
                                "summary": "Readiness: the model loaded and passed its integrity checks.",
                                "responses": {"200": {"description": "ready"}, "503": {"description": "no model loaded"}}}},
            "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus metrics (requests by route, "
                                 "latency, refusals, served PDs, drift PSI gauges).",
                                 "responses": {"200": {"description": "Prometheus text format"}}}},
            "/docs.json": {"get": {"operationId": "docs_json", "summary": "This document.",
                                   "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/docs": {"get": {"operationId": "docs", "summary": "This document as a page.",
                              "responses": {"200": {"description": "HTML"}}}},
        },
        "components": {"schemas": components},
    }


def docs_provider(spec: DatasetSpec, settings) -> Callable[[], tuple[bytes, bytes]]:
    """A callable returning the document as JSON bytes and as an HTML page (built once, on first use)."""

    @lru_cache(maxsize=1)
    def build() -> tuple[bytes, bytes]:
        from ..versions import library_versions

        doc = document(spec, max_applicants=settings.max_applicants, max_reasons=settings.max_reasons,
                       max_body_bytes=settings.max_body_bytes, version=library_versions().get("klarna-pd", "dev"))
        fields = [{"name": f.name, "kind": f.kind, "accepts": kinds.expected(f, spec, source="json")} for f in spec.features]
        return json.dumps(doc, indent=1).encode(), _PAGE.render(doc=doc, fields=fields).encode()

    return build
