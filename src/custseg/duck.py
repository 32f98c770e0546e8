"""Transactions files cleaned and aggregated inside DuckDB, never loaded into pandas.

:func:`custseg.cleaning.prepare_transactions` types and cleans a transactions log held in a pandas
frame: fine for a few million lines, too slow and too big for tens of millions (every cell a
Python string). This module applies **the same rules, in the same order, with the same reasons
and error messages** in DuckDB SQL over the file itself (CSV or Parquet), keeps the clean lines
in a DuckDB table ``tx``, and hands it to :func:`custseg.features.transaction_features`, whose
feature SQL is the one both paths use. DuckDB streams the file, runs on every core and spills
to disk beyond its memory limit, so the file may be larger than memory.

Tests (tests/test_duck.py) prove both paths give the same ledger, the same exclusions (row by
row) and the same features on synthetic logs with every kind of defect and on the real Online
Retail files. What SQL cannot reproduce exactly is handed back to the pandas path
(:class:`Unsupported`): a text encoding other than UTF-8, a date column whose values match no
single known format, a header with repeated names.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from custseg.cleaning import (
    DISCOUNT_FLAGS,
    RETURN_FLAGS,
    drops_duplicate_lines,
    duplicates_policy,
    kept_duplicates_note,
)
from custseg.config import FeatureConfig, TableConfig
from custseg.derive import CANCELLATION_PREFIX, NO_LABEL, cap_label_sql
from custseg.errors import InputError
from custseg.features import DUCKDB, Behaviour, transaction_features
from custseg.io.readers import NA_VALUES, _open_sample, sniff_delimiter, sniff_encoding
from custseg.ledger import Ledger
from custseg.parsing import DATE_FORMATS as _ALL_DATE_FORMATS
from custseg.parsing import (
    IMPLAUSIBLE_FUTURE,
    date_error,
    date_plausibility,
    no_lines_before_as_of,
)
from custseg.roles import has_money, transaction_inference
from custseg.roles_infer import Inference

# files at least this big go through DuckDB when the choice is "auto" (~1M lines of text)
AUTO_MIN_BYTES = 64 * 1024 * 1024
AUTO_MIN_ROWS = 1_000_000
STEPS = 7  # progress steps of the cleaning


# formats DuckDB's strptime reads as pandas does; fractions of a second and UTC offsets ("Z",
# "+02:00") differ (DuckDB's %z rejects "Z"), so such columns go through the pandas path
DATE_FORMATS = [f for f in _ALL_DATE_FORMATS if "%z" not in f and "%f" not in f]


def _check_format(fmt: str | None) -> None:
    if fmt is not None and ("%z" in fmt or "%f" in fmt):
        raise Unsupported(f"date format {fmt}")


class Unsupported(Exception):
    """The file needs something only the pandas path does; use it instead."""


def wants_duckdb(source: object, mode: str) -> bool:
    """Whether a transactions source is read by this module (``mode``: auto, always, never)."""
    if mode == "never" or not isinstance(source, str | Path):
        return False
    path = Path(source)
    suffix = "".join(s.lower() for s in path.suffixes[-2:])
    if not (suffix.endswith(".parquet") or suffix.endswith(".csv") or suffix.endswith(".csv.gz")
            or suffix.endswith(".tsv") or suffix.endswith(".txt")):
        return False
    if mode == "always":
        return True
    try:
        if suffix.endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows >= AUTO_MIN_ROWS
        return path.stat().st_size >= AUTO_MIN_BYTES
    except Exception:  # unreadable: let the reader report it
        return False


def connect(threads: int | None = None, memory_limit: str | None = None,
            temp_directory: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET threads TO {int(threads or os.cpu_count() or 1)}")
    con.execute("SET enable_progress_bar = false")
    # an aware timestamp (Parquet) becomes naive UTC, as on the pandas path, not local time
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = true")
    if memory_limit:
        con.execute("SET memory_limit = ?", [memory_limit])
    if temp_directory:
        con.execute("SET temp_directory = ?", [temp_directory])
    return con


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_lit = DUCKDB.text  # a DuckDB string literal


# ------------------------------------------------------------------------------------ the source


def _load_source(con: duckdb.DuckDBPyConnection, path: Path, *, delimiter: str | None,
                 encoding: str | None) -> tuple[list[str], dict[str, str]]:
    """Make the file readable as view ``raw_stream`` (every column as in the file).

    A Parquet file is also view ``raw`` (plus ``__row``: the 1-based data row). A CSV file is
    streamed once, into the typed lines; its text is kept as table ``raw`` only when a rare
    path needs it (:func:`_ensure_raw`). Returns the column names and their DuckDB types.
    """
    name = str(path)
    if not path.exists():
        raise InputError("file not found", file=name)
    if path.is_dir():
        raise InputError("expected a file but this is a folder", file=name)
    if path.stat().st_size == 0:
        raise InputError("file is empty", file=name)
    if path.name.lower().endswith(".parquet"):
        src = f"read_parquet({_lit(name)}, file_row_number = true)"
        try:
            con.execute(f"CREATE VIEW raw AS SELECT * EXCLUDE (file_row_number), "
                        f"file_row_number + 1 AS __row FROM {src}")
            con.execute("CREATE VIEW raw_stream AS SELECT * EXCLUDE (__row) FROM raw")
        except duckdb.Error as exc:
            raise InputError(f"cannot read file ({str(exc).splitlines()[0]})", file=name) from None
    else:
        sample = _open_sample(path)
        if not sample.strip():
            raise InputError("file is empty", file=name)
        enc = encoding or sniff_encoding(sample)
        if enc.lower().replace("_", "-") not in ("utf-8", "utf-8-sig", "utf8"):
            raise Unsupported(f"encoding {enc}")
        text = sample.decode("utf-8", errors="replace").lstrip("\ufeff")
        sep = delimiter or sniff_delimiter(text)
        first = text.splitlines()[0] if text.strip() else ""
        header = [h.strip() for h in next(csv.reader([first], delimiter=sep), [])]
        if not header or len(set(header)) != len(header) or "__row" in header:
            raise Unsupported("header")
        nulls = "[" + ", ".join(_lit(v) for v in NA_VALUES) + "]"
        cols = "{" + ", ".join(f"{_lit(h)}: 'VARCHAR'" for h in header) + "}"
        try:
            con.execute(
                f"CREATE VIEW raw_stream AS SELECT * FROM read_csv({_lit(name)}, "
                f"all_varchar = true, header = true, delim = {_lit(sep)}, quote = '\"', "
                f"escape = '\"', nullstr = {nulls}, columns = {cols}, strict_mode = true, "
                f"null_padding = false, auto_detect = false, parallel = true)")
        except duckdb.Error as exc:
            raise Unsupported(str(exc).splitlines()[0]) from None
    desc = con.execute("SELECT * FROM raw_stream LIMIT 0").description
    types = {d[0]: str(d[1]) for d in desc}
    columns = list(types)
    if not columns:
        raise InputError("file has no columns", file=name)
    n = _csv_guard(lambda: con.execute("SELECT count(*) FROM (SELECT 1 FROM raw_stream LIMIT 1)"
                                       ).fetchall()[0][0])
    if n == 0:
        raise InputError(f"file has a header but no data rows (columns: {', '.join(columns)})",
                         file=name)
    return columns, types


def _csv_guard(run: Callable[[], Any]) -> Any:
    """Run a query that reads the file: a malformed CSV (ragged rows, stray quotes) is handed
    to the pandas path, which reports exactly where it breaks."""
    try:
        return run()
    except duckdb.InvalidInputException as exc:
        raise Unsupported(str(exc).splitlines()[0]) from None


def _has(con: duckdb.DuckDBPyConnection, kind: str, name: str) -> bool:
    return bool(con.execute(f"SELECT count(*) FROM duckdb_{kind}() WHERE {kind[:-1]}_name = ?",
                            [name]).fetchall()[0][0])


def _ensure_raw(con: duckdb.DuckDBPyConnection) -> None:
    """View ``raw`` (the file's text with ``__row``) for the rare paths that look at raw values
    again: a CSV's text is stored once, the first time it is needed."""
    if _has(con, "views", "raw"):
        return
    # a freshly created table keeps the file's order: rowid is the data row - 1
    _csv_guard(lambda: con.execute("CREATE TABLE raw0 AS SELECT * FROM raw_stream"))
    con.execute("CREATE VIEW raw AS SELECT *, rowid + 1 AS __row FROM raw0")


def _is_text(duck_type: str) -> bool:
    return duck_type.upper() in ("VARCHAR", "TEXT", "STRING") or duck_type.upper().startswith(
        "VARCHAR")


def _is_numeric(duck_type: str) -> bool:
    t = duck_type.upper()
    return (t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"))


# ------------------------------------------------------------------------------ typed expressions


def _text_expr(col: str, duck_type: str) -> str:
    """``parsing.clean_text``: stripped text, empty as missing."""
    c = _q(col)
    base = c if _is_text(duck_type) else f"CAST({c} AS VARCHAR)"
    return f"nullif(trim({base}), '')"


def _id_expr(col: str, duck_type: str) -> str:
    """``parsing.clean_ids``: "17850.0" -> "17850"."""
    if _is_numeric(duck_type) and "." not in duck_type:
        return f"CAST({_q(col)} AS VARCHAR)"
    t = _text_expr(col, duck_type)
    # the regular expression only where it can match (a dot): most ids have none
    return (f"CASE WHEN contains({t}, '.') THEN regexp_replace({t}, '^(-?[0-9]+)\\.0+$', '\\1') "
            f"ELSE {t} END")


def _num_expr(col: str, duck_type: str) -> tuple[str, str]:
    """``parsing.parse_numeric``: (value, is-unparseable) expressions."""
    c = _q(col)
    if _is_numeric(duck_type):
        v = f"CAST({c} AS DOUBLE)"
        return v, f"coalesce(isinf({v}), false)"
    t = _text_expr(col, duck_type)
    # a leading currency symbol and thousands separators, as the pandas path strips them
    stripped = f"regexp_replace({t}, '^[£$€¥][[:space:]]*', '')"
    for _ in range(3):  # RE2 has no look-around: one separator group per pass
        stripped = f"regexp_replace({stripped}, '([0-9]),([0-9]{{3}})([^0-9]|$)', '\\1\\2\\3', 'g')"
    fast = f"TRY_CAST({t} AS DOUBLE)"
    slow = f"TRY_CAST({stripped} AS DOUBLE)"
    v = f"coalesce({fast}, {slow})"
    bad = f"({t} IS NOT NULL AND ({v} IS NULL OR isnan({v}) OR isinf({v})))"
    return f"CASE WHEN {bad} THEN NULL ELSE {v} END", bad


HEAD_ROWS = 2000  # the pandas path confirms a format on this many values


def _date_head(con: duckdb.DuckDBPyConnection, text: str) -> list:
    """The first non-empty values of a date column, in file order (the first rows are looked at
    first, so a big file is not scanned and sorted whole)."""
    if not _has(con, "views", "raw"):  # a CSV, streamed: in file order (insertion order kept)
        return [r[0] for r in _csv_guard(lambda: con.execute(
            f"SELECT {text} FROM raw_stream WHERE {text} IS NOT NULL LIMIT {HEAD_ROWS}"
        ).fetchall())]
    sql = f"SELECT {text} FROM raw WHERE {{}} {text} IS NOT NULL ORDER BY __row LIMIT {HEAD_ROWS}"
    head = con.execute(sql.format(f"__row <= {20 * HEAD_ROWS} AND")).fetchall()
    if len(head) < HEAD_ROWS:
        head = con.execute(sql.format("")).fetchall()
    return [r[0] for r in head]


def _is_date_type(duck_type: str) -> bool:
    t = duck_type.upper()
    return t.startswith("TIMESTAMP") or t == "DATE"


def _candidate_date_format(con: duckdb.DuckDBPyConnection, col: str, duck_type: str,
                           fmt: str | None) -> tuple[str | None, list]:
    """The first format (given, or in DATE_FORMATS order) that parses the column's first values
    (None if none does), and those values.

    Formats before it fail on those values, so if it parses the whole column -- which the
    cleaning counts anyway, see ``ts_unparsed`` -- it is the format
    :func:`_choose_date_format` would choose, found without a scan of its own.
    """
    head = _date_head(con, _text_expr(col, duck_type))
    if not head:
        return None, head
    formats = [fmt] if fmt else DATE_FORMATS
    fails = con.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE try_strptime(v, {_lit(f)}) IS NULL)"
                              for f in formats)
        + " FROM (SELECT unnest(CAST(? AS VARCHAR[])) AS v)", [[str(v) for v in head]]
    ).fetchone()
    return next((f for f, n in zip(formats, fails, strict=True) if n == 0), None), head


def _choose_date_format(con: duckdb.DuckDBPyConnection, col: str, duck_type: str,
                        fmt: str | None) -> str | None:
    """``parsing.parse_dates``' choice of one format for the column, checked on all of it.

    Returns None for a column already typed as a date/timestamp.
    """
    if _is_date_type(duck_type):
        return None
    _ensure_raw(con)
    text = _text_expr(col, duck_type)
    # Fast path. pandas picks, in DATE_FORMATS order, the first format that parses the whole
    # column among those that parse the whole sample: that is the first format that parses the
    # whole column. Wrong formats fail on their first rows (EXISTS stops there), so this is
    # about one scan; the choice is confirmed with pandas on the first values.
    for f in [fmt] if fmt else DATE_FORMATS:
        fails = con.execute(f"SELECT EXISTS (SELECT 1 FROM raw WHERE {text} IS NOT NULL AND "
                            f"try_strptime({text}, {_lit(f)}) IS NULL)").fetchone()[0]
        if not fails:
            head = _date_head(con, text)
            if not head:
                return DATE_FORMATS[0]
            ok = pd.to_datetime(pd.Series(head, dtype="string"), format=f, errors="coerce")
            if ok.notna().all():
                return f
            break  # DuckDB and pandas disagree on this column: the exact procedure below
    present = con.execute(f"SELECT count(*) FROM raw WHERE {text} IS NOT NULL").fetchone()[0]
    if present == 0:
        return DATE_FORMATS[0]
    # the pandas path scores formats on up to 2,000 values spread evenly over the column
    m = min(present, 2000)
    sample = [r[0] for r in con.execute(
        f"WITH p AS (SELECT {text} AS v, row_number() OVER (ORDER BY __row) - 1 AS i "
        f"FROM raw WHERE {text} IS NOT NULL) SELECT v FROM p WHERE i IN "
        f"(SELECT DISTINCT CAST(floor(x * {present - 1} / {max(m - 1, 1)}) AS BIGINT) "
        f"FROM range({m}) r(x)) ORDER BY i").fetchall()]
    formats = [fmt] if fmt else DATE_FORMATS
    s = pd.Series(sample, dtype="string")
    ok = [(f, int(pd.to_datetime(s, format=f, errors="coerce").notna().sum())) for f in formats]
    for f, n_ok in ok:
        if n_ok != len(s):
            continue
        bad = con.execute(f"SELECT count(*) FROM raw WHERE {text} IS NOT NULL AND "
                          f"try_strptime({text}, {_lit(f)}) IS NULL").fetchone()[0]
        if bad == 0:
            return f
    best, best_ok = max(ok, key=lambda x: x[1])
    if best_ok == 0 and not fmt:
        raise Unsupported("mixed date formats")
    return best


def _date_expr(col: str, duck_type: str, fmt: str | None) -> tuple[str, str]:
    c = _q(col)
    if fmt is None:
        v = f"CAST({c} AS TIMESTAMP)"
        bad = "false"
    else:
        t = _text_expr(col, duck_type)
        parsed = f"try_strptime({t}, {_lit(fmt)})"
        # dates outside 1800..2261 are unparseable, as in the pandas path
        v = (f"CASE WHEN {parsed} >= TIMESTAMP '1800-01-01' AND {parsed} < TIMESTAMP '2262-01-01' "
             f"THEN {parsed} END")
        bad = f"({t} IS NOT NULL AND {v} IS NULL)"
    return v, bad


# ---------------------------------------------------------------------------------- the cleaning


@dataclass
class SqlTransactions:
    """A transactions file cleaned in DuckDB: table ``tx`` of ``con`` holds the clean lines."""

    con: duckdb.DuckDBPyConnection
    file: str
    roles: dict[str, str]
    as_of: date
    inference: Inference | None = None   # every column's role and evidence
    has_money: bool = True               # (a log without amounts is cleaned in pandas)

    def behaviour(self, cfg: FeatureConfig,
                  fixed_groups: dict[str, list[str]] | None = None) -> Behaviour:
        beh, groups = transaction_features(None, cfg, fixed_groups, con=self.con,
                                           as_of=self.as_of)
        # the few customers with only returns, straight from SQL (not a difference of a
        # million ids in pandas)
        only = self.con.execute("SELECT customer_id FROM tx GROUP BY customer_id "
                                "HAVING bool_and(is_return) ORDER BY customer_id"
                                ).fetchnumpy()["customer_id"]
        return Behaviour(frame=beh, groups=groups, as_of=self.as_of, customer_ids=None,
                         file=self.file, no_purchase=pd.Index(np.asarray(only, dtype=object)))

    def ids_without_clean_lines(self) -> pd.Index:
        """The customer ids in the file none of whose lines is clean (usually few): with the
        customers that have clean lines, they are every id seen."""
        ids = self.con.execute("SELECT id FROM seen ANTI JOIN (SELECT DISTINCT customer_id "
                               "FROM tx) t ON seen.id = t.customer_id ORDER BY id"
                               ).fetchnumpy()["id"]
        return pd.Index(np.asarray(ids, dtype=object))

    def restrict_to_customers(self, known_ids: pd.Index, ledger: Ledger) -> None:
        """:func:`custseg.cleaning.restrict_to_customers`: lines of customers missing from the
        customers table are excluded."""
        con = self.con
        con.register("__known", pd.DataFrame({"customer_id": np.asarray(known_ids, dtype=object)}))
        unk = con.execute("SELECT row, customer_id, is_return FROM clean "
                          "ANTI JOIN __known USING (customer_id) ORDER BY row").df()
        con.unregister("__known")
        if len(unk) == 0:
            return
        ledger.exclude_rows("transactions", unk["row"].to_numpy(),
                            unk["customer_id"].astype(object),
                            "customer not in the customers table")
        ledger.sources["transactions"].returns -= int(unk["is_return"].sum())
        con.register("__unknown", unk[["row"]])
        con.execute("DELETE FROM clean WHERE row IN (SELECT row FROM __unknown)")
        con.unregister("__unknown")

    def close(self) -> None:
        self.con.close()


def prepare_transactions_sql(path: str | Path, cfg: TableConfig, *, ledger: Ledger,
                             as_of: date | None, on_invalid: str = "error",
                             window_days: int | None = None,
                             delimiter: str | None = None, encoding: str | None = None,
                             threads: int | None = None, memory_limit: str | None = None,
                             temp_directory: str | None = None,
                             progress: Callable[[str, int, int], None] | None = None,
                             ) -> SqlTransactions:
    """:func:`custseg.cleaning.prepare_transactions` for a file, in DuckDB.

    Raises :class:`Unsupported` (before touching the ledger) when the pandas path must be used.
    """
    path = Path(path)
    file = str(path)
    con = connect(threads, memory_limit, temp_directory)
    try:
        return _prepare(con, path, file, cfg, ledger=ledger, as_of=as_of, on_invalid=on_invalid,
                        window_days=window_days, delimiter=delimiter, progress=progress,
                        encoding=encoding)
    except BaseException:
        con.close()
        raise


def _build_lines(con: duckdb.DuckDBPyConnection, columns: list[str], types: dict[str, str],
                 roles: dict[str, str], date_col: str, date_fmt: str | None) -> None:
    """Table ``lines``: every raw row typed once (values and unparseable flags), with a hash of
    the whole raw row for the duplicate check."""
    id_col = roles["customer_id"]
    parquet = _has(con, "views", "raw")
    sel = [*(["__row"] if parquet else []), f"{_id_expr(id_col, types[id_col])} AS id"]
    ts_v, ts_bad = _date_expr(date_col, types[date_col], date_fmt)
    sel += [f"{ts_v} AS ts", f"{ts_bad} AS ts_bad"]
    if date_fmt is not None:
        t = _text_expr(date_col, types[date_col])
        sel.append(f"({t} IS NOT NULL AND try_strptime({t}, {_lit(date_fmt)}) IS NULL) "
                   "AS ts_unparsed")
    for role in ("quantity", "unit_price", "amount"):
        if role in roles:
            v, bad = _num_expr(roles[role], types[roles[role]])
            sel += [f"{v} AS {role}", f"{bad} AS {role}_bad"]
    if "order_id" in roles:
        sel.append(f"{_id_expr(roles['order_id'], types[roles['order_id']])} AS order_raw")
    for role in ("category", "channel"):
        if role in roles:
            sel.append(f"{cap_label_sql(_text_expr(roles[role], types[roles[role]]))} AS {role}")
    if "is_return" in roles:
        sel.append(f"lower({_text_expr(roles['is_return'], types[roles['is_return']])}) AS flag")
    if "discount" in roles:
        dv, dbad = _num_expr(roles["discount"], types[roles["discount"]])
        dt = _text_expr(roles["discount"], types[roles["discount"]])
        sel += [f"{dv} AS disc_num", f"{dbad} AS disc_bad", f"lower({dt}) AS disc_text"]
    # exact duplicates of the raw row: two independent 64-bit hashes of it, one over the
    # values, one over their text joined (so a collision of one value's hash is not enough)
    raw_cols = ", ".join(_q(c) for c in columns)
    joined = "concat_ws(chr(31), " + ", ".join(
        f"coalesce(CAST({_q(c)} AS VARCHAR), chr(30))" for c in columns) + ")"
    _csv_guard(lambda: con.execute(
        f"CREATE TEMP TABLE lines0 AS SELECT {', '.join(sel)}, hash({raw_cols}) AS __h, "
        f"hash({joined}) AS __h2 FROM {'raw' if parquet else 'raw_stream'}"))
    # a CSV's lines are in file order: rowid is the data row - 1
    con.execute("CREATE TEMP VIEW lines AS SELECT * FROM lines0" if parquet else
                "CREATE TEMP VIEW lines AS SELECT rowid + 1 AS __row, * FROM lines0")


Rule = tuple[str, str]  # (the reason a row is excluded, the SQL condition that excludes it)
NUMBER_ROLES = ("quantity", "unit_price", "amount")  # in the order the pandas path parses them


def _prepare(con: duckdb.DuckDBPyConnection, path: Path, file: str, cfg: TableConfig, *,
             ledger: Ledger, as_of: date | None, on_invalid: str, window_days: int | None,
             delimiter: str | None, encoding: str | None,
             progress: Callable[[str, int, int], None] | None = None) -> SqlTransactions:
    """The cleaning, step by step: read the file, type its lines once, stop on what the pandas
    path stops on, judge every line by the rules (the first that applies is its reason), keep
    the clean lines and account for the others."""
    steps = iter(range(1, STEPS + 1))

    def step() -> None:
        if progress:
            progress("clean (DuckDB)", next(steps), STEPS)

    columns, types = _load_source(con, path, delimiter=delimiter, encoding=encoding)
    step()
    # the roles are inferred from the names and the first rows' content, as on the pandas path
    sample = _csv_guard(lambda: con.execute("SELECT * FROM raw_stream LIMIT 5000").df())
    inference = transaction_inference(columns, cfg, file, sample)
    roles = dict(inference.roles)
    if not has_money(roles):
        raise Unsupported("no amount: a log of ids and dates is cleaned on the pandas path")
    date_fmt, exact = _first_date_format(con, roles["timestamp"], types, cfg.date_format)
    step()
    date_fmt = _type_lines(con, columns, types, roles, date_fmt, exact, cfg.date_format)
    step()
    _find_duplicates(con)
    step()
    n_rows, n_ids, bad = _count_lines(con, roles, date_fmt)
    src = ledger.source("transactions", file, n_rows)
    _stop_on_missing_or_bad(con, file, roles, n_ids, bad, on_invalid)
    drop_dups = drops_duplicate_lines(cfg, roles)
    src.duplicates = duplicates_policy(cfg, roles)
    if not drop_dups and (n_dups := con.execute("SELECT count(*) FROM dups").fetchone()[0]):
        ledger.warn("duplicates", kept_duplicates_note(file, int(n_dups), cfg))
    first = _first_rules(date_fmt, drop_dups)
    as_of, implausible = _as_of(con, first, as_of, file=file, date_col=roles["timestamp"],
                                ledger=ledger)
    later = [*implausible, *_later_rules(roles, as_of, window_days)]
    _judge(con, [*first, *later])
    _check_number_columns(con, roles, later, file)
    clean = _clean_columns(con, roles)
    step()
    con.execute(f"CREATE TEMP TABLE clean AS SELECT {', '.join(clean)} FROM judged "
                f"WHERE reason IS NULL")
    con.execute("CREATE VIEW tx AS SELECT * FROM clean")
    step()
    _account(con, ledger, [*first, *later])
    src.returns = int(con.execute("SELECT count(*) FROM clean WHERE is_return").fetchone()[0])
    _free_work_tables(con)
    step()
    return SqlTransactions(con=con, file=file, roles=roles, as_of=as_of, inference=inference)


def _first_date_format(con: duckdb.DuckDBPyConnection, date_col: str, types: dict[str, str],
                       fmt: str | None) -> tuple[str | None, bool]:
    """The date format to type the lines with, and whether it is the exact choice.

    The first format that parses the first values is the right one when it parses the whole
    column, which typing the lines counts (no scan of its own); when there is none, or pandas
    disagrees on the first values, the exact procedure chooses now.
    """
    if _is_date_type(types[date_col]):
        return None, True
    _check_format(fmt)
    date_fmt, head = _candidate_date_format(con, date_col, types[date_col], fmt)
    # pandas must read the first values with it too, as on the pandas path
    pandas_reads = date_fmt is not None and pd.to_datetime(
        pd.Series(head, dtype="string"), format=date_fmt, errors="coerce").notna().all()
    if not pandas_reads:
        return _choose_date_format(con, date_col, types[date_col], fmt), True
    return date_fmt, False


def _type_lines(con: duckdb.DuckDBPyConnection, columns: list[str], types: dict[str, str],
                roles: dict[str, str], date_fmt: str | None, exact: bool,
                fmt: str | None) -> str | None:
    """Table ``lines`` (see :func:`_build_lines`); built again with the exact date format when
    the first one leaves dates unparsed and is not the exact choice (rare: ambiguous first
    values). Returns the date format the lines were typed with."""
    date_col = roles["timestamp"]
    _build_lines(con, columns, types, roles, date_col, date_fmt)
    if exact or not con.execute("SELECT count(*) FROM lines WHERE ts_unparsed").fetchone()[0]:
        return date_fmt
    chosen = _choose_date_format(con, date_col, types[date_col], fmt)
    if chosen != date_fmt:
        con.execute("DROP VIEW lines")
        con.execute("DROP TABLE lines0")
        _build_lines(con, columns, types, roles, date_col, chosen)
    return chosen


def _find_duplicates(con: duckdb.DuckDBPyConnection) -> None:
    """Table ``dups``: exact duplicate rows, all but the first: rows that agree in both hashes
    of the raw row (a false match needs two independent 64-bit collisions at once: odds ~1e-38
    per pair)."""
    con.execute("""
        CREATE TEMP TABLE dups AS
        WITH cand AS (SELECT __h FROM lines WHERE id IS NOT NULL GROUP BY __h
                      HAVING count(*) > 1)
        SELECT __row FROM (SELECT __row, row_number() OVER (PARTITION BY __h, __h2
                                                          ORDER BY __row) AS k
                           FROM lines SEMI JOIN cand USING (__h) WHERE id IS NOT NULL)
        WHERE k > 1""")


def _count_lines(con: duckdb.DuckDBPyConnection, roles: dict[str, str], date_fmt: str | None
                 ) -> tuple[int, int, list[tuple[str, str, int, int | None]]]:
    """One pass over the lines: how many there are, how many have an id, and for each parsed
    column (the date, then quantity, price and amount, as the pandas path parses them) how
    many values are unparseable and the first row of one: (column, message, count, row)."""
    checks = [(roles["timestamp"], "ts_bad", date_fmt)] if date_fmt else []  # (date_error)
    for role in NUMBER_ROLES:
        if role in roles:
            checks.append((roles[role], f"{role}_bad", "cannot parse as a number"))
    aggs = ["count(*)", "count(id)"]
    for _, flag, _ in checks:
        aggs += [f"count(*) FILTER (WHERE {flag})", f"min(__row) FILTER (WHERE {flag})"]
    stats = con.execute(f"SELECT {', '.join(aggs)} FROM lines").fetchone()
    bad = [(col, msg, stats[2 + 2 * i], stats[3 + 2 * i])
           for i, (col, _, msg) in enumerate(checks)]
    return int(stats[0]), int(stats[1]), bad


def _stop_on_missing_or_bad(con: duckdb.DuckDBPyConnection, file: str, roles: dict[str, str],
                            n_ids: int, bad: list[tuple[str, str, int, int | None]],
                            on_invalid: str) -> None:
    """An id column with no value, or (``on_invalid="error"``) the first column with an
    unparseable value, stops the run with the pandas path's message."""
    if n_ids == 0:
        raise InputError("column has no values at all (every cell is empty)", file=file,
                         column=roles["customer_id"])
    if on_invalid != "error":
        return
    for col, msg, n_bad, row in bad:
        if n_bad:
            _ensure_raw(con)
            value = con.execute(f"SELECT {_q(col)} FROM raw WHERE __row = ?", [row]).fetchone()[0]
            text = (date_error(msg, n_bad, value) if col == roles["timestamp"]
                    else f"{msg} ({n_bad} such values)")
            raise InputError(text, file=file, column=col, row=int(row), value=value)


def _first_rules(date_fmt: str | None, drop_dups: bool = True) -> list[Rule]:
    """The rules that decide which lines the as-of date is read from, in the pandas path's
    order."""
    rules = [("missing customer_id", "id IS NULL")]
    if drop_dups:
        rules.append(("duplicate row", "__row IN (SELECT __row FROM dups)"))
    if date_fmt:
        rules.append(("unparseable date", "ts_bad"))
    rules.append(("missing date", "ts IS NULL"))
    return rules


def _first_reason(rules: list[Rule]) -> str:
    """SQL for the first rule that applies to a line (NULL when none does)."""
    return "CASE " + " ".join(f"WHEN {c} THEN {_lit(r)}" for r, c in rules) + " END"


def _as_of(con: duckdb.DuckDBPyConnection, first: list[Rule], as_of: date | None, *,
           file: str, date_col: str, ledger: Ledger) -> tuple[date, list[Rule]]:
    """The as-of date: given, or the last plausible date of the lines the first rules keep
    (which must have a date); and the rule excluding implausible future dates (the pandas
    path's :func:`~custseg.parsing.date_plausibility`, from the same counts per day)."""
    days = con.execute(f"SELECT CAST(ts AS DATE) AS d, count(*) AS n, max(ts) AS top FROM lines "
                       f"WHERE {_first_reason(first)} IS NULL AND ts IS NOT NULL GROUP BY d"
                       ).fetchdf()
    if days.empty:
        raise InputError("column has no values at all (every cell is empty)", file=file,
                         column=date_col)
    counts = pd.Series(days["n"].to_numpy(), index=pd.to_datetime(days["d"]))
    cutoff, warning = date_plausibility(counts)
    if warning:
        ledger.warn("dates", f"{file}, column '{date_col}': {warning}")
    rules: list[Rule] = []
    if as_of is None:
        tops = pd.to_datetime(days["top"])
        if cutoff is not None:
            rules.append((IMPLAUSIBLE_FUTURE, f"ts >= TIMESTAMP '{cutoff.isoformat()}'"))
            tops = tops[tops < cutoff]
        as_of = tops.max().date()
    cut = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    if not (counts.index < cut).any():
        raise InputError(no_lines_before_as_of(as_of, counts.index.min()), file=file,
                         column=date_col)
    return as_of, rules


def _later_rules(roles: dict[str, str], as_of: date, window_days: int | None) -> list[Rule]:
    """The rules after the first ones, in the pandas path's order: the dates, unparseable
    numbers, the unit price and the amount."""
    cutoff = as_of + timedelta(days=1)
    rules = [("dated after the as-of date", f"ts >= TIMESTAMP '{cutoff.isoformat()}'")]
    if window_days is not None:
        start = cutoff - timedelta(days=window_days)
        rules.append((f"dated before the {window_days}-day feature window",
                      f"ts < TIMESTAMP '{start.isoformat()}'"))
    for role in NUMBER_ROLES:
        if role in roles:
            rules.append((f"unparseable {role}", f"{role}_bad"))
    if "unit_price" in roles:
        rules.append(("zero or negative unit price", "unit_price <= 0"))
    rules.append(("zero or missing amount", f"coalesce({_amount(roles)}, 0) = 0"))
    return rules


def _amount(roles: dict[str, str]) -> str:
    return "amount" if "amount" in roles else "(quantity * unit_price)"


def _judge(con: duckdb.DuckDBPyConnection, rules: list[Rule]) -> None:
    """View ``judged``: the typed lines with the reason each is excluded for (NULL: kept)."""
    con.execute(f"CREATE TEMP VIEW judged AS SELECT *, {_first_reason(rules)} AS reason "
                f"FROM lines")


def _check_number_columns(con: duckdb.DuckDBPyConnection, roles: dict[str, str],
                          later: list[Rule], file: str) -> None:
    """"No values at all" among the kept rows, for each number column (pandas: ``num()``):
    the rows the pandas path still keeps when it checks the column are those with no reason or
    one of the rules that come after the column's own."""
    later_names = [r for r, _ in later]
    empty = []
    for role in NUMBER_ROLES:
        if role in roles:
            after = ", ".join(_lit(r) for r in later_names[later_names.index(f"unparseable {role}"):])
            empty.append((role, f"count({role}) FILTER (WHERE reason IS NULL OR reason IN ({after}))"))
    got = con.execute(f"SELECT {', '.join(e for _, e in empty)} FROM judged").fetchone()
    for (role, _), n in zip(empty, got, strict=True):
        if n == 0:
            raise InputError("column has no values at all (every cell is empty)", file=file,
                             column=roles[role])


def _clean_columns(con: duckdb.DuckDBPyConnection, roles: dict[str, str]) -> list[str]:
    """The columns of a clean line, as SQL over ``judged``: amounts signed (negative for
    returns), quantities unsigned, blank categories "Unknown", discounts 1/0."""
    amount = _amount(roles)
    ret = [f"coalesce({amount} < 0, false)"]
    if "quantity" in roles:
        ret.append("coalesce(quantity < 0, false)")
    if "order_id" in roles:
        ret.append(f"coalesce(starts_with(upper(order_raw), {_lit(CANCELLATION_PREFIX)}), false)")
    if "is_return" in roles:
        ret.append(f"coalesce(flag IN ({', '.join(_lit(f) for f in RETURN_FLAGS)}), false)")
    is_return = " OR ".join(f"({r})" for r in ret)
    order = ("coalesce(order_raw, '')" if "order_id" in roles
             else "id || '@' || CAST(ts AS VARCHAR)")
    out = ["id AS customer_id", f"{order} AS order_id", "ts",
           f"CASE WHEN {is_return} THEN -abs({amount}) ELSE abs({amount}) END AS amount",
           f"({is_return}) AS is_return", "__row AS row"]
    if "quantity" in roles:
        out.append("abs(quantity) AS quantity")
    for role in ("category", "channel"):
        if role in roles:
            out.append(f"coalesce({role}, {_lit(NO_LABEL)}) AS {role}")
    if "discount" in roles:
        out.append(_discount_column(con))
    return out


def _discount_column(con: duckdb.DuckDBPyConnection) -> str:
    """Numbers above 0 are a discount; the pandas path reads the whole column as yes/no flags
    once any value is not a number."""
    flags = ", ".join(_lit(f) for f in DISCOUNT_FLAGS)
    if con.execute("SELECT bool_or(disc_bad) FROM lines").fetchone()[0]:
        return (f"CASE WHEN disc_text IS NULL THEN NULL "
                f"ELSE CAST(disc_text IN ({flags}) AS DOUBLE) END AS discount")
    return ("CASE WHEN disc_num IS NOT NULL THEN CAST(disc_num > 0 AS DOUBLE) "
            "WHEN disc_bad AND disc_text IS NOT NULL "
            f"THEN CAST(disc_text IN ({flags}) AS DOUBLE) END AS discount")


def _account(con: duckdb.DuckDBPyConnection, ledger: Ledger, rules: list[Rule]) -> None:
    """The ledger: every excluded row with its reason, reason by reason in the rules' order,
    in row order within a reason (as the pandas path records them)."""
    excl = con.execute("SELECT reason, __row AS row, id AS customer_id FROM judged "
                       "WHERE reason IS NOT NULL ORDER BY __row").df()
    for reason, _ in rules:
        part = excl[excl["reason"] == reason]
        if len(part):
            ids = None if reason == "missing customer_id" else part["customer_id"].astype(object)
            ledger.exclude_rows("transactions", part["row"].to_numpy(), ids, reason)


def _free_work_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Only the clean lines and the ids are needed from here on (table ``seen``): the rest
    goes."""
    con.execute("CREATE TEMP TABLE seen AS SELECT DISTINCT id FROM lines WHERE id IS NOT NULL")
    con.execute("DROP VIEW judged")
    con.execute("DROP TABLE dups")
    con.execute("DROP VIEW lines")
    con.execute("DROP TABLE lines0")
    if _has(con, "tables", "raw0"):
        con.execute("DROP VIEW raw")
        con.execute("DROP TABLE raw0")
