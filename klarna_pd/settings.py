"""The settings: one class, read from ``KLARNA_PD_*`` environment variables (serving, and the
model signing keys that every model load consults).

The Helm chart passes its ``settings`` values as these variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .cpus import available_cpus

MIB = 1024 * 1024
#: Seconds from a request's headers to its answer before BentoML's worker answers 504 itself
#: (``traffic.timeout`` in service.py): the body timeout and the batcher's budget end before it.
REQUEST_TIMEOUT_SECONDS = 30


class Settings(BaseSettings):
    """Serving settings (env prefix ``KLARNA_PD_``)."""

    # An error names the setting and the rule, never the values: a rule between settings would
    # otherwise print every setting, the API keys among them, into the pod's log.
    model_config = SettingsConfigDict(env_prefix="KLARNA_PD_", extra="ignore", hide_input_in_errors=True)

    model_tag: str = "klarna-pd:latest"
    """Model to serve from the BentoML model store."""

    model_dir: Path | None = None
    """A model directory pulled from S3 (``python -m klarna_pd.store pull URI --dest DIR``);
    when set it is served instead of ``model_tag`` (the chart's init container sets it)."""

    adaptive_batching: bool = False
    """Merge concurrent small ``/predict`` requests into one model call (BentoML's adaptive
    batching). Off by default: a tree walk of one applicant takes ~20 us, and the batcher's
    queueing costs more than merging saves (benchmarks/results/serve.md)."""

    batch_max_applicants: int = Field(default=64, ge=1)
    """With batching on, requests with more applicants than this are scored at once, not queued:
    they are batches already, and BentoML's batcher, which models latency per request, learns from
    large ones to refuse small ones for minutes after (issue 15)."""

    max_batch_size: int = Field(default=1024, ge=2)
    """Most applicants one merged model call takes (batching on)."""

    max_latency_ms: int = Field(default=300, ge=1, lt=REQUEST_TIMEOUT_SECONDS * 1000)
    """Latency budget of the batcher (batching on): a request it expects to wait and run longer is
    refused with 503 "overloaded". Below the request timeout, which would cut it with a 504."""

    max_applicants: int = Field(default=10_000, ge=1)
    """Most applicants one ``/predict`` request may carry (more: 422)."""

    max_body_bytes: int = Field(default=16 * MIB, ge=1024)
    """Largest request body accepted (more: 413). 10,000 Klarna applicants take about 13 MB."""

    max_inflight_bytes: int = Field(default=64 * MIB, ge=1024)
    """Most request body bytes one worker holds at once; a request that would pass it gets a fast
    503 "overloaded" with Retry-After. Bounds memory (the worst case stays under the chart's limit,
    measured by tests/service/test_hardening.py) and the work queued behind a request."""

    max_reasons: int = Field(default=4, ge=0)
    """Most reason codes an applicant may ask for: adverse-action practice gives at most four
    principal reasons."""

    body_timeout_seconds: float = Field(default=10.0, gt=0, lt=REQUEST_TIMEOUT_SECONDS)
    """A request body that has not fully arrived this long after its headers gets 408 (below the
    request timeout: past it the client would get BentoML's 504 instead)."""

    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """A connection whose request headers take longer is closed (slow-header clients)."""

    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    """Accepted API keys, comma-separated. Empty: no authentication."""

    drift_window: int = Field(default=10_000, ge=0)
    """Applicants kept for the live PSI gauges on ``/metrics`` (0: drift monitoring off)."""

    drift_min_rows: int = Field(default=1_000, ge=1)
    """No PSI is published from fewer rows than this (too noisy)."""

    drift_refresh_seconds: float = Field(default=15.0, gt=0, le=86_400)
    """Least time between two computations of the drift gauges (Prometheus reads them every
    15-60 s; refreshed every second, they took 9.4 % of a loaded worker's samples). At most a day:
    a wait past the platform's time_t ended the refresher thread, and the gauges with it."""

    compiled_trees: bool = False
    """Score requests of several applicants with the trees compiled to machine code
    (klarna_pd/model/compiled.py): the same PDs. Off here, where every test and ``bentoml serve``
    would pay the compile at start; on in the chart. Without lleaves the worker logs a warning and
    LightGBM scores."""

    workers: int = Field(default_factory=available_cpus, ge=1)
    """Server worker processes (each one core's worth of scoring); default: one per CPU the
    process may use (its affinity and cgroup CPU quota)."""

    verify_key: Path | None = None
    """Public key (PEM) that models must be signed with; every load checks it (server start, batch
    scoring, ``pull``, ``verify``). Unset: the public half of ``signing_key``, else this machine's
    development key (``$BENTOML_HOME/klarna-pd-keys``), else no model is accepted."""

    signing_key: Path | None = None
    """Private key (PEM) that training and ``push`` sign models with. Unset: training signs with
    this machine's development key (made on first use); ``push`` carries the model's signature."""

    allow_unsigned: bool = False
    """Accept unsigned models, and signed ones when there is no key to check them with. Local
    development only: a signature that does not verify is refused regardless."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.max_batch_size < self.batch_max_applicants:
            # BentoML splits a request larger than a batch and cancels the rest of it once it has
            # waited max_latency_ms: such requests would fail with 503 even on an idle server.
            raise ValueError(
                f"max_batch_size ({self.max_batch_size}) must be at least batch_max_applicants ({self.batch_max_applicants})"
            )
        if self.max_inflight_bytes < self.max_body_bytes:
            raise ValueError(
                f"max_inflight_bytes ({self.max_inflight_bytes}) must be at least max_body_bytes ({self.max_body_bytes}): "
                "a body of the largest size must fit"
            )
        short = [i for i, k in enumerate(self.api_keys) if len(k) < 16]
        if short:
            raise ValueError(f"API keys must have at least 16 characters; key(s) at position {short} are shorter")
        return self
