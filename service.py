"""The klarna-pd BentoML service: probability of default over HTTP.

    bentoml serve    # klarna-pd:latest from the model store, :3000

Endpoints (answered by :mod:`klarna_pd.serving.gateway`, a middleware in front of BentoML's routing):

- ``POST /predict``: ``{"applicants": [{...}, ...]}`` (or an Arrow IPC stream of columns) -> one
  ``{"pd": ...}`` per applicant, in order;
- ``POST /estimate-default-probability``: the legacy single-applicant contract;
- ``GET /metadata``, ``/docs``, ``/docs.json``, ``/metrics``, ``/livez``, ``/readyz``.

BentoML runs the workers, loads the model declared at class scope, drains on shutdown and packs
the Bento; with ``KLARNA_PD_ADAPTIVE_BATCHING=true``, small ``/predict`` requests go through the
``predict`` API below and BentoML's adaptive batcher. Settings: ``KLARNA_PD_*`` environment
variables (:mod:`klarna_pd.settings`).
"""

from __future__ import annotations

import gc
import logging
import threading

from klarna_pd.gbm import import_for_scoring

# First: the workers only score, and LightGBM's scikit-learn and pandas glue costs them 1 s each.
import_for_scoring()

import bentoml
from bentoml.exceptions import BentoMLException

from klarna_pd.errors import ModelError
from klarna_pd.serving import monitoring, protocol
from klarna_pd.serving.auth import APIKeys
from klarna_pd.serving.drift import DriftMonitor
from klarna_pd.serving.gateway import Gateway, Limits, ServingState
from klarna_pd.serving.openapi import docs_provider
from klarna_pd.serving.requests import predict_batch, predict_input_spec
from klarna_pd.serving.schema import applicant_type, result_type
from klarna_pd.serving.scorer import Scorer
from klarna_pd.settings import REQUEST_TIMEOUT_SECONDS, Settings
from klarna_pd.store.local import load_stored, record_of_stored
from klarna_pd.store.records import ModelRecord, load_directory, record_of_directory
from klarna_pd.versions import library_versions

logger = logging.getLogger("klarna_pd.service")
# BentoML's server logging passes only WARNING and up from other libraries' loggers; ours carry
# the model served and one line per refused request at INFO.
logging.getLogger("klarna_pd").setLevel(logging.INFO)

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
RECORD = _record()
SPEC = RECORD.spec
Applicant = applicant_type(SPEC, max_reasons=settings.max_reasons)
PDResult = result_type(SPEC)
STATE = ServingState(spec=SPEC)
protocol.install(settings.header_timeout_seconds)


def _drift_monitor(pd_model) -> DriftMonitor | None:
    if not settings.drift_window or not pd_model.reference:
        if settings.drift_window:
            logger.warning("model %s has no training reference: no drift gauges", RECORD.tag)
        return None
    encoder = pd_model.encoder
    return DriftMonitor(
        pd_model.reference, encoder.feature_names_, encoder.other_code_,
        window=settings.drift_window, min_rows=settings.drift_min_rows,
        refresh_seconds=settings.drift_refresh_seconds,
        gauges=monitoring.set_psi, count_unknown=monitoring.count_unknown_levels,
    )


@bentoml.service(
    name="klarna-pd",
    workers=settings.workers,
    traffic={"timeout": REQUEST_TIMEOUT_SECONDS},
    # The gateway logs refusals and counts requests by route template itself: BentoML's access
    # log and request metrics (labelled by raw path, buckets from 5 ms) cost CPU on every request.
    logging={"access": {"enabled": False}},
    metrics={"enabled": False},
    # BentoML opens an OpenTelemetry span per request even with no exporter; excluding every URL
    # skips it (benchmarks/results/serve.md). To trace, set an exporter and narrow this pattern.
    # Here, not in BENTOML_CONFIG: the worker reloads its configuration from the service's
    # (version 2), which drops a top-level `tracing` key of that file.
    tracing={"excluded_urls": ".*"},
    labels={"owner": "risk", "project": "klarna-pd"},
)
class KlarnaPD:
    if settings.model_dir is None:
        # Packed into the Bento by `bentoml build`. A pod serving a model pulled from S3
        # (KLARNA_PD_MODEL_DIR) does not declare it, so BentoML does not look it up.
        model = model_ref

    def __init__(self) -> None:
        try:
            if settings.model_dir is not None:
                pd_model = load_directory(settings.model_dir)
            else:
                pd_model = load_stored(self.model)
        except ModelError as exc:
            # Stay up but not ready: the pod shows why, and nothing is scored with a bad model.
            STATE.load_error = str(exc)
            logger.error("model refused, not serving: %s", exc)
            return
        if settings.compiled_trees:
            # In the background: requests scored by LightGBM meanwhile get the same PDs, and a
            # model of 3,265 trees (--predictor folds) took 30-37 s to compile, too long to wait.
            threading.Thread(target=pd_model.compile_trees, name="compile-trees", daemon=True).start()
        STATE.scorer = Scorer(
            pd_model,
            drift=_drift_monitor(pd_model),
            info={
                "model_tag": RECORD.tag,
                "spec_name": SPEC.name,
                "created": RECORD.created,
                "source": str(settings.model_dir) if settings.model_dir is not None else "model store",
                "serving_library_versions": library_versions(),
                "limits": {"max_applicants": settings.max_applicants, "max_body_bytes": settings.max_body_bytes,
                           "max_reasons": settings.max_reasons},
                "batching": {
                    "adaptive": settings.adaptive_batching,
                    "batch_max_applicants": settings.batch_max_applicants,
                    "max_batch_size": settings.max_batch_size,
                    "max_latency_ms": settings.max_latency_ms,
                },
            },
        )
        logger.info("serving model %s (spec %s)", RECORD.tag, SPEC.name)
        # The cyclic collector's full passes over the ~200k objects a worker holds showed as
        # 100-300 ms stalls in the latency tail (py-spy; single-applicant p99 at 16 connections
        # fell from ~320 ms to ~23 ms without them). What is loaded now lives as long as the
        # worker, so freeze it, and collect the young generations less often.
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)

    def __is_ready__(self) -> bool:
        return STATE.scorer is not None

    @bentoml.api(
        batchable=settings.adaptive_batching,
        max_batch_size=settings.max_batch_size,
        max_latency_ms=settings.max_latency_ms,
        input_spec=predict_input_spec(Applicant, bentoml.IODescriptor, max_applicants=settings.max_applicants),
    )
    def predict(self, applicants: list[Applicant]) -> list[PDResult]:
        """Probability of default of each applicant, in order.

        Requests reach this API through the gateway, checked; with adaptive batching on, BentoML
        merges concurrent small ones into one call.
        """
        return predict_batch(STATE.scorer, applicants)


KlarnaPD.add_asgi_middleware(
    Gateway,
    state=STATE,
    limits=Limits(
        max_body_bytes=settings.max_body_bytes,
        max_applicants=settings.max_applicants,
        max_reasons=settings.max_reasons,
        max_inflight_bytes=settings.max_inflight_bytes,
        body_timeout=settings.body_timeout_seconds,
        batching=settings.adaptive_batching,
        batch_max_applicants=settings.batch_max_applicants,
    ),
    keys=APIKeys(settings.api_keys) if settings.api_keys else None,
    docs=docs_provider(SPEC, settings),
)
