"""The service's settings: one class, read from ``KLARNA_PD_*`` environment variables.

The Helm chart passes its ``settings`` values as these variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .cpus import available_cpus


class Settings(BaseSettings):
    """Serving settings (env prefix ``KLARNA_PD_``)."""

    model_config = SettingsConfigDict(env_prefix="KLARNA_PD_", extra="ignore")

    model_tag: str = "klarna-pd:latest"
    """Model to serve from the BentoML model store."""

    model_dir: Path | None = None
    """A model directory pulled from S3 (``python -m klarna_pd.store pull URI --dest DIR``);
    when set it is served instead of ``model_tag`` (the chart's init container sets it)."""

    adaptive_batching: bool = True
    """Merge concurrent ``/predict`` requests into one model call (BentoML's adaptive batching)."""

    max_batch_size: int = Field(default=10_000, ge=2)
    """Most applicants one model call on ``/predict`` takes (at least ``max_applicants``)."""

    max_latency_ms: int = Field(default=300, ge=1)
    """Latency budget of ``/predict``'s batcher: a request it expects to wait and run longer than
    this is refused with 503 (fail fast under overload). Measured with 2 workers: 100 ms refused
    ~4 % of 1,000-applicant requests at 8 connections, 300 ms none, with one-applicant latency
    unchanged (benchmarks/results/serve.md)."""

    max_applicants: int = Field(default=10_000, ge=1)
    """Most applicants one ``/predict`` request may carry (more: 422)."""

    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest request body accepted (more: 413). 10,000 Klarna applicants take about 13 MB."""

    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Accepted API keys, comma-separated. Empty: no authentication."""

    drift_window: int = Field(default=10_000, ge=0)
    """Applicants kept for the live PSI gauges on ``/metrics`` (0: drift monitoring off)."""

    drift_min_rows: int = Field(default=1_000, ge=1)
    """No PSI is published from fewer rows than this (too noisy)."""

    workers: int = Field(default_factory=available_cpus, ge=1)
    """Server worker processes (each one core's worth of scoring); default: one per CPU the
    process may use (its affinity and cgroup CPU quota)."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.max_batch_size < self.max_applicants:
            # BentoML splits a request larger than a batch and cancels the rest of it once it has
            # waited max_latency_ms: large requests would fail with 503 even on an idle server.
            raise ValueError(
                f"max_batch_size ({self.max_batch_size}) must be at least max_applicants ({self.max_applicants})"
            )
        short = [i for i, k in enumerate(self.api_keys) if len(k) < 16]
        if short:
            raise ValueError(f"API keys must have at least 16 characters; key(s) at position {short} are shorter")
        return self
