"""Batch scoring: files of any size on one machine (streaming), or on Spark.

    python -m klarna_pd.batch --model klarna-pd:latest --input FILE --output FILE [--engine local|spark]
"""

from .local import BatchSummary, score_file

__all__ = ["BatchSummary", "score_file"]
