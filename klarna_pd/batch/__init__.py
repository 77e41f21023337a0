"""Batch scoring: files of any size on one machine (streaming), or on Spark.

    python -m klarna_pd.batch --model klarna-pd:latest --input FILE --output FILE [--engine local|spark]
"""

__all__ = ["BatchSummary", "score_file"]


def __getattr__(name: str):
    # Imported on first use, not with the package: the CLI (python -m klarna_pd.batch) imports
    # LightGBM its own way before anything of the model's (klarna_pd/gbm.py).
    if name in __all__:
        from . import local

        return getattr(local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
