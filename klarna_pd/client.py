"""A Python client of the klarna-pd service, on top of BentoML's HTTP client.

    from klarna_pd.client import PDClient

    with PDClient("http://localhost:3000") as client:
        results = client.predict([{"age": 34, "merchant_group": "Entertainment"}], reasons=3)
        pd = client.estimate({"age": 34})
        info = client.metadata()
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import bentoml
import httpx
from bentoml.exceptions import BentoMLException


class PDClientError(Exception):
    """The service refused a request: its HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _error(status: int, text: str) -> PDClientError:
    try:
        body = json.loads(text)
        message = body.get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return PDClientError(status, message or text)


class PDClient:
    """Client of one klarna-pd service.

    Args:
        url: the service's base URL, e.g. ``http://localhost:3000`` or the ingress address.
        api_key: sent as ``Authorization: Bearer <key>`` when the service requires keys.
        timeout: seconds per request.
        server_ready_timeout: seconds to wait for ``/readyz`` on connect.
    """

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 30.0, server_ready_timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._client = bentoml.SyncHTTPClient(
            self.url, token=api_key, timeout=timeout, server_ready_timeout=server_ready_timeout
        )

    def predict(self, records: Sequence[Mapping[str, Any]], *, reasons: int = 0) -> list[dict[str, Any]]:
        """Score applicants through ``POST /predict``.

        Args:
            records: applicant objects (feature name -> value, missing as None or absent).
            reasons: how many reason codes to return per applicant (0: none).

        Returns:
            One ``{"pd": ..., [id], ["reasons": [...]]}`` per record, in order.

        Raises:
            PDClientError: the service refused the request (status and message).
        """
        applicants = [dict(r) for r in records]
        if reasons:
            for a in applicants:
                a["reasons"] = reasons
        try:
            return self._client.predict(applicants=applicants)
        except BentoMLException as exc:
            raise _error(int(exc.error_code), str(exc)) from None

    def estimate(self, record: Mapping[str, Any]) -> float:
        """The PD of one applicant through the legacy ``POST /estimate-default-probability``."""
        resp = self._client.request("POST", "/estimate-default-probability", json=dict(record))
        if resp.is_error:
            raise _error(resp.status_code, resp.text)
        return float(resp.json()["default_probability"])

    def metadata(self) -> dict[str, Any]:
        """``GET /metadata``: model tag, metrics, spec, versions."""
        resp = self._client.request("GET", "/metadata")
        if resp.is_error:
            raise _error(resp.status_code, resp.text)
        return resp.json()

    def is_ready(self) -> bool:
        try:
            return self._client.is_ready()
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PDClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
