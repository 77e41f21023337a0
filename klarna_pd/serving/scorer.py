"""What the service does with validated applicants: PDs, echoed ids, reason codes, metadata."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..model import PDModel
from . import monitoring
from .applicants import REASONS_FIELD, Applicants
from .drift import DriftMonitor


class Scorer:
    """Scores validated applicants with a loaded model.

    Args:
        model: the PD model.
        info: what ``/metadata`` reports besides the model's own metrics (tag, creation time, ...).
        drift: the live drift window, if monitoring is on.
    """

    def __init__(self, model: PDModel, info: dict[str, Any], drift: DriftMonitor | None = None) -> None:
        self.model = model
        self.info = info
        self.id_field = model.spec.id
        self.drift = drift

    def score(self, applicants: Applicants, *, endpoint: str = "predict") -> list[dict[str, Any]]:
        """One result per applicant, in order: ``pd``, the id if given, ``reasons`` if asked for."""
        matrix, pds = self._predict(applicants, endpoint)
        results: list[dict[str, Any]] = [{"pd": p} for p in pds.tolist()]
        wanted = [i for i, k in enumerate(applicants.reasons) if k]
        if wanted:
            reasons = self.model.reasons(matrix[wanted], max(applicants.reasons[i] for i in wanted), num_threads=1)
            for i, r in zip(wanted, reasons):
                results[i][REASONS_FIELD] = r[: applicants.reasons[i]]
        ids = applicants.batch.ids
        if ids is not None:
            for ident, res in zip(ids.tolist(), results):
                if ident is not None:
                    res[self.id_field] = ident
        return results

    def score_batch(self, batch, *, endpoint: str = "predict") -> np.ndarray:
        """PDs of typed rows (columnar requests: no reasons, no ids to echo)."""
        return self._predict(Applicants(batch, []), endpoint)[1]

    def score_one(self, applicants: Applicants, *, endpoint: str = "legacy") -> float:
        return float(self._predict(applicants, endpoint)[1][0])

    def _predict(self, applicants: Applicants, endpoint: str) -> tuple[np.ndarray, np.ndarray]:
        """Encoded rows and their PDs, recorded for /metrics and the drift window."""
        matrix = self.model.encoder.encode(applicants.batch)
        # One thread: requests are small and the server's workers already use the cores.
        pds = self.model.predict_matrix(matrix, num_threads=1)
        monitoring.observe_pds(endpoint, pds)
        if self.drift is not None:
            self.drift.observe(matrix, pds)
        return matrix, pds

    def metadata(self) -> dict[str, Any]:
        m = self.model.metrics
        scalar = {k: v for k, v in m.items() if isinstance(v, (int, float, str)) or v is None}
        return {
            **self.info,
            "compiled_trees": self.model.trees_compiled,
            "metrics": {
                **scalar,
                "fold_auc": m.get("fold_auc"),
                "rows": m.get("rows"),
                "calibration": {k: v for k, v in (m.get("calibration") or {}).items() if k in ("method", "before", "after")},
            },
            "spec": self.model.spec.to_dict(),
            "training_library_versions": m.get("library_versions"),
        }
