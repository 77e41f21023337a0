"""``/predict`` as a BentoML API, for adaptive batching (``KLARNA_PD_ADAPTIVE_BATCHING=true``).

The gateway (:mod:`.gateway`) has already read, checked and parsed the request; it leaves the
:class:`~.applicants.Applicants` in the request scope and hands the request to this API. The
input model's ``from_http_request`` picks them up and gives the API one *slot* per applicant,
``(Applicants, position)``: slots are what BentoML's batcher concatenates and splits, so a merged
batch is runs of slots from several requests, each already validated. :func:`predict_batch`
scores a merged batch with one model call; if that call fails, each request is scored on its own
and only a request that fails alone is marked failed (the gateway answers it with a 500).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field, create_model

from ..data.batch import Batch
from .applicants import Applicants
from .scorer import Scorer

logger = logging.getLogger("klarna_pd.serving")

APPLICANTS_KEY = "klarna_pd.applicants"
Slot = tuple[Applicants, int]


def _runs(slots: Sequence[Slot]) -> list[tuple[Applicants, list[int]]]:
    """Consecutive slots of one request, as (its applicants, the positions taken)."""
    runs: list[tuple[Applicants, list[int]]] = []
    for owner, i in slots:
        if runs and runs[-1][0] is owner:
            runs[-1][1].append(i)
        else:
            runs.append((owner, [i]))
    return runs


def _take(owner: Applicants, rows: list[int]) -> Applicants:
    if len(rows) == len(owner) and rows == list(range(len(owner))):
        return owner
    index = np.array(rows)
    return Applicants(owner.batch.take(index), [owner.reasons[r] for r in rows])


def merge(slots: Sequence[Slot]) -> Applicants:
    """One :class:`Applicants` of the slots, in order (runs from one request stay whole)."""
    parts = [_take(owner, rows) for owner, rows in _runs(slots)]
    if len(parts) == 1:
        return parts[0]
    return Applicants(Batch.concat([p.batch for p in parts]), [k for p in parts for k in p.reasons])


def predict_batch(scorer: Scorer, slots: Sequence[Slot]) -> list[dict[str, Any]]:
    """Results for merged slots, in order; a failure is confined to the request that causes it."""
    try:
        return scorer.score(merge(slots))
    except Exception:
        logger.exception("a merged batch failed; scoring its %d requests one by one", len(_runs(slots)))
    results: list[dict[str, Any]] = []
    for owner, rows in _runs(slots):
        try:
            results.extend(scorer.score(_take(owner, rows)))
        except Exception as exc:
            logger.exception("a request failed inside a merged batch")
            owner.error = f"{type(exc).__name__}: {exc}"
            results.extend({"pd": float("nan")} for _ in rows)
    return results


def predict_input_spec(applicant_type: type, base: type, *, max_applicants: int) -> type:
    """The input model of ``predict(self, applicants: list[Applicant])``.

    Args:
        applicant_type: the documented type of one applicant (OpenAPI only).
        base: BentoML's ``IODescriptor`` class.
        max_applicants: the most applicants per request (documented).
    """
    fields: dict[str, Any] = {
        "applicants": (
            list[applicant_type],  # type: ignore[valid-type]
            Field(min_length=1, max_length=max_applicants, description="applicants to score, results in the same order"),
        )
    }
    model = create_model("PredictInput", __base__=base, **fields)

    async def from_http_request(cls, request, serde: Any) -> Any:
        applicants = request.scope.get(APPLICANTS_KEY)
        if applicants is None:
            raise RuntimeError("the predict API takes requests from the gateway only (klarna_pd.serving.gateway)")
        return cls.model_construct(applicants=[(applicants, i) for i in range(len(applicants))])

    model.from_http_request = classmethod(from_http_request)
    return model
