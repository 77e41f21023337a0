"""Entry point for spark-submit, which runs a file rather than a module.

    spark-submit --master yarn scripts/spark_batch.py --engine spark \
        --model s3://bucket/models/klarna-pd/<version> --input s3a://bucket/in/ --output s3a://bucket/out/scores.parquet

Same flags as ``python -m klarna_pd.batch``; the klarna_pd package (and requirements.txt) must be
installed on the driver and the executors.
"""

from klarna_pd.batch.__main__ import main
from klarna_pd.cli import run

if __name__ == "__main__":
    run(main)
