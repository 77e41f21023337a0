"""The klarna-pd BentoML service: probability of default over HTTP.

    bentoml serve            # serves klarna-pd:latest from the model store on :3000

Endpoints:

- ``POST /predict``: ``{"applicants": [{...}, ...]}`` -> one ``{"pd": ...}`` per applicant, in
  order; adaptive batching merges concurrent requests into one model call.
- ``POST /estimate-default-probability``: the legacy single-applicant contract.
- ``GET /metadata``: model tag, creation time, training metrics, feature spec, versions.
- ``/livez``, ``/readyz`` (ready once the model loaded and passed its integrity check), ``/metrics``.

Settings come from ``KLARNA_PD_*`` environment variables (:mod:`klarna_pd.settings`).
"""

from __future__ import annotations

import gc
import logging

import bentoml
from _bentoml_sdk import IODescriptor
from bentoml.exceptions import BentoMLException

from klarna_pd.errors import ModelError
from klarna_pd.serving import monitoring
from klarna_pd.serving.auth import APIKeyAuth
from klarna_pd.serving.drift import DriftMonitor
from klarna_pd.serving.errors import ErrorEnvelope, HTTPError, RequestError
from klarna_pd.serving.requests import merge, predict_input_spec
from klarna_pd.serving.routes import build_app
from klarna_pd.serving.schema import applicant_type, result_type
from klarna_pd.serving.scorer import Scorer
from klarna_pd.settings import Settings
from klarna_pd.store.local import load_stored, record_of_stored
from klarna_pd.store.records import ModelRecord, load_directory, record_of_directory
from klarna_pd.versions import library_versions

logger = logging.getLogger("klarna_pd.service")

settings = Settings()
# Declared at class scope below so that `bentoml build` packs it into the Bento.
model_ref = bentoml.models.BentoModel(settings.model_tag)


def _record() -> ModelRecord:
    if settings.model_dir is not None:
        return record_of_directory(settings.model_dir)
    if model_ref.stored is None:
        raise BentoMLException(
            f"model {settings.model_tag!r} is not in the BentoML model store; train one with "
            "`python train.py`, or pull one with `python -m klarna_pd.store pull`"
        )
    return record_of_stored(model_ref.stored)


# The request and response types follow the served model's spec (recorded in its metadata).
SPEC = _record().spec
MAX_REASONS = len(SPEC.features)
Applicant = applicant_type(SPEC, max_reasons=MAX_REASONS)
PDResult = result_type(SPEC)


def _drift_monitor(pd_model) -> DriftMonitor | None:
    if not settings.drift_window or not pd_model.reference:
        if settings.drift_window:
            logger.warning("model %s has no training reference: no drift gauges", settings.model_tag)
        return None
    encoder = pd_model.encoder
    return DriftMonitor(
        pd_model.reference, encoder.feature_names_, encoder.other_code_,
        window=settings.drift_window, min_rows=settings.drift_min_rows,
        gauges=monitoring.set_psi, count_unknown=monitoring.count_unknown_levels,
    )


def _current() -> KlarnaPD | None:
    try:
        return bentoml.get_current_service()
    except BentoMLException:
        return None


def _unavailable() -> str | None:
    service = _current()
    if service is None or getattr(service, "scorer", None) is None:
        return f"no model loaded: {getattr(service, 'load_error', None) or 'starting'}; retry later"
    return None


routes = build_app(
    get_scorer=lambda: getattr(_current(), "scorer", None),
    get_error=lambda: getattr(_current(), "load_error", None),
    max_body_bytes=settings.max_body_bytes,
)


@bentoml.asgi_app(routes, path="/")
@bentoml.service(
    name="klarna-pd",
    workers=settings.workers,
    traffic={"timeout": 30},
    labels={"owner": "risk", "project": "klarna-pd"},
)
class KlarnaPD:
    if settings.model_dir is None:
        # Packed into the Bento by `bentoml build`. A pod serving a model pulled from S3
        # (KLARNA_PD_MODEL_DIR) does not declare it, so BentoML does not look it up.
        model = model_ref

    def __init__(self) -> None:
        self.scorer: Scorer | None = None
        self.load_error: str | None = None
        try:
            if settings.model_dir is not None:
                record, pd_model = record_of_directory(settings.model_dir), load_directory(settings.model_dir)
            else:
                record, pd_model = record_of_stored(self.model), load_stored(self.model)
        except ModelError as exc:
            # Stay up but not ready: the pod shows why, and nothing is scored with a bad model.
            self.load_error = str(exc)
            logger.error("model refused, not serving: %s", exc)
            return
        self.scorer = Scorer(
            pd_model,
            drift=_drift_monitor(pd_model),
            info={
                "model_tag": record.tag,
                "created": record.created,
                "source": str(settings.model_dir) if settings.model_dir is not None else "model store",
                "serving_library_versions": library_versions(),
                "batching": {
                    "adaptive": settings.adaptive_batching,
                    "max_batch_size": settings.max_batch_size,
                    "max_latency_ms": settings.max_latency_ms,
                },
            },
        )
        logger.info("serving model %s", record.tag)
        # The cyclic collector's full passes over the ~200k objects a worker holds showed as
        # 100-300 ms stalls in the latency tail (py-spy; single-applicant p99 at 16 connections
        # fell from ~320 ms to ~23 ms without them). What is loaded now lives as long as the
        # worker, so freeze it, and collect the young generations less often.
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)

    def __is_ready__(self) -> bool:
        return self.scorer is not None

    @bentoml.api(
        batchable=settings.adaptive_batching,
        max_batch_size=settings.max_batch_size,
        max_latency_ms=settings.max_latency_ms,
        input_spec=predict_input_spec(
            lambda: SPEC, Applicant, IODescriptor, max_body_bytes=settings.max_body_bytes,
            max_applicants=settings.max_applicants, max_reasons=MAX_REASONS, unavailable=_unavailable,
        ),
    )
    def predict(self, applicants: list[Applicant]) -> list[PDResult]:
        """Probability of default of each applicant, in order (adaptive batching unless turned off)."""
        if self.scorer is None:  # the input spec answers 503 first; this guards direct calls
            raise HTTPError(RequestError(503, f"no model loaded: {self.load_error}"))
        return self.scorer.score(merge(applicants))


if settings.api_keys:
    KlarnaPD.add_asgi_middleware(APIKeyAuth, keys=settings.api_keys, on_reject=monitoring.count_rejected)
KlarnaPD.add_asgi_middleware(ErrorEnvelope, on_reject=monitoring.count_rejected)

# BentoML derives a root output's media type from its JSON schema, rebuilt on every response
# (about a fifth of the request time on a single-applicant /predict, profiled with py-spy).
KlarnaPD.apis["predict"].output_spec.media_type = "application/json"
