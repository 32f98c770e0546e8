"""Reading and cleaning the inputs on Spark with the same rules as :mod:`custseg.cleaning`.

* Every value is parsed by the very same pandas functions as the local engine
  (:func:`~custseg.parsing.parse_numeric`, :func:`~custseg.parsing.parse_dates`,
  :func:`~custseg.parsing.clean_ids`) inside ``mapInPandas``; the date format is decided once for
  the whole column (the first of :data:`~custseg.parsing.DATE_FORMATS` that parses every value,
  checked by Spark over the full column) and then fixed for every partition.
* The steps that need the whole table (exact duplicate rows, the as-of date, the feature window,
  the order in which exclusion rules apply, "every value of the column is empty") run as Spark
  SQL, in the order of :func:`~custseg.cleaning.prepare_transactions`, so the ledger counts match.
* Rows are numbered 1.. in file order (``zipWithIndex`` of a single-file read), as locally.
* Customer tables (one row per customer, the size of the per-customer feature table the driver
  holds anyway) are read by Spark and cleaned on the driver by
  :func:`~custseg.cleaning.prepare_customers` itself, so the demographic features follow the one
  set of rules in :mod:`custseg.derive` (nothing here restates a bound).
* The tokens that mark a transaction line (return flags, yes/no discount flags, the
  cancellation prefix, the label of an empty category) are the ones declared in
  :mod:`custseg.derive`.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from custseg.cleaning import drops_duplicate_lines, duplicates_policy, kept_duplicates_note
from custseg.config import TableConfig
from custseg.derive import CANCELLATION_PREFIX, NO_LABEL, RETURN_FLAGS, YES_FLAGS
from custseg.errors import InputError
from custseg.io.readers import NA_VALUES, sniff_delimiter, sniff_encoding
from custseg.ledger import Ledger
from custseg.parsing import (
    DATE_FORMATS,
    IMPLAUSIBLE_FUTURE,
    clean_ids,
    date_error,
    date_plausibility,
    no_lines_before_as_of,
    parse_dates,
    parse_numeric,
    to_naive_utc,
)
from custseg.parsing import clean_text as _text
from custseg.roles import has_money, transaction_roles

ROW = "__row"
NUMERIC_ROLES = ("quantity", "unit_price", "amount")


@dataclass
class RawTable:
    """A file read by Spark: every column renamed to ``c0..cN`` (originals in ``columns``) plus
    the 1-based data-row number ``__row``."""

    frame: object                # pyspark.sql.DataFrame
    columns: list[str]           # original header names, in order
    file: str

    def col(self, name: str) -> str:
        return f"c{self.columns.index(name)}"


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def check_local_file(path: str | Path) -> Path:
    """The same checks as the local reader for a local path (a remote URL is left to Spark)."""
    name = str(path)
    p = Path(name.removeprefix("file://"))
    if _is_remote(name):
        return p
    if not p.exists():
        raise InputError("file not found", file=name)
    if p.is_dir() and not name.lower().endswith(".parquet"):
        raise InputError("expected a file but this is a folder", file=name)
    if p.is_file() and p.stat().st_size == 0:
        raise InputError("file is empty", file=name)
    return p


def read_raw(spark, path: str | Path, *, delimiter: str | None = None,
             encoding: str | None = None) -> RawTable:
    """Read a CSV (gzip too) or Parquet file with Spark, every CSV column as text."""
    from pyspark.sql import functions as F

    name = str(path)
    sep, enc = delimiter or ",", encoding or "utf-8"
    if not _is_remote(name):
        p = check_local_file(name)
        if p.is_file() and not name.lower().endswith(".parquet"):
            opener = gzip.open if p.name.lower().endswith(".gz") else open
            try:
                with opener(p, "rb") as fh:
                    sample = fh.read(65536)
            except (OSError, gzip.BadGzipFile):
                raise InputError("not a valid gzip file", file=name) from None
            enc = encoding or sniff_encoding(sample)
            if enc in ("utf-16", "utf-32"):
                raise InputError(f"the file is {enc.upper()} text, which --engine spark does not "
                                 "read line by line; save it as UTF-8 or use --engine local",
                                 file=name)
            sep = delimiter or sniff_delimiter(sample.decode(enc, errors="replace"))
        name_for_spark = str(p.resolve())
    else:
        name_for_spark = name
    try:
        if name.lower().endswith(".parquet"):
            df = spark.read.parquet(name_for_spark)
        else:
            df = (spark.read.option("header", True).option("sep", sep)
                  .option("encoding", "utf-8" if enc == "utf-8-sig" else enc)
                  .option("quote", '"').option("escape", '"').option("multiLine", False)
                  .option("inferSchema", False).option("nullValue", None)
                  .option("emptyValue", None).csv(name_for_spark))
    except Exception as exc:
        raise _as_input_error(exc, name) from None
    columns = [str(c).lstrip("\ufeff").strip() for c in df.columns]
    dupes = [c for i, c in enumerate(columns) if c in columns[:i]]
    if dupes:
        raise InputError("duplicate column name in header", file=name, column=dupes[0])
    safe = [f"c{i}" for i in range(len(columns))]
    df = df.toDF(*safe)
    if not name.lower().endswith(".parquet"):
        # the same missing-value markers as the local reader (pyarrow's null_values)
        df = df.select([F.when(F.col(c).isin(NA_VALUES), None).otherwise(F.col(c)).alias(c)
                        for c in safe])
    return RawTable(frame=_number_rows(df), columns=columns, file=name)


def _number_rows(df):
    """Add ``__row``: 1-based row numbers in file order, computed in the JVM (no Python).

    Rows keep their order inside each block of a file, so the number is the block's offset
    (rows in the blocks before it, by file and block start) plus the position in the block.
    """
    from pyspark.sql import functions as F

    df = df.select("*", F.col("_metadata.file_path").alias("__fp"),
                   F.col("_metadata.file_block_start").alias("__blk"),
                   F.spark_partition_id().alias("__pid"),
                   F.monotonically_increasing_id().alias("__mid"))
    blocks = (df.groupBy("__fp", "__blk", "__pid")
              .agg(F.min("__mid").alias("__first"), F.count(F.lit(1)).alias("__n"))
              .toPandas().sort_values(["__fp", "__blk", "__first"]))
    blocks["__offset"] = blocks["__n"].cumsum() - blocks["__n"]
    spark = df.sparkSession
    offsets = spark.createDataFrame(blocks[["__pid", "__blk", "__fp", "__first", "__offset"]]
                                    .astype({"__pid": "int32", "__first": "int64",
                                             "__offset": "int64", "__blk": "int64"})
                                    .astype({"__fp": object}))
    out = df.join(F.broadcast(offsets), ["__fp", "__blk", "__pid"])
    row = F.col("__offset") + (F.col("__mid") - F.col("__first")) + F.lit(1)
    keep = [c for c in df.columns if not c.startswith("__")]
    return out.select(*keep, row.cast("long").alias(ROW))


def _ts(value: pd.Timestamp):
    """A timestamp literal read in the session time zone (UTC), like the parsed values."""
    from pyspark.sql import functions as F

    return F.lit(value.strftime("%Y-%m-%d %H:%M:%S.%f")).cast("timestamp")


def _as_input_error(exc: Exception, file: str) -> InputError:
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if "PATH_NOT_FOUND" in text or "does not exist" in text or "FileNotFound" in text:
        return InputError("file not found", file=file)
    return InputError(f"cannot read file ({first[:300]})", file=file)


def raw_to_pandas(raw: RawTable) -> pd.DataFrame:
    """The whole raw table on the driver, in file order, with its original column names (as
    :func:`custseg.io.readers.read_table` returns it)."""
    pdf = raw.frame.orderBy(ROW).toPandas()
    pdf = pdf.drop(columns=ROW)
    pdf.columns = raw.columns
    for c in pdf.columns:
        if pdf[c].dtype == object:
            pdf[c] = pdf[c].astype("string").astype(object).where(pdf[c].notna(), None)
    return pdf


# ------------------------------------------------------------------------------- transactions


@dataclass
class SparkTransactions:
    """Clean transaction lines on Spark, in the columns :mod:`custseg.features` expects."""

    frame: object               # pyspark DataFrame: customer_id, order_id, ts, amount, is_return…
    file: str
    roles: dict[str, str]
    as_of: date
    seen_ids: pd.Index          # every customer id in the file (also of excluded rows)
    columns: list[str]


def _date_formats(raw: RawTable, column: str, fixed: str | None,
                  n_rows: int) -> tuple[list[str], str]:
    """(candidates, fallback) for the date column, as the local engine decides.

    Locally the first format of :data:`~custseg.parsing.DATE_FORMATS` that parses every value of
    the column wins; only formats that parse a sample spread over the column can, so these are
    the candidates, tried in order on the whole column by the parsing pass itself. When none
    parses every value, the format that parses most of the sample is used (``fallback``).
    """
    from pyspark.sql import functions as F

    if fixed:
        return [], fixed
    c = raw.col(column)
    present = raw.frame.where(F.col(c).isNotNull() & (F.trim(F.col(c).cast("string")) != ""))
    frac = min(1.0, 4000 / max(n_rows, 1))
    sample = pd.Series([r[0] for r in present.select(F.col(c).cast("string"))
                        .sample(fraction=frac, seed=0).limit(2000).collect()],
                       dtype="string").str.strip()
    if sample.empty:
        first = present.select(F.col(c).cast("string")).first()
        if first is None:
            return [], DATE_FORMATS[0]
        sample = pd.Series([first[0]], dtype="string").str.strip()
    ok = [(f, int(to_naive_utc(sample, f).notna().sum()))
          for f in DATE_FORMATS]
    best, best_ok = max(ok, key=lambda t: t[1])
    return [f for f, cnt in ok if cnt == len(sample)], best if best_ok > 0 else "mixed"


def _parse_partition(columns: list[str], roles: dict[str, str], file: str, fmt: str):
    """A mapInPandas function: raw lines -> typed values and the per-row rule flags."""
    names = {f"c{i}": c for i, c in enumerate(columns)}

    def run(batches):
        from custseg.spark.session import quiet_pandas_warning

        quiet_pandas_warning()
        for pdf in batches:
            rows = pdf[ROW].to_numpy(dtype="int64")
            raw = pdf.rename(columns=names)
            ids = clean_ids(raw[roles["customer_id"]])
            ts_raw = raw[roles["timestamp"]]
            ts, bad_ts = parse_dates(ts_raw, file=file, column=roles["timestamp"], rows=rows,
                                     fmt=fmt, on_invalid="exclude")
            fmt_bad = bad_ts.copy()
            if bad_ts.any() and not pd.api.types.is_datetime64_any_dtype(ts_raw):
                # values the format cannot read at all (not just dates out of range)
                t = ts_raw[bad_ts].astype("string").str.strip()
                fmt_bad[bad_ts] = to_naive_utc(t, fmt).isna().to_numpy()
            out = {ROW: rows, "dup": pdf["__dup"].to_numpy(dtype=bool),
                   "customer_id": ids.astype(object).where(ids.notna(), None),
                   "ts": ts.to_numpy(dtype="datetime64[ns]"), "ts_bad": bad_ts,
                   "ts_fmt_bad": fmt_bad}
            for role in NUMERIC_ROLES:
                if role in roles:
                    v, b = parse_numeric(raw[roles[role]], file=file, column=roles[role],
                                         rows=rows, on_invalid="exclude")
                    out[role] = v.to_numpy(dtype="float64")
                    out[f"{role}_bad"] = b
            if "order_id" in roles:
                order = clean_ids(raw[roles["order_id"]])
                hint = order.str.upper().str.startswith(CANCELLATION_PREFIX).fillna(False) \
                    .to_numpy(dtype=bool)
            else:
                order = ids + "@" + ts.astype("string")
                hint = np.zeros(len(pdf), dtype=bool)
            if "is_return" in roles:
                flag = _text(raw[roles["is_return"]]).str.lower()
                hint |= flag.isin(RETURN_FLAGS).to_numpy(dtype=bool)
            out["order_id"] = order.fillna("").astype(object)
            out["return_hint"] = hint
            for role in ("category", "channel"):
                if role in roles:
                    out[role] = _text(raw[roles[role]]).fillna(NO_LABEL).astype(object)
            if "discount" in roles:
                d_raw = raw[roles["discount"]]
                d_num, d_bad = parse_numeric(d_raw, file=file, column=roles["discount"],
                                             rows=rows, on_invalid="exclude")
                flag = _text(d_raw).str.lower()
                d_flag = flag.isin(YES_FLAGS).astype("float64").where(flag.notna())
                out["disc_num"] = d_num.to_numpy(dtype="float64")
                out["disc_bad"] = d_bad
                out["disc_flag"] = d_flag.to_numpy(dtype="float64", na_value=np.nan)
            yield pd.DataFrame(out)

    schema = [f"{ROW} long", "dup boolean", "customer_id string", "ts timestamp",
              "ts_bad boolean", "ts_fmt_bad boolean"]
    for role in NUMERIC_ROLES:
        if role in roles:
            schema += [f"{role} double", f"{role}_bad boolean"]
    schema += ["order_id string", "return_hint boolean"]
    schema += [f"{r} string" for r in ("category", "channel") if r in roles]
    if "discount" in roles:
        schema += ["disc_num double", "disc_bad boolean", "disc_flag double"]
    return run, ", ".join(schema)


def _first_parse_error(raw: RawTable, parsed, roles: dict[str, str], fmt: str) -> None:
    """on_invalid="error": raise the InputError the local engine raises first."""
    from pyspark.sql import functions as F

    checks = [("ts_bad", roles["timestamp"], "date")]
    checks += [(f"{r}_bad", roles[r], "number") for r in NUMERIC_ROLES if r in roles]
    aggs = []
    for flag, _, _ in checks:
        aggs += [F.sum(F.col(flag).cast("long")).alias(f"n_{flag}"),
                 F.min(F.when(F.col(flag), F.col(ROW))).alias(f"r_{flag}")]
    stats = parsed.agg(*aggs).first()
    for flag, column, kind in checks:
        n = stats[f"n_{flag}"] or 0
        if n:
            row = int(stats[f"r_{flag}"])
            value = raw.frame.where(F.col(ROW) == row).select(raw.col(column)).first()[0]
            if kind == "date":
                msg = date_error(fmt, n, value)
            else:
                msg = f"cannot parse as a number ({n} such values)"
            raise InputError(msg, file=raw.file, column=column, row=row, value=value)


def prepare_transactions_spark(raw: RawTable, cfg: TableConfig, *, ledger: Ledger,
                               as_of: date | None, on_invalid: str = "error",
                               window_days: int | None = None) -> SparkTransactions:
    """:func:`custseg.cleaning.prepare_transactions` on Spark: the same rules, in the same order,
    the same ledger (reasons and counts; excluded rows are listed on the driver)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    file = raw.file
    columns = raw.columns
    roles = transaction_roles(columns, cfg, file)
    if not has_money(roles):
        raise InputError("the Spark engine needs an amount column (or quantity and unit "
                         "price); a log of ids and dates runs on the local engine "
                         "(--engine local). Columns seen: " + ", ".join(columns), file=file)
    df = raw.frame
    n_rows = df.count()
    if n_rows == 0:
        raise InputError(f"file has a header but no data rows (columns: {', '.join(columns)})",
                         file=file)
    candidates, fallback = _date_formats(raw, roles["timestamp"], cfg.date_format, n_rows)
    safe = [f"c{i}" for i in range(len(columns))]
    # exact duplicate rows: every occurrence after the first (in file order)
    w = Window.partitionBy(*safe).orderBy(ROW)
    df = df.withColumn("__dup", F.row_number().over(w) > 1)
    parsed = None
    for fmt in candidates:
        fn, schema = _parse_partition(columns, roles, file, fmt)
        parsed = df.mapInPandas(fn, schema).persist()
        if not parsed.agg(F.max(F.col("ts_fmt_bad").cast("int"))).first()[0]:
            break  # this format reads every date of the column: the local engine's choice
        parsed.unpersist()
        parsed = None
    if parsed is None:
        fmt = fallback
        fn, schema = _parse_partition(columns, roles, file, fmt)
        parsed = df.mapInPandas(fn, schema).persist()
    return _apply_rules(raw, parsed, roles, ledger, as_of, on_invalid, window_days, n_rows, fmt,
                        cfg)


def _apply_rules(raw, parsed, roles, ledger, as_of, on_invalid, window_days, n_rows, fmt,
                 cfg):
    from pyspark.sql import functions as F

    file = raw.file
    if on_invalid == "error":
        _first_parse_error(raw, parsed, roles, fmt)
    src = ledger.source("transactions", file, n_rows)

    ids_present = parsed.where(F.col("customer_id").isNotNull()).limit(1).count()
    if ids_present == 0:
        raise InputError("column has no values at all (every cell is empty)", file=file,
                         column=roles["customer_id"])
    # identical lines: the local engine's rule (dropped only when an order id identifies lines)
    src.duplicates = duplicates_policy(cfg, roles)
    drop_dups = drops_duplicate_lines(cfg, roles)
    if not drop_dups:
        n_dups = parsed.where(F.col("dup") & F.col("customer_id").isNotNull()).count()
        if n_dups:
            ledger.warn("duplicates", kept_duplicates_note(file, int(n_dups), cfg))
    stage1 = F.when(F.col("customer_id").isNull(), "missing customer_id")
    if drop_dups:
        stage1 = stage1.when(F.col("dup"), "duplicate row")
    stage1 = (stage1.when(F.col("ts_bad"), "unparseable date")
              .when(F.col("ts").isNull(), "missing date"))
    p = parsed.withColumn("reason", stage1)
    # lines per day (with the last instant of each), for the plausibility rule and the as-of date
    days = (p.where(F.col("reason").isNull())
            .groupBy(F.date_format("ts", "yyyy-MM-dd").alias("d"))
            .agg(F.count("*").alias("n"))
            .toPandas())
    if days.empty:
        raise InputError("column has no values at all (every cell is empty)", file=file,
                         column=roles["timestamp"])
    counts = pd.Series(days["n"].to_numpy(dtype="int64"), index=pd.to_datetime(days["d"]))
    implausible, warning = date_plausibility(counts)
    if warning:
        ledger.warn("dates", f"{file}, column '{roles['timestamp']}': {warning}")
    rules = F.when(F.col("reason").isNotNull(), F.col("reason"))
    if as_of is None:
        last = counts.index
        if implausible is not None:
            rules = rules.when(F.col("ts") >= _ts(implausible), IMPLAUSIBLE_FUTURE)
            last = last[last < implausible]
        as_of = last.max().date()
    cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    if not (counts.index < cutoff).any():
        raise InputError(no_lines_before_as_of(as_of, counts.index.min()), file=file,
                         column=roles["timestamp"])
    rules = rules.when(F.col("ts") >= _ts(cutoff), "dated after the as-of date")
    if window_days is not None:
        start = cutoff - pd.Timedelta(days=window_days)
        rules = rules.when(F.col("ts") < _ts(start),
                           f"dated before the {window_days}-day feature window")
    for role in NUMERIC_ROLES:
        if role in roles:
            rules = rules.when(F.col(f"{role}_bad"), f"unparseable {role}")
    amount = F.col("amount") if "amount" in roles else F.col("quantity") * F.col("unit_price")
    if "unit_price" in roles:
        rules = rules.when(F.col("unit_price") <= 0, "zero or negative unit price")
    rules = rules.when(F.coalesce(amount, F.lit(0.0)) == 0, "zero or missing amount")
    p = p.withColumn("reason", rules).withColumn("amount_v", amount)
    is_return = F.coalesce(F.col("amount_v") < 0, F.lit(False)) | F.col("return_hint")
    if "quantity" in roles:
        is_return = is_return | F.coalesce(F.col("quantity") < 0, F.lit(False))
    p = p.withColumn("is_return", is_return).persist()

    # the ledger: excluded rows by reason, in rule order (the rows go to the driver)
    order = ["missing customer_id", "duplicate row", "unparseable date", "missing date",
             IMPLAUSIBLE_FUTURE, "dated after the as-of date", f"dated before the {window_days}-day feature window",
             *[f"unparseable {r}" for r in NUMERIC_ROLES],
             "zero or negative unit price", "zero or missing amount"]
    excl = (p.where(F.col("reason").isNotNull()).select(ROW, "customer_id", "reason")
            .toPandas())
    for reason in order:
        part = excl[excl["reason"] == reason].sort_values(ROW)
        if len(part):
            ids = None if reason == "missing customer_id" else part["customer_id"]
            ledger.exclude_rows("transactions", part[ROW].to_numpy(), ids, reason)
    seen = p.where(F.col("customer_id").isNotNull()).select("customer_id").distinct().toPandas()
    seen_ids = pd.Index(seen["customer_id"].astype(object).unique())

    kept = p.where(F.col("reason").isNull())
    # one pass for every whole-column check
    aggs = [F.sum(F.col("is_return").cast("long")).alias("returns")]
    for role in ("amount", "quantity", "unit_price"):
        if role in roles:
            aggs.append(F.count(F.col(role)).alias(f"n_{role}"))
    stats = kept.agg(*aggs).first()
    flags = False
    if "discount" in roles:
        flags = bool(p.agg(F.max(F.col("disc_bad").cast("int"))).first()[0])
    for role in ("amount", "quantity", "unit_price"):
        if role in roles and not stats[f"n_{role}"]:
            raise InputError("column has no values at all (every cell is empty)", file=file,
                             column=roles[role])
    src.returns = int(stats["returns"] or 0)
    cols = [F.col(ROW), F.col("customer_id"), F.col("order_id"), F.col("ts"),
            F.when(F.col("is_return"), -F.abs(F.col("amount_v")))
            .otherwise(F.abs(F.col("amount_v"))).alias("amount"),
            F.col("is_return")]
    out_cols = ["customer_id", "order_id", "ts", "amount", "is_return"]
    if "quantity" in roles:
        cols.append(F.abs(F.col("quantity")).alias("quantity"))
        out_cols.append("quantity")
    for role in ("category", "channel"):
        if role in roles:
            cols.append(F.col(role))
            out_cols.append(role)
    if "discount" in roles:
        # a column with any non-number reads as yes/no flags (decided on the whole column)
        d = F.col("disc_flag") if flags else F.col("disc_num")
        cols.append(F.when(d.isNull(), None).when(d > 0, 1.0).otherwise(0.0).alias("discount"))
        out_cols.append("discount")
    clean = kept.select(*cols)
    return SparkTransactions(frame=clean, file=file, roles=roles, as_of=as_of,
                             seen_ids=seen_ids, columns=out_cols)


def restrict_to_customers_spark(spark, tx: SparkTransactions, known_ids: pd.Index,
                                ledger: Ledger) -> None:
    """Exclude lines of customers missing from the customers table (as
    :func:`custseg.cleaning.restrict_to_customers`)."""
    from pyspark.sql import functions as F

    known = spark.createDataFrame(pd.DataFrame({"customer_id": pd.Series(
        list(known_ids), dtype=object)}), "customer_id string")
    frame = tx.frame
    unknown = frame.join(F.broadcast(known) if len(known_ids) < 2_000_000 else known,
                         "customer_id", "left_anti")
    stats = unknown.agg(F.count(F.lit(1)).alias("n"),
                        F.sum(F.col("is_return").cast("long")).alias("r")).first()
    if not stats["n"]:
        return
    rows = unknown.select(ROW, "customer_id").orderBy(ROW).toPandas()
    ledger.exclude_rows("transactions", rows[ROW].to_numpy(), rows["customer_id"],
                        "customer not in the customers table")
    ledger.sources["transactions"].returns -= int(stats["r"] or 0)
    tx.frame = frame.join(known, "customer_id", "left_semi")
