"""The segmentation job on Apache Spark: the same outputs as the local engine.

What runs where
---------------
* **Spark** (scales with the cluster): reading the files, typing and cleaning every transaction
  line (:mod:`custseg.spark.clean`), the per-customer feature aggregation (the SQL of
  :func:`custseg.features.transaction_feature_sql`, rendered in the Spark dialect), and every
  K-Means fit (``pyspark.ml.clustering.KMeans`` with k-means|| initialisation) — for each
  candidate k on a seeded sample, and the final fit on all customers.
* **The driver** holds what is per customer, never per transaction line: the feature table
  (one row per customer), the model matrix, the labels, the exclusion ledger's listed rows, and
  the k-selection sample (at most ``selection_sample`` customers). Preprocessing, the k decision
  rule (:func:`custseg.selection.decide`), profiles, names and the report run there with the very
  same code as the local engine, so both engines write identical kinds of outputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from custseg.cleaning import prepare_customers
from custseg.config import Config
from custseg.errors import InputError
from custseg.features import SPARK, Behaviour, behaviour_features, build_features
from custseg.ledger import Ledger
from custseg.model import SegmentModel
from custseg.spark.clean import (
    check_local_file,
    prepare_transactions_spark,
    raw_to_pandas,
    read_raw,
    restrict_to_customers_spark,
)
from custseg.spark.session import get_session

Progress = Callable[[str, int, int], None]
Source = str | Path | None


def spark_features(spark, tx, cfg, fixed_groups=None) -> Behaviour:
    """Per-customer behaviour computed by Spark SQL (the features' one definition)."""
    view = f"tx_{abs(hash((tx.file, id(tx)))) % 10**8}"
    tx.frame.createOrReplaceTempView(view)

    def query(sql: str) -> pd.DataFrame:
        # the feature SQL reads a table named tx; each job gets its own view
        sql = re.sub(r"\bFROM tx\b", f"FROM {view}", sql)
        return spark.sql(sql).toPandas()

    try:
        beh, groups = behaviour_features(query, SPARK, tx.columns, tx.as_of, cfg, fixed_groups)
    finally:
        spark.catalog.dropTempView(view)
    ids = tx.frame.select("customer_id").distinct().toPandas()["customer_id"]
    return Behaviour(frame=beh, groups=groups, customer_ids=pd.Index(ids.astype(object).unique()),
                     as_of=tx.as_of, file=tx.file)


def prepare_data_spark(customers: Source = None, transactions: Source = None, *,
                       config: Config | None = None, spark=None, master: str | None = "local[*]",
                       progress: Progress | None = None, timings: dict[str, float] | None = None,
                       scoring: bool = False, fixed_groups: dict[str, list[str]] | None = None,
                       fences: dict[str, float] | None = None):
    """:func:`custseg.pipeline.prepare_data` with the reading, cleaning and aggregation of
    transactions on Spark. Returns the same :class:`~custseg.pipeline.PreparedData`."""
    from custseg.pipeline import PreparedData, StageTimer, account_for_customers

    cfg = config or Config()
    seg = cfg.segmentation
    timer = StageTimer(timings if timings is not None else {}, progress)
    ledger = Ledger()
    customers = customers if customers is not None else cfg.customers.path
    transactions = transactions if transactions is not None else cfg.transactions.path
    if customers is None and transactions is None:
        raise InputError("give a customers table, a transactions log, or both")
    for source in (transactions, customers):
        if source is not None:
            check_local_file(source)  # before starting a JVM for nothing
    spark = spark or get_session(master)
    with timer.stage("read"):
        cust_raw = tx_raw = None
        if transactions is not None:
            tx_raw = read_raw(spark, transactions, delimiter=cfg.transactions.delimiter,
                              encoding=cfg.transactions.encoding)
        if customers is not None:
            cust_raw = read_raw(spark, customers, delimiter=cfg.customers.delimiter,
                                encoding=cfg.customers.encoding)
    with timer.stage("clean"):
        as_of = seg.as_of
        cust = tx = None
        if tx_raw is not None:
            tx = prepare_transactions_spark(tx_raw, cfg.transactions, ledger=ledger, as_of=as_of,
                                            on_invalid=seg.on_invalid,
                                            window_days=seg.window_days)
            as_of = tx.as_of
        if cust_raw is not None:
            frame = raw_to_pandas(cust_raw)
            if len(frame) == 0:
                raise InputError("file has a header but no data rows (columns: "
                                 f"{', '.join(cust_raw.columns)})", file=cust_raw.file)
            cust = prepare_customers(frame, cfg.customers, file=cust_raw.file, ledger=ledger,
                                     as_of=as_of, on_invalid=seg.on_invalid, scoring=scoring,
                                     fences=fences)
        if tx is not None and cust is not None:
            restrict_to_customers_spark(spark, tx, cust.frame.index, ledger)
    with timer.stage("features"):
        beh = spark_features(spark, tx, cfg.features, fixed_groups) if tx is not None else None
        feats = build_features(cust, None, cfg.features, ledger, fixed_groups, behaviour=beh)
        as_of = feats.as_of or as_of
        tx_ns = SimpleNamespace(seen_ids=tx.seen_ids) if tx is not None else None
        account_for_customers(ledger, cust, tx_ns, feats)
    files = {k: v.file for k, v in (("customers", cust_raw), ("transactions", tx_raw)) if v}
    return PreparedData(features=feats, ledger=ledger, as_of=as_of, files=files,
                        ignored_columns=dict(cust.ignored) if cust is not None else {},
                        fences=dict(cust.fences) if cust is not None else {})


# ------------------------------------------------------------------------------------ K-Means


def _matrix_frame(spark, X: np.ndarray, ids: np.ndarray | None = None, partitions: int = 0):
    """The model matrix as a Spark DataFrame (id, features vector), via Arrow."""
    from pyspark.ml.feature import VectorAssembler

    cols = [f"f{j}" for j in range(X.shape[1])]
    pdf = pd.DataFrame(X, columns=cols)
    pdf.insert(0, "id", np.arange(len(X), dtype="int64") if ids is None else ids)
    df = spark.createDataFrame(pdf)
    if partitions:
        df = df.coalesce(partitions)
    return VectorAssembler(inputCols=cols, outputCol="features").transform(df) \
        .select("id", "features")


def _kmeans(k: int, seed: int, max_iter: int = 100):
    from pyspark.ml.clustering import KMeans

    return KMeans(k=k, seed=seed, initMode="k-means||", initSteps=2, maxIter=max_iter,
                  tol=1e-3, featuresCol="features", predictionCol="prediction")


SPARK_THREADS = 4  # Spark jobs submitted at once from the driver (independent fits)


def _best_fits(df, ks: list[int], seed: int, restarts: int) -> dict[int, object]:
    """For each k, K-Means|| from ``restarts`` seeds (seed, seed+1, ...) and the lowest-cost fit
    kept, as scikit-learn's ``n_init`` keeps the lowest inertia. The fits are independent Spark
    jobs, submitted from a few driver threads so that small fits keep the executors busy;
    the result does not depend on the order they finish in."""
    from concurrent.futures import ThreadPoolExecutor

    tasks = [(k, r) for k in ks for r in range(max(1, restarts))]

    def fit(task):
        k, r = task
        model = _kmeans(k, seed + r).fit(df)
        return k, r, model, float(model.summary.trainingCost)

    with ThreadPoolExecutor(max_workers=min(SPARK_THREADS, len(tasks))) as pool:
        done = list(pool.map(fit, tasks))
    best: dict[int, tuple] = {}
    for k, _r, model, cost in sorted(done, key=lambda t: (t[0], t[1])):
        if k not in best or cost < best[k][1] - 1e-9:
            best[k] = (model, cost)
    return {k: m for k, (m, _) in best.items()}


def _best_fit(df, k: int, seed: int, restarts: int):
    return _best_fits(df, [k], seed, restarts)[k]


def _labels(model, df) -> np.ndarray:
    """Predictions in ``id`` order (streamed through Arrow)."""
    pred = model.transform(df).select("id", "prediction").toPandas().sort_values("id")
    return pred["prediction"].to_numpy(dtype="int64")


def choose_k_spark(spark, X: np.ndarray, *, k_min: int = 2, k_max: int = 10, seed: int = 0,
                   selection_sample: int = 20_000, silhouette_sample: int = 4_000,
                   bootstrap: int = 10, n_init: int = 4, progress: Progress | None = None):
    """:func:`custseg.selection.choose_k` with the K-Means fits on Spark.

    For every k, ``pyspark.ml`` K-Means (k-means||, the config's seed, ``n_init`` restarts as
    locally) is fitted on the same seeded sample as locally; Spark's ``ClusteringEvaluator`` silhouette (squared Euclidean) is
    recorded as the criterion ``spark_silhouette``. The decision uses the same scores and rule as
    the local engine (:func:`custseg.selection.decide`): exact Euclidean silhouette of a
    stratified sub-sample, bootstrap stability, Calinski-Harabasz and Davies-Bouldin, computed
    on the sample's labels on the driver.
    """
    from pyspark.ml.evaluation import ClusteringEvaluator

    from custseg.selection import KScore, decide, null_reference, score_labels, selection_sample_of

    n = X.shape[0]
    Xs, ks = selection_sample_of(X, k_min=k_min, k_max=k_max, seed=seed, size=selection_sample)
    null = null_reference(Xs, seed=seed, size=silhouette_sample)
    df = _matrix_frame(spark, Xs, partitions=1 if len(Xs) <= 50_000 else 0).cache()
    evaluator = ClusteringEvaluator(featuresCol="features", predictionCol="prediction",
                                    metricName="silhouette", distanceMeasure="squaredEuclidean")
    scores: list[KScore] = []
    try:
        models = _best_fits(df, ks, seed, n_init)
        for i, k in enumerate(ks):
            model = models[k]
            pred = model.transform(df)
            labels = pred.select("id", "prediction").toPandas().sort_values("id")[
                "prediction"].to_numpy(dtype="int64")
            spark_sil = float(evaluator.evaluate(pred)) if len(np.unique(labels)) > 1 else -1.0
            score = score_labels(Xs, labels, k, inertia=float(model.summary.trainingCost),
                                 seed=seed, silhouette_sample=silhouette_sample,
                                 bootstrap=bootstrap, null=null)
            score.criteria["spark_silhouette"] = spark_sil
            scores.append(score)
            if progress:
                progress("choosing k", i + 1, len(ks))
    finally:
        df.unpersist()
    return decide(scores, sample_size=len(Xs), silhouette_sample=min(silhouette_sample, len(Xs)),
                  n_customers=n)


FINAL_RESTARTS = 4


def fit_spark(spark, X: np.ndarray, k: int, *, seed: int, n_init: int, value, feature_names,
              partitions: int = 0) -> SegmentModel:
    """The final K-Means on every customer, on Spark: k-means|| from ``min(n_init, 4)`` seeds
    (each restart is a full pass over the data on the cluster), the lowest cost kept."""
    df = _matrix_frame(spark, X, partitions=partitions).cache()
    try:
        km = _best_fit(df, k, seed, min(n_init, FINAL_RESTARTS))
        raw = _labels(km, df)
    finally:
        df.unpersist()
    centers = np.vstack([np.asarray(c, dtype="float64") for c in km.clusterCenters()])
    if len(np.unique(raw)) < k:
        raise InputError(f"Spark K-Means left empty segments at k={k}; use a smaller k")
    return SegmentModel.from_centers(centers, raw, seed=seed, n_init=n_init, value=value,
                                     feature_names=feature_names,
                                     inertia=km.summary.trainingCost,
                                     n_iter=km.summary.numIter, init="spark k-means||")


# ------------------------------------------------------------------------------- the whole job


def run_segmentation_spark(customers: Source = None, transactions: Source = None, *,
                           config: Config | None = None, master: str | None = "local[*]",
                           spark=None, progress: Progress | None = None):
    """:func:`custseg.pipeline.run_segmentation` on Spark; returns the same
    :class:`~custseg.results.segmentation.SegmentationResult` (write it with
    :func:`custseg.outputs.write_outputs`)."""
    from custseg.pipeline import segment_prepared

    cfg = config or Config()
    seg = cfg.segmentation
    spark = spark or get_session(master)
    timings: dict[str, float] = {}
    data = prepare_data_spark(customers, transactions, config=cfg, spark=spark,
                              progress=progress, timings=timings)
    data.ledger.warn("engine", f"run on Apache Spark {spark.version} "
                     f"(master {spark.sparkContext.master})")

    def choose(X: np.ndarray, **kw):
        return choose_k_spark(spark, X, **kw)

    def fit(X: np.ndarray, k: int, value, feature_names):
        return fit_spark(spark, X, k, seed=seg.seed, n_init=seg.n_init, value=value,
                         feature_names=feature_names)

    # everything but the two K-Means steps is the local engine's code
    return segment_prepared(data, config=cfg, progress=progress, timings=timings,
                            choose=choose, fit=fit)


# ------------------------------------------------------------------------------------ scoring


def score_spark(model, customers: Source = None, transactions: Source = None, *,
                as_of: date | None = None, master: str | None = "local[*]", spark=None):
    """:func:`custseg.score.score` with the features built on Spark; the saved custseg model
    (from either engine) assigns the customers in Spark (``mapInPandas``)."""
    from custseg.score import score

    session = [spark]  # started only once score()'s input checks have passed

    def prepare(customers, transactions, **kw):
        session[0] = session[0] or get_session(master)
        return prepare_data_spark(customers, transactions, spark=session[0], **kw)

    return score(model, customers, transactions, as_of=as_of, prepare=prepare,
                 assign=lambda lm, frame: assign_spark(session[0], lm, frame))


def assign_spark(spark, lm, frame: pd.DataFrame) -> pd.DataFrame:
    """:meth:`custseg.score.LoadedModel.assign` applied per partition in Spark."""
    cols = list(frame.columns)
    pdf = frame.reset_index(names="customer_id")
    pdf["customer_id"] = pdf["customer_id"].astype(object)
    sdf = spark.createDataFrame(pdf.astype({c: "float64" for c in cols
                                            if pd.api.types.is_numeric_dtype(pdf[c])}))

    def run(batches):
        for part in batches:
            f = part.set_index("customer_id")
            f.index = f.index.astype(object)
            yield lm.assign(f)

    schema = ("customer_id string, segment_id long, segment_name string, distance double, "
              "confidence double")
    parts = int(max(1, min(64, len(pdf) // 50_000)))
    out = sdf.repartition(parts).mapInPandas(run, schema).toPandas()
    out = out.set_index("customer_id").loc[pdf["customer_id"]].reset_index()
    out["customer_id"] = out["customer_id"].astype(object)
    return out


# -------------------------------------------------------------------------------------- drift


def load_snapshot_spark(path: str | Path, *, config: Config | None = None,
                        name: str | None = None, master: str | None = "local[*]", spark=None):
    """:func:`custseg.snapshots.load_snapshot` with a data folder's features built on Spark
    (a segment run's output folder is read as it is)."""
    from custseg.snapshots import load_snapshot

    def prepare(customers, transactions, *, config):
        return prepare_data_spark(customers, transactions, config=config, spark=spark,
                                  master=master)

    return load_snapshot(path, config=config, name=name, prepare=prepare)


__all__ = ["prepare_data_spark", "run_segmentation_spark", "choose_k_spark", "fit_spark",
           "score_spark", "assign_spark", "load_snapshot_spark",
           "spark_features"]
