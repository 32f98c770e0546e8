"""The segmentation job: sources → schema → features → preprocess → k → model → profile → actions.

:func:`run_segmentation` computes a :class:`~custseg.results.segmentation.SegmentationResult`
(nothing is written, nothing is rendered); :func:`custseg.outputs.write_outputs` writes the
contract outputs atomically; :func:`custseg.segment` does both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from custseg.cleaning import (
    account_columns,
    prepare_customers,
    prepare_transactions,
    restrict_to_customers,
)
from custseg.config import Config
from custseg.derive import infer_currency
from custseg.duck import SqlTransactions, Unsupported, prepare_transactions_sql, wants_duckdb
from custseg.errors import ConfigError, InputError
from custseg.explain import why_placed
from custseg.features import VALUE_INPUTS, FeatureTable, build_features
from custseg.io.db import DbSource, read_db
from custseg.io.readers import read_table
from custseg.ledger import Ledger
from custseg.model import SegmentModel
from custseg.preprocess import Preprocessor
from custseg.profile import (
    SegmentFacts,
    fit_projection,
    load_rules,
    name_segments,
    profile_segments,
    segment_map,
    value_by_segment,
)
from custseg.recommend import recommend
from custseg.results.segmentation import KSelection, SegmentationResult
from custseg.selection import choose_k, restate_structure, silhouette_profile
from custseg.value import VALUE_COLUMNS, HoldoutRun, holdout_from_lines, value_from_days

Progress = Callable[[str, int, int], None]
Source = str | Path | pd.DataFrame | DbSource | None
#: draws report charts that need only the k selection (PNG bytes by name): a big run calls it
#: while its final K-Means runs (the caller supplies it: the pipeline imports no renderer)
SelectionCharts = Callable[[KSelection], dict[str, bytes]]


class StageTimer:
    def __init__(self, timings: dict[str, float], progress: Progress | None):
        self.timings = timings
        self.progress = progress

    def stage(self, name: str):
        timer = self

        class _S:
            def __enter__(self):
                self.t0 = time.perf_counter()
                if timer.progress:
                    timer.progress(name, 0, 1)

            def __exit__(self, *exc):
                timer.timings[name] = timer.timings.get(name, 0.0) + time.perf_counter() - self.t0
                if timer.progress and exc[0] is None:
                    timer.progress(name, 1, 1)

        return _S()


#: from this many customers, label-free work overlaps the final K-Means (see _model_and_profile)
OVERLAP_ROWS = 200_000


def _load(source: Source, cfg_path: str | DbSource | None, label: str, delimiter: str | None,
          encoding: str | None) -> tuple[pd.DataFrame | None, str | None]:
    source = source if source is not None else cfg_path
    if source is None:
        return None, None
    if isinstance(source, DbSource):
        # a PostgreSQL table or query: the same text frame as a file's (io.db); the label names
        # the server without its password
        return read_db(source), source.label
    if isinstance(source, pd.DataFrame):
        if len(source) == 0:
            raise InputError(f"the {label} table has no rows", file=f"<{label} DataFrame>")
        return source.copy(), f"<{label} DataFrame>"
    return read_table(source, delimiter=delimiter, encoding=encoding), str(source)


@dataclass
class PreparedData:
    """Inputs read, cleaned and turned into per-customer features (before any model)."""

    features: FeatureTable
    ledger: Ledger
    as_of: date | None
    files: dict[str, str]
    ignored_columns: dict[str, str]
    fences: dict[str, float | None] = field(default_factory=dict)
    transactions_engine: str | None = None   # "duckdb" or "pandas": where they were cleaned
    currency: str | None = None              # the symbol the amount / value column names show
    value_model: dict | None = None          # what the value model fitted (add_value_columns)
    holdout: HoldoutRun | None = None        # the holdout check ([value] calibration_end)
    columns: list[dict] = field(default_factory=list)  # every input column: role, use, why


def prepare_data(customers: Source = None, transactions: Source = None, *,
                 config: Config | None = None, progress: Progress | None = None,
                 timings: dict[str, float] | None = None, scoring: bool = False,
                 fixed_groups: dict[str, list[str]] | None = None,
                 fences: dict[str, float] | None = None,
                 ledger: Ledger | None = None) -> PreparedData:
    """Read, type, clean and aggregate the inputs into one feature row per customer.

    Shared by segmentation, scoring and drift so that every path builds features the same way.
    ``scoring=True`` keeps columns that are constant or empty in a small batch (see
    :func:`~custseg.cleaning.prepare_customers`). ``ledger``: record the row accounting there
    (the caller can still read it when preparation fails, e.g. the API when no customer is left).
    """
    cfg = config or Config()
    seg = cfg.segmentation
    timer = StageTimer(timings if timings is not None else {}, progress)
    ledger = ledger if ledger is not None else Ledger()

    tx_source = transactions if transactions is not None else cfg.transactions.path
    sql_tx = None
    if wants_duckdb(tx_source, "always" if seg.transactions_engine == "duckdb"
                    else "never" if seg.transactions_engine == "pandas" else "auto"):
        # read, validate and clean the transactions file inside DuckDB (it is never a pandas
        # frame); what SQL can't reproduce exactly falls back to the pandas path below
        with timer.stage("read + clean transactions"):
            try:
                sql_tx = prepare_transactions_sql(
                    tx_source, cfg.transactions, ledger=ledger, as_of=seg.as_of,
                    on_invalid=seg.on_invalid, window_days=seg.window_days,
                    delimiter=cfg.transactions.delimiter, encoding=cfg.transactions.encoding,
                    threads=None, memory_limit=seg.duckdb_memory_limit,
                    temp_directory=seg.duckdb_temp_directory, progress=progress)
            except Unsupported:
                sql_tx = None
    try:
        return _prepare_rest(customers, None if sql_tx is not None else transactions, cfg,
                             timer, ledger, scoring, fixed_groups, fences, sql_tx)
    finally:
        if sql_tx is not None:
            sql_tx.close()


def _prepare_rest(customers: Source, transactions: Source, cfg: Config, timer: StageTimer,
                  ledger: Ledger, scoring: bool, fixed_groups: dict[str, list[str]] | None,
                  fences: dict[str, float] | None, sql_tx: SqlTransactions | None,
                  ) -> PreparedData:
    seg = cfg.segmentation
    with timer.stage("read"):
        cust_raw, cust_file = _load(customers, cfg.db_source("customers") or cfg.customers.path,
                                    "customers",
                                    cfg.customers.delimiter, cfg.customers.encoding)
        tx_raw, tx_file = (None, None) if sql_tx is not None else _load(
            transactions, cfg.db_source("transactions") or cfg.transactions.path, "transactions",
            cfg.transactions.delimiter,
            cfg.transactions.encoding)
    if cust_raw is None and tx_raw is None and sql_tx is None:
        raise InputError("give a customers table, a transactions log, or both")

    with timer.stage("clean"):
        as_of = seg.as_of
        cust = tx = None
        if sql_tx is not None:
            as_of = sql_tx.as_of
            tx_file = sql_tx.file
        if tx_raw is not None:
            # transactions define the as-of date when present, so they are typed first
            tx = prepare_transactions(tx_raw, cfg.transactions, file=tx_file or "", ledger=ledger,
                                      as_of=as_of, on_invalid=seg.on_invalid,
                                      window_days=seg.window_days)
            as_of = tx.as_of
        if cust_raw is not None:
            cust = prepare_customers(cust_raw, cfg.customers, file=cust_file or "",
                                     ledger=ledger, as_of=as_of, on_invalid=seg.on_invalid,
                                     scoring=scoring, fences=fences)
        if tx is not None and cust is not None:
            restrict_to_customers(tx, cust.frame.index, ledger)
        if sql_tx is not None and cust is not None:
            sql_tx.restrict_to_customers(cust.frame.index, ledger)

    with timer.stage("features"):
        if sql_tx is not None:
            behaviour = sql_tx.behaviour(cfg.features, fixed_groups)
            feats = build_features(cust, None, cfg.features, ledger, fixed_groups,
                                   behaviour=behaviour)
            # customers with clean lines are in the features or already excluded: only the ids
            # left without clean lines need accounting for (not a million-id set difference)
            seen_tx = SimpleNamespace(seen_ids=sql_tx.ids_without_clean_lines())
        else:
            feats = build_features(cust, tx, cfg.features, ledger, fixed_groups)
            seen_tx = tx
        as_of = feats.as_of or as_of
        account_for_customers(ledger, cust, seen_tx, feats, complete=sql_tx is None)
        columns = account_columns(cust, tx if sql_tx is None else sql_tx, ledger)
        for e in columns:  # a feature [features] include/exclude left out of the model
            f = e.get("feature")
            if e["use"] == "feature" and f is not None and f not in feats.model_columns:
                e["use"] = "profiled" if f in feats.descriptive else "ignored"
                e["reason"] += " (left out of the model by [features])"
    files = {k: v for k, v in (("customers", cust_file), ("transactions", tx_file)) if v}
    holdout = _holdout(cfg, tx, sql_tx, as_of, timer)
    tx_roles = tx.roles if tx is not None else sql_tx.roles if sql_tx is not None else {}
    money_columns = [col for role, col in tx_roles.items() if role in ("amount", "unit_price")]
    if cust is not None and cust.value_column:
        money_columns.append(cust.value_column)
    engine = "duckdb" if sql_tx is not None else "pandas" if tx is not None else None
    return PreparedData(features=feats, ledger=ledger, as_of=as_of, files=files,
                        ignored_columns=dict(cust.ignored) if cust is not None else {},
                        fences=dict(cust.fences) if cust is not None else {},
                        transactions_engine=engine, currency=infer_currency(money_columns),
                        holdout=holdout, columns=columns)


def run_segmentation(customers: Source = None, transactions: Source = None, *,
                     config: Config | None = None, progress: Progress | None = None,
                     previous_model: tuple[SegmentModel, Preprocessor] | None = None,
                     selection_charts: SelectionCharts | None = None,
                     ) -> SegmentationResult:
    """Run the whole segmentation job in memory.

    Parameters
    ----------
    customers, transactions : path or DataFrame, optional
        At least one is needed. Paths may be CSV (any delimiter, gzip), Parquet or Excel.
    config : Config, optional
        Column roles, feature selection and k-selection settings.
    progress : callable(stage, done, total), optional
        Called as stages start and finish (the CLI draws progress bars with it).
    previous_model : (SegmentModel, Preprocessor), optional
        An earlier model (as returned by ``load_model(...)[:2]``): the customers are also put in
        its feature space, and segments whose centroids match its centroids keep their ids.
    selection_charts : callable(KSelection) -> {name: PNG bytes}, optional
        Draws the report's k-selection charts; a big run calls it while its final K-Means runs
        and keeps them in ``result.charts`` (:func:`custseg.outputs.selection_charts`).
    """
    cfg = config or Config()
    timings: dict[str, float] = {}
    data = prepare_data(customers, transactions, config=cfg, progress=progress, timings=timings)
    return segment_prepared(data, config=cfg, progress=progress, previous_model=previous_model,
                            timings=timings, selection_charts=selection_charts)


def _holdout(cfg: Config, tx, sql_tx: SqlTransactions | None, as_of: date | None,
             timer: StageTimer) -> HoldoutRun | None:
    """The holdout check when ``[value] calibration_end`` is set: the value model fitted on the
    purchases up to it, its predictions compared with the purchases after it."""
    v = cfg.value
    if v.calibration_end is None or not v.enabled:
        return None
    with timer.stage("holdout check"):
        if tx is not None:
            f = tx.frame
            lines = f.loc[~f["is_return"].to_numpy(bool), ["customer_id", "ts", "amount"]]
            source = tx.file
        elif sql_tx is not None:
            lines = sql_tx.con.execute(
                "SELECT customer_id, ts, CAST(amount AS DOUBLE) AS amount FROM tx "
                "WHERE NOT is_return").df()
            source = sql_tx.file
        else:
            raise ConfigError("--calibration-end needs a transactions log")
        return holdout_from_lines(lines, calibration_end=v.calibration_end, as_of=as_of,
                                  unit_days=v.unit_days, source=source)


def add_value_columns(data: PreparedData, cfg: Config) -> PreparedData:
    """P(alive), expected purchases, expected spend and CLV per customer (BG/NBD + Gamma-Gamma,
    :mod:`custseg.value`), fitted on the driver from the purchase-day inputs every engine
    aggregates; added as descriptive columns (profiled, never clustered on). The inputs
    themselves are dropped. A log the model cannot support is noted, not fatal."""
    f = data.features
    if not set(VALUE_INPUTS) <= set(f.frame.columns):
        return data
    frame = f.frame.drop(columns=list(VALUE_INPUTS))
    info: dict | None = None
    descriptive = list(f.descriptive)
    if cfg.value.enabled:
        v = cfg.value
        try:
            run = value_from_days(f.frame[list(VALUE_INPUTS)], unit_days=v.unit_days,
                                  horizon_months=v.horizon_months,
                                  monthly_discount=v.monthly_discount, as_of=data.as_of)
        except InputError as exc:
            info = {"note": f"value model not fitted: {exc.message}"}
            data.ledger.warn("value", info["note"])
        else:
            info = run.info
            # a log without amounts (ids and dates) has no spend: purchases and P(alive) only
            money = "monetary" in f.frame.columns
            if not money:
                info["note_money"] = ("the log has no amounts: expected spend and CLV are not "
                                      "computed (P(alive) and expected purchases need dates only)")
            for c in VALUE_COLUMNS:
                if not money and c in ("expected_spend", "clv"):
                    continue
                if run.columns[c].notna().any():
                    frame[c] = run.columns[c]
                    descriptive.append(c)
            info["at_risk_below"] = v.at_risk_below
    feats = replace(f, frame=frame, descriptive=descriptive)
    return replace(data, features=feats, value_model=info)


# the K-Means steps an engine may replace (custseg.spark runs them on a cluster):
# choose(X, k_min=, k_max=, seed=, selection_sample=, silhouette_sample=, bootstrap=, progress=)
ChooseK = Callable[..., KSelection]
# fit(X, k, value, feature_names) -> a fitted SegmentModel
FitModel = Callable[[np.ndarray, int, "np.ndarray | None", list[str]], SegmentModel]


def segment_prepared(data: PreparedData, *, config: Config | None = None,
                     progress: Progress | None = None,
                     previous_model: tuple[SegmentModel, Preprocessor] | None = None,
                     timings: dict[str, float] | None = None,
                     choose: ChooseK | None = None, fit: FitModel | None = None,
                     selection_charts: SelectionCharts | None = None,
                     ) -> SegmentationResult:
    """Preprocess, choose k, fit, profile and name: everything after :func:`prepare_data`.

    ``choose`` and ``fit`` replace the local k selection and final K-Means (another engine's);
    everything else is this code. ``selection_charts``: see :func:`run_segmentation`.
    """
    cfg = config or Config()
    timer = StageTimer(timings if timings is not None else {}, progress)
    with timer.stage("value model"):
        data = add_value_columns(data, cfg)
    feats = data.features
    with timer.stage("preprocess"):
        pre = Preprocessor(numeric=feats.numeric, binary=feats.binary,
                           categorical=feats.categorical, weights=cfg.features.weights,
                           max_levels=cfg.features.max_categories,
                           min_level_share=cfg.features.min_category_share)
        X = pre.fit_transform(feats.frame)

    with threadpool_limits(limits=cfg.segmentation.threads):
        return _model_and_profile(cfg, X, pre, data, timer, progress, previous_model,
                                  choose, fit, selection_charts)


def _model_and_profile(cfg: Config, X: np.ndarray, pre: Preprocessor, data: PreparedData,
                       timer: StageTimer, progress: Progress | None,
                       previous_model: tuple[SegmentModel, Preprocessor] | None,
                       choose: ChooseK | None, fit: FitModel | None,
                       selection_charts: SelectionCharts | None) -> SegmentationResult:
    seg = cfg.segmentation
    feats = data.features
    n = X.shape[0]
    fixed_k = seg.k if isinstance(seg.k, int) else None
    if fixed_k is not None and n <= fixed_k:
        raise InputError(f"{n} customer(s) left after cleaning: fewer than k={fixed_k} + 1; "
                         "use a smaller k")
    with timer.stage("choose k"):
        chooser = choose or partial(choose_k, workers=seg.k_workers)
        selection = chooser(X, k_min=seg.k_min, k_max=max(seg.k_max, seg.k_min), seed=seg.seed,
                             selection_sample=seg.selection_sample,
                             silhouette_sample=seg.silhouette_sample, bootstrap=seg.bootstrap,
                            progress=progress) if fixed_k is None or n > seg.k_min + 1 else None
        if fixed_k is not None:
            if selection is None:
                raise InputError(f"{n} customers are too few to segment")
            selection.k = fixed_k
            selection.overridden = True
            selection.reason = (f"k={fixed_k} was set by the user (--k); the evidence-based rule "
                                f"would choose: {selection.reason}")
            restate_structure(selection)  # the verdict is about the k used
    assert selection is not None
    projection = None
    charts: dict[str, bytes] = {}
    with timer.stage("fit"):
        value = (feats.frame[feats.value_column].to_numpy(dtype="float64")
                 if feats.value_column else None)
        prev, prev_space = None, None
        if previous_model is not None:
            prev, prev_pre = previous_model
            prev_space = prev_pre.transform(feats.frame)
        if fit is not None:
            if previous_model is not None:
                raise ConfigError("--previous-model works with the local engine only")
            model = fit(X, selection.k, value, pre.feature_names_out_)
        else:
            init = (selection.sample_centers.get(selection.k)
                    if seg.final_fit == "from-sample" and n > selection.sample_size else None)
            final = partial(SegmentModel(k=selection.k, seed=seg.seed, n_init=seg.n_init).fit,
                            X, value=value, feature_names=pre.feature_names_out_,
                            previous=prev, previous_space=prev_space, init=init)
            if n >= OVERLAP_ROWS:
                # scikit-learn's Lloyd loop runs outside the interpreter lock: on a big run the
                # work that needs no segments (the map's projection, the k-selection charts)
                # is done on this thread meanwhile
                def final_limited() -> SegmentModel:
                    # (OpenMP's thread count is per thread: the worker sets its own)
                    with threadpool_limits(limits=seg.threads):
                        return final()

                with ThreadPoolExecutor(max_workers=1) as pool:
                    fitting = pool.submit(final_limited)
                    projection = fit_projection(X)
                    if selection_charts is not None:
                        # (drawn here at no cost in time: the fit takes longer)
                        charts.update(selection_charts(selection))
                    model = fitting.result()
            else:
                model = final()
        labels = model.labels_
        dist = getattr(model, "distance_", None)
        if dist is None:
            dist = model.transform(X)[np.arange(n), np.searchsorted(model.segment_ids_, labels)]

    with timer.stage("profile"):
        profiles = profile_segments(feats, labels)
        sil = silhouette_profile(X, labels, size=seg.silhouette_sample, seed=seg.seed)
        smap = segment_map(X, labels, model.cluster_centers_, model.segment_ids_, seed=seg.seed,
                           projection=projection)
        rules = load_rules(cfg.naming_rules)
        facts = SegmentFacts(feats, labels)
        value_by_segment(profiles, feats, labels, at_risk_below=cfg.value.at_risk_below)
        name_segments(profiles, rules, facts)
        currency = cfg.report.currency if cfg.report.currency is not None else data.currency
        recommend(profiles, rules, currency or "", facts=facts, outcomes=feats.outcomes,
                  horizon_months=cfg.value.horizon_months)
        why = explain_assignments(X, labels, model, pre, feats, profiles)

    return SegmentationResult(
        config=cfg, inputs=data.files, as_of=data.as_of, ledger=data.ledger, features=feats,
        preprocessor=pre, matrix=X, selection=selection, model=model, labels=labels,
        distances=dist, profiles=profiles, silhouette=sil, segment_map=smap, fences=data.fences,
        ignored_columns=data.ignored_columns, timings=timer.timings, charts=charts,
        currency=currency or "", value_model=data.value_model, why=why,
        holdout=_holdout_by_segment(data.holdout, feats, labels, profiles), columns=data.columns)


def explain_assignments(X: np.ndarray, labels: np.ndarray, model: SegmentModel,
                        pre: Preprocessor, feats: FeatureTable, profiles) -> np.ndarray:
    """Per customer, the features that place it in its segment (:mod:`custseg.explain`)."""
    ids = np.asarray(model.segment_ids_)
    features = [f for f in [*feats.numeric, *feats.binary] if f in feats.frame.columns]
    texts = why_placed(
        X, np.searchsorted(ids, labels), np.asarray(model.cluster_centers_),
        pre.feature_names_out_, features,
        {f: feats.frame[f].to_numpy(dtype="float64") for f in features},
        [profiles.by_id(int(sid)).medians for sid in ids],
        {f: profiles.population[f]["median"] for f in features if f in profiles.population},
        feats.units)
    return np.array(texts, dtype=object)


def _holdout_by_segment(holdout: HoldoutRun | None, feats: FeatureTable, labels: np.ndarray,
                        profiles) -> dict | None:
    """The holdout check's figures, with predicted and actual repeat purchases per segment (of
    the customers seen before the calibration end)."""
    if holdout is None:
        return None
    seg = pd.Series(labels, index=feats.frame.index)
    per = holdout.per_customer.join(seg.rename("segment_id"), how="inner")
    rows = []
    for s in profiles.segments:
        p = per[per["segment_id"] == s.segment_id]
        rows.append({"segment_id": s.segment_id, "name": s.name, "customers": int(len(p)),
                     "predicted": round(float(p["predicted"].sum()), 3),
                     "actual": int(p["actual"].sum())})
    return {**holdout.info, "segments": rows}


def account_for_customers(ledger: Ledger, cust, tx, feats: FeatureTable,
                          complete: bool = True) -> None:
    """Every customer id seen in any input is segmented or excluded with a reason.

    ``complete=False``: ``tx.seen_ids`` holds only the ids without clean lines (the others are
    segmented or excluded already), so the ids seen are not counted against the segmented.
    """
    seen = pd.Index([])
    for t in (cust, tx):
        if t is not None:
            seen = t.seen_ids if len(seen) == 0 else seen.union(t.seen_ids)
    if complete and len(seen) == len(feats.frame):  # every customer seen was segmented
        return
    excl = ledger.excluded_frame()
    already = pd.Index(excl.loc[excl["source"] == "customer", "customer_id"].unique())
    rest = seen.difference(feats.frame.index).difference(already)
    if len(rest) == 0:
        return
    rows = excl[(excl["source"] != "customer") & excl["customer_id"].isin(rest)]
    top = (rows.groupby("customer_id")["reason"]
           .agg(lambda r: r.value_counts().sort_index().idxmax()))
    for reason, ids in top.groupby(top).groups.items():
        ledger.exclude_customers(sorted(ids), f"all rows excluded ({reason})")
