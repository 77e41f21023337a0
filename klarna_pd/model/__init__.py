"""The model: encoder + LightGBM booster + calibrator -> PD, reason codes, and its files.

Scoring needs only this package, :mod:`klarna_pd.data` (batches) and numpy/LightGBM: no pandas,
no scikit-learn, no fitting code.
"""

from ..errors import ModelError
from .pdmodel import MODEL_FILES, PDModel

__all__ = ["MODEL_FILES", "ModelError", "PDModel"]
