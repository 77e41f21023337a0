"""Training: cross-validation, calibration fitting, evaluation, the report and the main job.

Nothing here is imported by the server: scoring needs only :mod:`klarna_pd.model`.
"""

from .cv import DEFAULT_PARAMS, TrainConfig, TrainResult, cross_validate, train

__all__ = ["DEFAULT_PARAMS", "TrainConfig", "TrainResult", "cross_validate", "train"]
