"""The custseg job on Apache Spark (``pip install 'custseg[spark]'``, Java 17).

``custseg segment|score|drift --engine spark [--spark-master URL]`` or, from Python::

    from custseg.spark import run_segmentation_spark
    from custseg.outputs import write_outputs
    write_outputs(run_segmentation_spark(transactions="s3a://bucket/tx/*.parquet",
                                         master=None), "out/")

Importing this package does not import PySpark; the functions do, and raise a clear
:class:`~custseg.spark.session.SparkUnavailableError` (exit code 2) when it or Java is missing.
"""

from custseg.spark.job import (
    assign_spark,
    choose_k_spark,
    fit_spark,
    load_snapshot_spark,
    prepare_data_spark,
    run_segmentation_spark,
    score_spark,
    spark_features,
)
from custseg.spark.session import SparkUnavailableError, get_session, require_spark

__all__ = ["SparkUnavailableError", "assign_spark", "choose_k_spark", "fit_spark",
           "get_session", "load_snapshot_spark", "prepare_data_spark", "require_spark",
           "run_segmentation_spark", "score_spark",
           "spark_features"]
