"""What the service does with validated applicants: PDs, echoed ids, reason codes, metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..model import PDModel
from ..schema import REASONS_FIELD
from . import monitoring
from .drift import DriftMonitor


class Scorer:
    """Scores validated applicant records with a loaded model.

    Args:
        model: the PD model.
        info: what ``/metadata`` reports besides the model's own metrics (tag, creation time, ...).
    """

    def __init__(self, model: PDModel, info: dict[str, Any], drift: DriftMonitor | None = None) -> None:
        self.model = model
        self.info = info
        self.id_field = model.spec.id
        self.drift = drift

    def score(self, applicants: Sequence[dict[str, Any]], *, endpoint: str = "predict") -> list[dict[str, Any]]:
        """One result per applicant, in order: ``pd``, the id if given, ``reasons`` if asked for."""
        matrix, pds = self._predict(applicants, endpoint)
        results: list[dict[str, Any]] = [{"pd": float(p)} for p in pds]
        wanted = [i for i, a in enumerate(applicants) if a.get(REASONS_FIELD)]
        if wanted:
            k = max(int(applicants[i][REASONS_FIELD]) for i in wanted)
            reasons = self.model.reasons(matrix[wanted], k)
            for i, r in zip(wanted, reasons):
                results[i]["reasons"] = r[: int(applicants[i][REASONS_FIELD])]
        id_field = self.id_field
        for a, res in zip(applicants, results):
            ident = a.get(id_field)
            if ident is not None:
                res[id_field] = ident
        return results

    def score_one(self, applicant: dict[str, Any], *, endpoint: str = "legacy") -> float:
        return float(self._predict([applicant], endpoint)[1][0])

    def _predict(self, applicants: Sequence[dict[str, Any]], endpoint: str) -> tuple[np.ndarray, np.ndarray]:
        """Encoded rows and their PDs, recorded for /metrics and the drift window."""
        matrix = self.model.encode(applicants, validated=True)
        # One thread: requests are small and the server's workers already use the cores.
        pds = self.model.predict_encoded(matrix, num_threads=1)
        monitoring.observe_pds(endpoint, pds)
        if self.drift is not None:
            self.drift.observe(matrix, pds)
        return matrix, pds

    def metadata(self) -> dict[str, Any]:
        m = self.model.metrics
        scalar = {k: v for k, v in m.items() if isinstance(v, (int, float, str)) or v is None}
        return {
            **self.info,
            "metrics": {
                **scalar,
                "fold_auc": m.get("fold_auc"),
                "rows": m.get("rows"),
                "calibration": {k: v for k, v in (m.get("calibration") or {}).items() if k in ("method", "before", "after")},
            },
            "spec": self.model.spec.model_dump(mode="json"),
            "training_library_versions": m.get("library_versions"),
        }

