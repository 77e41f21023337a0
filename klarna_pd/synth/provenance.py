"""How a synthetic file is recognised wherever it is written: a provenance record beside it.

Every file the generator writes gets ``<file>.synthetic.json`` beside it: the recipe (rows, seed,
unlabelled share, chunk size) and the sha256 of the bytes written. Training reads the record of
its input, and the input is the synthetic stand-in exactly when the record exists and its sha256
is the file's: a real ``dataset.csv`` copied over a generated one keeps the old record, which
then no longer matches. From the recipe the true PD of every row can be generated again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import atomic_write_text

SUFFIX = ".synthetic.json"
GENERATOR = "klarna_pd.synth"


@dataclass(frozen=True)
class SynthRecord:
    """What the generator wrote and how: enough to tell the file and to regenerate its true PD."""

    rows: int
    seed: int
    unlabelled_share: float
    chunk_rows: int
    sha256: str
    generator: str = GENERATOR


def record_path(data: str | Path) -> Path:
    """Where the provenance record of ``data`` lives: ``<data>.synthetic.json``."""
    data = Path(data)
    return data.with_name(data.name + SUFFIX)


def write_record(data: str | Path, record: SynthRecord) -> Path:
    """Write the provenance record beside ``data`` (atomically); returns its path."""
    path = record_path(data)
    atomic_write_text(path, json.dumps(asdict(record), indent=1) + "\n")
    return path


def read_record(data: str | Path, sha256: str) -> tuple[SynthRecord | None, str | None]:
    """The provenance record of ``data`` if it describes these bytes.

    Args:
        data: the data file.
        sha256: the file's sha256 (the caller has it already).

    Returns:
        ``(record, None)`` for a synthetic file; ``(None, None)`` when there is no record;
        ``(None, why)`` when a record exists but does not describe this file (then the file is
        not treated as synthetic and ``why`` says so).
    """
    path = record_path(data)
    if not path.exists():
        return None, None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        record = SynthRecord(**raw)
    except (OSError, ValueError, TypeError) as exc:
        return None, f"{path} is not a readable provenance record ({exc}): {data} is not treated as synthetic"
    if record.sha256 != sha256:
        return None, (f"{path} describes other bytes (sha256 {record.sha256[:12]}..., the file has {sha256[:12]}...): "
                      f"{data} is not treated as the synthetic stand-in")
    return record, None


def true_pd_by_id(record: SynthRecord, ids: np.ndarray) -> np.ndarray:
    """The true PD of each row id, generated again from the record's recipe.

    Raises:
        DataError: the recipe no longer yields these ids (the generator changed since the file
            was written), so its true PDs are unknown.
    """
    from .dataset import iter_synthetic

    uuids, truth = [], []
    for chunk in iter_synthetic(record.rows, record.seed, unlabelled_share=record.unlabelled_share):
        uuids.append(chunk.frame["uuid"].to_numpy())
        truth.append(chunk.true_pd)
    lookup = dict(zip(np.concatenate(uuids).tolist(), np.concatenate(truth).tolist()))
    try:
        return np.array([lookup[i] for i in np.asarray(ids).tolist()], dtype=float)
    except KeyError as exc:
        raise DataError(
            f"the generator no longer produces row {exc.args[0]!r} from seed {record.seed} and {record.rows} rows: "
            "the file was written by another version, its true PD cannot be regenerated"
        ) from None
