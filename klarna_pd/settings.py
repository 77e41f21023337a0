"""The service's settings: one class, read from ``KLARNA_PD_*`` environment variables.

The Helm chart passes its ``settings`` values as these variables.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Serving settings (env prefix ``KLARNA_PD_``)."""

    model_config = SettingsConfigDict(env_prefix="KLARNA_PD_", extra="ignore")

    model_tag: str = "klarna-pd:latest"
    """Model to serve from the BentoML model store."""

    adaptive_batching: bool = True
    """Merge concurrent ``/predict`` requests into one model call (BentoML's adaptive batching)."""

    max_batch_size: int = Field(default=10_000, ge=2)
    """Most applicants one model call on ``/predict`` takes; a larger request is split."""

    max_latency_ms: int = Field(default=1_000, ge=1)
    """How long a ``/predict`` request may wait and run in the batcher before it is refused (503).
    BentoML cancels the rest of a split request once it has waited this long, so it must cover
    the largest request: 10,000 applicants take about 0.2 s of one core."""

    max_applicants: int = Field(default=10_000, ge=1)
    """Most applicants one ``/predict`` request may carry (more: 422)."""

    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest request body accepted (more: 413). 10,000 Klarna applicants take about 13 MB."""

    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Accepted API keys, comma-separated. Empty: no authentication."""

    workers: int = Field(default=1, ge=1)
    """Server worker processes (each one core's worth of scoring)."""

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        short = [i for i, k in enumerate(self.api_keys) if len(k) < 16]
        if short:
            raise ValueError(f"API keys must have at least 16 characters; key(s) at position {short} are shorter")
        return self
