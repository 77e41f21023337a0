"""The PD model: encoder + LightGBM booster + calibrator, and its files on disk.

``PDModel.predict`` is the one scoring path: a :class:`~klarna_pd.data.batch.Batch` (from a file,
JSON records, an Arrow table or a Spark partition) -> :meth:`Encoder.encode` -> booster ->
calibrator. Training's predictions file, the service, batch scoring and Spark all go through it.
A saved model is a directory of plain files, no pickles:

============================  ==================================================================
``booster.txt``               LightGBM's own text model format
``encoder.json``              categorical levels, unknown/missing handling (:mod:`.encoder`)
``calibrator.json``           Platt or isotonic parameters (:mod:`.calibration`)
``spec.json``                 the dataset spec the model was trained for
``metrics.json``              the validation results (read by ``/metadata``)
``reference.json``            training distributions of scores and features (drift monitoring)
============================  ==================================================================

:meth:`PDModel.load` checks every file against the sha256 recorded at save time and refuses the
model (``ModelError``) if one is missing or differs; the booster's text is checked before LightGBM
parses it (:mod:`.booster`), so a damaged one is a ``ModelError`` too, never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from ..cpus import available_cpus
from ..data.batch import Batch
from ..data.records import read_records
from ..errors import ModelError, SpecError
from ..files import atomic_write_text, sha256_file
from ..spec import DatasetSpec
from . import calibration, single_row
from .booster import load_booster
from .calibration import Calibrator
from .encoder import Encoder

BOOSTER_FILE = "booster.txt"
ENCODER_FILE = "encoder.json"
CALIBRATOR_FILE = "calibrator.json"
SPEC_FILE = "spec.json"
METRICS_FILE = "metrics.json"
REFERENCE_FILE = "reference.json"
MODEL_FILES = (BOOSTER_FILE, ENCODER_FILE, CALIBRATOR_FILE, SPEC_FILE, METRICS_FILE, REFERENCE_FILE)


@dataclass
class PDModel:
    """A trained PD model.

    Args:
        spec: the dataset spec it was trained for.
        encoder: the fitted encoder.
        booster: the LightGBM booster (binary objective).
        calibrator: maps the booster's raw margin to a PD.
        metrics: validation results, kept with the model.
        reference: training distributions, for drift monitoring.
    """

    spec: DatasetSpec
    encoder: Encoder
    booster: lgb.Booster
    calibrator: Calibrator
    metrics: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    _single: Any = field(default=False, init=False, repr=False, compare=False)
    _compiled: Any = field(default=None, init=False, repr=False, compare=False)

    # -- scoring --------------------------------------------------------------------------------

    def predict(self, batch: Batch, *, num_threads: int = 0) -> np.ndarray:
        """Calibrated PDs, strictly inside (0, 1), one per row, in order.

        Args:
            batch: typed rows, as every reader in :mod:`klarna_pd.data` makes them.
            num_threads: LightGBM threads (0: one per CPU this process may use).
        """
        return self.predict_matrix(self.encoder.encode(batch), num_threads=num_threads)

    def compile_trees(self) -> bool:
        """Score batches of rows with the booster compiled to machine code (:mod:`.compiled`: the
        same margins to the last bit, checked here). False, and LightGBM keeps scoring, when
        lleaves is not installed or the check fails (logged)."""
        from . import compiled

        self._compiled = compiled.compile_booster(self.booster)
        return self._compiled is not None

    @property
    def trees_compiled(self) -> bool:
        """Whether batches are scored by the compiled trees (:meth:`compile_trees`)."""
        return self._compiled is not None

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """PDs of JSON-like records (feature name -> value, missing as None or absent).

        Raises:
            InputError: a record does not fit the spec (every problem listed).
        """
        return self.predict(read_records(records, self.spec))

    def margin(self, matrix: np.ndarray, *, num_threads: int = 0) -> np.ndarray:
        """The booster's raw score (log-odds before calibration) of encoded rows, with ``num_threads``
        LightGBM threads (0: one per CPU this process may use, not LightGBM's one per core).

        One row goes through LightGBM's single-row C API (:mod:`.single_row`): the same tree walk,
        the same number, without ~15 us of per-call Python around it. Several rows go through the
        compiled trees once :meth:`compile_trees` has made them: again the same numbers.
        """
        if len(matrix) == 0:
            return np.empty(0)
        if len(matrix) == 1:
            if self._single is False:
                self._single = single_row.make(self.booster)
            if self._single is not None:
                return np.array([self._single.margin(matrix[0])])
        compiled = self._compiled  # once: compile_trees may replace it from another thread
        if compiled is not None:
            return compiled.margin(matrix, num_threads=num_threads or available_cpus())
        return self.booster.predict(matrix, raw_score=True, num_threads=num_threads or available_cpus())

    def predict_matrix(self, matrix: np.ndarray, *, num_threads: int = 0) -> np.ndarray:
        """Calibrated PDs of rows already encoded by :meth:`Encoder.encode` (the second half of :meth:`predict`)."""
        return self.calibrator.transform(self.margin(matrix, num_threads=num_threads))

    def contributions(self, matrix: np.ndarray, *, num_threads: int = 0) -> np.ndarray:
        """Per-feature contributions to the raw margin (LightGBM's TreeSHAP), bias last.

        Each row sums to :meth:`margin` of that row. ``num_threads`` as in :meth:`margin`.
        """
        return self.booster.predict(matrix, pred_contrib=True, num_threads=num_threads or available_cpus())

    def reasons(self, matrix: np.ndarray, top_k: int, *, num_threads: int = 0) -> list[list[dict[str, Any]]]:
        """The ``top_k`` features pushing each row's PD up most, largest first.

        Contributions are in log-odds of the uncalibrated margin; only positive ones are reasons.
        A reason whose value is missing says so (``missing``) and what that means (``meaning``,
        from the spec's ``missing_means``): "no payment history" is a reason a lender can give.
        ``num_threads`` as in :meth:`margin`.
        """
        if top_k <= 0 or len(matrix) == 0:
            return [[] for _ in range(len(matrix))]
        contrib = self.contributions(matrix, num_threads=num_threads)[:, :-1]
        names = self.encoder.feature_names_
        meanings = [f.missing_means or "no value was given" for f in self.spec.features]
        out = []
        for i in range(len(matrix)):
            row = contrib[i]
            top = np.argsort(-row, kind="stable")[:top_k]
            reasons = []
            for j in top:
                if row[j] <= 0.0:
                    continue
                value = self.encoder.decode(j, matrix[i, j])
                reason = {"feature": names[j], "value": value, "contribution": float(row[j]), "missing": value is None}
                if value is None:
                    reason["meaning"] = meanings[j]
                reasons.append(reason)
            out.append(reasons)
        return out

    # -- files ------------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> dict[str, str]:
        """Write the model's files into ``directory``.

        Returns:
            The sha256 of each file, to be recorded where the model is stored.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        texts = {
            BOOSTER_FILE: self.booster.model_to_string(),
            ENCODER_FILE: self.encoder.to_json(),
            CALIBRATOR_FILE: json.dumps(self.calibrator.to_dict(), indent=1) + "\n",
            SPEC_FILE: self.spec.to_json(),
            METRICS_FILE: json.dumps(self.metrics, indent=1, sort_keys=True) + "\n",
            REFERENCE_FILE: json.dumps(self.reference, indent=1, sort_keys=True) + "\n",
        }
        for name, text in texts.items():
            atomic_write_text(directory / name, text)
        return {name: sha256_file(directory / name) for name in MODEL_FILES}

    @classmethod
    def load(cls, directory: str | Path, *, sha256: Mapping[str, str] | None) -> PDModel:
        """Read a model directory, refusing it unless every file matches its recorded sha256.

        Args:
            directory: the model's files.
            sha256: the recorded digest of each file. ``None`` skips the check (only for files
                this process has just written).

        Raises:
            ModelError: a file is missing, altered, or malformed.
        """
        directory = Path(directory)
        missing = [n for n in MODEL_FILES if not (directory / n).is_file()]
        if missing:
            raise ModelError(f"model at {directory} is missing files {missing}")
        if sha256 is not None:
            unrecorded = [n for n in MODEL_FILES if n not in sha256]
            if unrecorded:
                raise ModelError(f"model at {directory} has no recorded sha256 for {unrecorded}")
            for name in MODEL_FILES:
                actual = sha256_file(directory / name)
                if actual != sha256[name]:
                    raise ModelError(
                        f"model file {directory / name} does not match its recorded sha256 "
                        f"(expected {sha256[name][:12]}..., got {actual[:12]}...): refusing to load it"
                    )
        try:
            spec = DatasetSpec.from_json((directory / SPEC_FILE).read_text("utf-8"))
            encoder = Encoder.from_dict(json.loads((directory / ENCODER_FILE).read_text("utf-8")), spec)
            calibrator = calibration.from_dict(json.loads((directory / CALIBRATOR_FILE).read_text("utf-8")))
            booster = load_booster((directory / BOOSTER_FILE).read_bytes(), where=str(directory / BOOSTER_FILE))
            metrics = json.loads((directory / METRICS_FILE).read_text("utf-8"))
            reference = json.loads((directory / REFERENCE_FILE).read_text("utf-8"))
        except (OSError, ValueError, KeyError, TypeError, SpecError, lgb.basic.LightGBMError) as exc:
            raise ModelError(f"model at {directory} is malformed: {exc}") from None
        if booster.num_feature() != encoder.n_features:
            raise ModelError(
                f"model at {directory}: booster expects {booster.num_feature()} features, "
                f"the encoder makes {encoder.n_features}"
            )
        return cls(spec=spec, encoder=encoder, booster=booster, calibrator=calibrator, metrics=metrics, reference=reference)
