"""The request and response types as the OpenAPI document shows them, built from the kinds table.

These types only describe: requests are parsed by :mod:`.applicants`, which applies the same
table (:mod:`klarna_pd.data.kinds`), so the document and the checks cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import ConfigDict, Field, WithJsonSchema
from typing_extensions import NotRequired, TypedDict

from ..data import kinds
from ..spec import DatasetSpec
from .applicants import REASONS_FIELD


def _nullable(schema: dict[str, Any], description: str) -> Any:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return Annotated[Optional[Any], WithJsonSchema({**schema, "type": [*types, "null"], "description": description})]


def applicant_type(spec: DatasetSpec, *, max_reasons: int) -> type:
    """The TypedDict of one applicant: every feature optional (absent or null = missing)."""
    fields: dict[str, Any] = {}
    for f in spec.features:
        schema = dict(kinds.JSON_SCHEMA[f.kind])
        if f.min is not None:
            schema["minimum"] = f.min
        if f.max is not None:
            schema["maximum"] = f.max
        fields[f.name] = _nullable(schema, f"{f.description or f.kind}: {kinds.expected(f, spec, source='json')}")
    fields[spec.id] = _nullable({"type": ["string", "integer"], "maxLength": kinds.MAX_TEXT}, "optional id, echoed back")
    fields[REASONS_FIELD] = _nullable(
        {"type": "integer", "minimum": 0, "maximum": max_reasons},
        "how many reason codes (features pushing the PD up) to return",
    )
    td = TypedDict("Applicant", fields, total=False)  # type: ignore[operator]
    td.__pydantic_config__ = ConfigDict(extra="forbid", title="Applicant")  # type: ignore[attr-defined]
    return td


def result_type(spec: DatasetSpec) -> type:
    """The TypedDict of one scored applicant."""
    reason = TypedDict(  # type: ignore[operator]
        "Reason",
        {
            "feature": Annotated[str, Field(description="feature name")],
            "value": Annotated[Any, Field(description="the applicant's value (a level name for categoricals; null if missing)")],
            "contribution": Annotated[float, Field(description="log-odds this feature adds to the raw score")],
            "missing": Annotated[bool, Field(description="the applicant has no value for this feature")],
            "meaning": NotRequired[Annotated[str, Field(description="what the missing value says, e.g. 'no payment history'")]],
        },
    )
    fields: dict[str, Any] = {
        "pd": Annotated[float, Field(description="calibrated probability of default, in (0, 1)")],
        spec.id: NotRequired[Annotated[str, Field(description="the applicant's id, when sent")]],
        REASONS_FIELD: NotRequired[Annotated[list[reason], Field(description="top features pushing the PD up")]],
    }
    return TypedDict("PDResult", fields)  # type: ignore[operator]
