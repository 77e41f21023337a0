"""A Python client of the klarna-pd service, on top of BentoML's HTTP client.

    from klarna_pd.client import PDClient

    with PDClient("http://localhost:3000") as client:
        results = client.predict([{"age": 34, "merchant_group": "Entertainment"}], reasons=3)
        pd = client.estimate({"age": 34})
        info = client.metadata()

Applicants go to the service as they are written, so a misspelled feature is the service's 422,
never a score without it (BentoML's typed call drops fields its schema does not name). Values
are sent as JSON: NaN, None, pandas' NA and NaT are missing; numpy scalars are their Python
values. Every failure is a :class:`PDClientError`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import bentoml
import httpx
from bentoml.exceptions import BentoMLException


class PDClientError(Exception):
    """The service refused a request (``status``: its HTTP status), or could not be reached or
    understood (``status`` None, or the status of an answer that was not what the API promises).

    Attributes:
        message: the service's message (the first problem when there were several).
        errors: every problem the service listed (``[{"loc": ..., "msg": ...}, ...]``), if any.
        retry_after: seconds the service asked to wait before retrying (503), if it said.
    """

    def __init__(self, status: int | None, message: str, *, errors: list[Any] | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{status}: {message}" if status is not None else message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.retry_after = retry_after


def _refusal(resp: httpx.Response) -> PDClientError:
    try:
        body = resp.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    try:
        retry_after = float(resp.headers["retry-after"]) if "retry-after" in resp.headers else None
    except ValueError:
        retry_after = None
    errors = body.get("errors") if isinstance(body.get("errors"), list) else None
    return PDClientError(resp.status_code, body.get("message") or resp.text or resp.reason_phrase,
                         errors=errors, retry_after=retry_after)


def _arrived(resp: httpx.Response) -> str:
    """An answer that is not what the API promises, as an error message shows it."""
    return f"{resp.headers.get('content-type')!r}: {resp.text[:200]!r}"


def _json_value(value: Any, where: str) -> Any:
    """``value`` as the JSON the service reads; missing values (NaN, NA, NaT) as None."""
    if value is None or isinstance(value, (str, int)):  # bool is an int
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise PDClientError(None, f"{where}: expected a finite number or None, got {value}")
        return value
    kind = type(value)
    if kind.__module__ == "numpy" and getattr(value, "ndim", None) == 0:  # np.float32(1.5), np.bool_(True)
        return _json_value(value.item(), where)
    if kind.__name__ in ("NAType", "NaTType"):  # pandas' missing values, without importing pandas
        return None
    raise PDClientError(None, f"{where}: expected a number, text, true/false or None, got {kind.__name__}")


def _applicant(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise PDClientError(None, f"{where}: expected a mapping of feature name -> value, "
                                  f"got {type(record).__name__}")
    return {str(k): _json_value(v, f"{where}.{k}") for k, v in record.items()}


class PDClient:
    """Client of one klarna-pd service.

    Args:
        url: the service's base URL, e.g. ``http://localhost:3000`` or the ingress address.
        api_key: sent as ``Authorization: Bearer <key>`` when the service requires keys.
        timeout: seconds per request.
        server_ready_timeout: seconds to wait for ``/readyz`` on connect (0: do not wait).

    Raises:
        PDClientError: not ready in time (with what was last seen: no connection, a status), not a
            klarna-pd service at that URL, or an API key it refuses.
    """

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 30.0,
                 server_ready_timeout: float = 30.0) -> None:
        if "://" not in url:
            raise PDClientError(None, f"expected a URL such as http://localhost:3000, got {url!r}")
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if server_ready_timeout > 0:
            self._wait_ready(server_ready_timeout, timeout)
        try:
            # BentoML's own wait polls /readyz without a pause: ours above, theirs off.
            self._client = bentoml.SyncHTTPClient(self.url, token=api_key, timeout=timeout,
                                                  server_ready_timeout=0)
        except (BentoMLException, KeyError, TypeError, ValueError):  # it could not read /schema.json
            raise self._unreached("/schema.json", timeout) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise PDClientError(None, f"cannot reach {self.url}: {exc}") from None

    def _unreached(self, path: str, timeout: float) -> PDClientError:
        try:
            resp = httpx.get(self.url + path, headers=self._headers, timeout=timeout)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return PDClientError(None, f"cannot reach {self.url}: {exc}")
        if resp.is_error:
            return _refusal(resp)
        return PDClientError(resp.status_code, f"expected the service's API description at {path}, "
                                               f"got {_arrived(resp)}")

    def _wait_ready(self, seconds: float, timeout: float) -> None:
        deadline, last = time.monotonic() + seconds, "no answer"
        while True:
            try:
                resp = httpx.get(f"{self.url}/readyz", timeout=min(timeout, 5.0))
                if resp.status_code == 200:
                    return
                if resp.status_code == 404:
                    raise PDClientError(404, f"{self.url}/readyz not found: expected the address of a "
                                             "klarna-pd service (nothing after host and port unless a proxy "
                                             "routes it)")
                last = f"/readyz answered {resp.status_code}"
            except httpx.InvalidURL as exc:
                raise PDClientError(None, f"expected a URL such as http://localhost:3000, got {self.url!r} "
                                          f"({exc})") from None
            except httpx.HTTPError as exc:
                last = f"cannot connect ({exc})"
            if time.monotonic() >= deadline:
                raise PDClientError(None, f"{self.url} not ready after {seconds:g} s: {last}")
            time.sleep(0.25)

    def _call(self, method: str, path: str, body: Any = None) -> tuple[httpx.Response, Any]:
        content = None if body is None else json.dumps(body, allow_nan=False).encode()
        headers = {"Content-Type": "application/json"} if content is not None else {}
        try:
            resp = self._client.request(method, path, content=content, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise PDClientError(None, f"{method} {self.url}{path}: {type(exc).__name__}: {exc}") from None
        except RuntimeError as exc:  # httpx: the client has been closed
            raise PDClientError(None, f"{method} {self.url}{path}: {exc}") from None
        if resp.is_error:
            raise _refusal(resp)
        try:
            return resp, resp.json()
        except ValueError:
            raise PDClientError(resp.status_code, f"expected a JSON answer from {path}, got {_arrived(resp)}"
                                ) from None

    def predict(self, records: Sequence[Mapping[str, Any]], *, reasons: int = 0) -> list[dict[str, Any]]:
        """Score applicants through ``POST /predict``.

        Args:
            records: applicant objects (feature name -> value; missing as None, NaN or absent).
            reasons: how many reason codes to return per applicant (0: none), for the records that
                do not ask for their own with a ``reasons`` field.

        Returns:
            One ``{"pd": ..., [id], ["reasons": [...]]}`` per record, in order.

        Raises:
            PDClientError: a value that is not JSON, the service refused the request (status,
                message, every problem), or its answer does not match the applicants sent.
        """
        applicants = [_applicant(r, f"applicants[{i}]") for i, r in enumerate(records)]
        if reasons:
            for a in applicants:
                a.setdefault("reasons", reasons)
        resp, results = self._call("POST", "/predict", {"applicants": applicants})
        if not (isinstance(results, list) and len(results) == len(applicants)
                and all(isinstance(r, dict) and "pd" in r for r in results)):
            shown = f"{len(results)} items" if isinstance(results, list) else type(results).__name__
            raise PDClientError(resp.status_code,
                                f"expected {len(applicants)} results with a pd each, got {shown}")
        for i, (sent, got) in enumerate(zip(applicants, results)):
            for key in got.keys() - {"pd", "reasons"}:  # the echoed id
                if sent.get(key) is not None and str(got[key]) != str(sent[key]):
                    raise PDClientError(resp.status_code, f"result {i} is for {key} {got[key]!r}, applicant "
                                                          f"{i} was {sent[key]!r}: answers out of order")
        return results

    def estimate(self, record: Mapping[str, Any]) -> float:
        """The PD of one applicant through the legacy ``POST /estimate-default-probability``."""
        resp, body = self._call("POST", "/estimate-default-probability", _applicant(record, "record"))
        if not isinstance(body, dict) or not isinstance(body.get("default_probability"), (int, float)):
            raise PDClientError(resp.status_code,
                                f"expected {{'default_probability': <number>, ...}}, got {body!r:.200}")
        return float(body["default_probability"])

    def metadata(self) -> dict[str, Any]:
        """``GET /metadata``: model tag, metrics, spec, versions."""
        resp, body = self._call("GET", "/metadata")
        if not isinstance(body, dict):
            raise PDClientError(resp.status_code,
                                f"expected a JSON object from /metadata, got {type(body).__name__}")
        return body

    def is_ready(self) -> bool:
        try:
            return self._client.is_ready()
        except (httpx.HTTPError, RuntimeError):
            return False

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PDClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
