"""The ``custseg`` command line: thin wrappers that turn library calls into console output and
exit codes (0 ok, 2 bad input or usage, 1 unexpected failure)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from custseg._version import __version__
from custseg.errors import CustsegError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="custseg: customer segments that marketing teams can act on.")
out_console = Console()
err_console = Console(stderr=True)


def _guard(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a CustsegError becomes a one-line message and exit 2, anything else exit 1."""
    try:
        return fn()
    except (typer.Exit, typer.Abort, typer.BadParameter, typer.TyperException):
        raise
    except CustsegError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted; no output was written")
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug: say so plainly, traceback only on request
        if os.environ.get("CUSTSEG_DEBUG"):
            raise
        err_console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} "
                          "(set CUSTSEG_DEBUG=1 for a traceback)", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


class _Bars:
    """Rich progress bars driven by the library's progress callback."""

    def __init__(self, quiet: bool) -> None:
        self.progress = Progress(TextColumn("[bold]{task.description:<12}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=err_console, transient=False,
                                 disable=quiet or not err_console.is_terminal)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def _parse_k(k: str) -> int | str:
    if k == "auto":
        return "auto"
    try:
        value = int(k)
    except ValueError:
        raise typer.BadParameter(f"expected 'auto' or a whole number, got {k!r}") from None
    if value < 2:
        raise typer.BadParameter(f"k must be at least 2, got {value}")
    return value


ENGINES = ("local", "spark")


def _parse_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise typer.BadParameter(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


def _engine_option() -> Any:
    return typer.Option("local", "--engine", help="local (pandas + DuckDB + scikit-learn) or "
                        "spark (Apache Spark; pip install 'custseg[spark]' and Java 17)")


def _master_option() -> Any:
    return typer.Option(None, "--spark-master", help="Spark master URL for --engine spark "
                        "(default: local[*], or the master spark-submit set)")


def _parse_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _segments_table(result: Any) -> Table:
    table = Table(title=f"{result.k} segments", title_justify="left")
    for col, just in (("id", "right"), ("segment", "left"), ("customers", "right"),
                      ("share", "right"), ("revenue share", "right")):
        table.add_column(col, justify=just)
    for s in result.profiles.segments:
        table.add_row(str(s.segment_id), s.name, f"{s.size:,}", f"{s.share:.1%}",
                      "n/a" if s.revenue_share is None else f"{s.revenue_share:.1%}")
    return table


DB_OPTIONS = ("customers_table", "customers_query", "transactions_table", "transactions_query")


def _with_database(cfg: Any, customers: Path | str | None, transactions: Path | None,
                   db: dict[str, str | None] | None) -> tuple[Any, Path | str | None]:
    """A postgresql:// URL given as the customers argument and the --customers-table/-query,
    --transactions-table/-query options go into the config's [source], [customers] and
    [transactions] (the command line wins over the file); the pipeline reads them from there."""
    from custseg.config import Config
    from custseg.errors import ConfigError
    from custseg.io.db import is_db_url

    url = None
    if customers is not None and is_db_url(str(customers)):
        url, customers = str(customers), None
    given = {k: v for k, v in (db or {}).items() if v is not None}
    if url is None and not given:
        return cfg, customers
    for table, other in (("customers", customers), ("transactions", transactions)):
        opts = [f"--{k.replace('_', '-')}" for k in given if k.startswith(table)]
        if len(opts) > 1:
            raise ConfigError(f"give one of {' and '.join(opts)}")
        if opts and other is not None:
            raise ConfigError(f"{opts[0]} reads the {table} from the database: leave "
                              f"out the {table} file {other}")
    if url is None and cfg.source.url is None:
        raise ConfigError(f"--{next(iter(given)).replace('_', '-')} needs a database: "
                          "give postgresql://user@host:port/database as the first "
                          "argument or [source] url in the config")
    data = cfg.model_dump()
    if url is not None:
        data["source"]["url"] = url
    for key, value in given.items():
        table, kind = key.split("_")
        data[table].update({"path": None, "table": None, "query": None, kind: value})
    cfg = Config.from_dict(data, source="command line")
    if cfg.db_source("customers") is None and cfg.db_source("transactions") is None:
        raise ConfigError("with a database URL, say what to read: --customers-table, "
                          "--customers-query, --transactions-table or --transactions-query")
    return cfg, customers


def _segment(customers: Path | str | None, transactions: Path | None, config: Path | None,
             k: str, as_of: str | None, seed: int | None, out: Path, quiet: bool,
             previous_model: Path | None = None, workspace: Path | None = None,
             engine: str = "local", spark_master: str | None = None,
             db: dict[str, str | None] | None = None,
             calibration_end: str | None = None) -> None:
    from custseg.config import Config

    engine = _parse_engine(engine)
    if engine == "spark" and previous_model is not None:
        raise typer.BadParameter("--previous-model is not supported with --engine spark yet")

    from custseg.io.writers import check_output_dir

    check_output_dir(out)  # an unusable --out stops now (exit 2), not after the whole run
    cfg = Config.from_toml(config) if config else Config()
    cfg, customers = _with_database(cfg, customers, transactions, db)
    if engine == "spark" and (cfg.db_source("customers") or cfg.db_source("transactions")):
        raise typer.BadParameter("--engine spark reads files only; use the local engine for a "
                                 "database source")
    cfg = cfg.with_overrides(k=_parse_k(k) if k != "auto" or config is None else None,
                             as_of=_parse_date(as_of), seed=seed)
    if calibration_end is not None:
        if engine == "spark":
            raise typer.BadParameter("--calibration-end runs on the local engine only")
        cfg = cfg.model_copy(update={"value": cfg.value.model_copy(
            update={"calibration_end": _parse_date(calibration_end)})})
    if customers is None and transactions is None and not (
            cfg.customers.path or cfg.transactions.path or cfg.db_source("customers")
            or cfg.db_source("transactions")):
        raise typer.BadParameter("give a customers file, --transactions, or both")
    cust_path = customers if customers is not None else cfg.customers.path
    if engine == "local" and cust_path is not None:
        from custseg.io.readers import prefetch

        # the customers table is parsed (outside the interpreter lock) while the modelling
        # and plotting libraries import
        prefetch(cust_path, delimiter=cfg.customers.delimiter, encoding=cfg.customers.encoding)
    from custseg.outputs import selection_charts, write_outputs
    from custseg.pipeline import run_segmentation
    previous = None
    if previous_model is not None:
        from custseg.model import load_model

        previous = load_model(previous_model)[:2]
    with _Bars(quiet) as bars:
        if engine == "spark":
            from custseg.spark import run_segmentation_spark

            result = run_segmentation_spark(customers, transactions, config=cfg,
                                            master=spark_master, progress=bars)
        else:
            result = run_segmentation(customers, transactions, config=cfg, progress=bars,
                                      previous_model=previous, selection_charts=selection_charts)
        write_outputs(result, out, progress=bars)
    if workspace is not None:
        from custseg.store import Workspace

        Workspace(workspace).record(
            "segment", out, as_of=result.as_of, k=result.k,
            summary={"segments": [{"segment_id": s.segment_id, "name": s.name, "size": s.size}
                                  for s in result.profiles.segments]})
    for w in result.ledger.warnings:
        if w["category"] == "columns":  # a column ignored that looks informative, no id, ...
            err_console.print(f"[yellow]warning:[/] {escape(w['message'])}", highlight=False,
                              soft_wrap=True)
    if not quiet:
        out_console.print(_segments_table(result))
        s = result.customers_summary()
        excluded = sum(s["excluded"].values())
        out_console.print(f"k={result.k}: {result.selection.reason}", highlight=False)
        out_console.print(f"{s['segmented']:,} customers segmented, {excluded:,} excluded "
                          f"(see excluded.csv). Outputs in {out}/ — open {out}/report.html",
                          highlight=False)


@app.command()
def segment(
    customers: str | None = typer.Argument(None, help="customers table (csv, csv.gz, parquet, "
                                           "xlsx) or a postgresql://user@host:port/db URL"),
    transactions: Path | None = typer.Option(None, "--transactions", "-t",
                                             help="transactions log"),
    customers_table: str | None = typer.Option(None, "--customers-table", help="read the "
                                               "customers from this table of the database URL"),
    customers_query: str | None = typer.Option(None, "--customers-query",
                                               help="... or from this SQL query"),
    transactions_table: str | None = typer.Option(None, "--transactions-table",
                                                  help="read the transactions from this table"),
    transactions_query: str | None = typer.Option(None, "--transactions-query",
                                                  help="... or from this SQL query"),
    config: Path | None = typer.Option(None, "--config", "-c", help="TOML config file"),
    k: str = typer.Option("auto", "--k", help="'auto' (choose from evidence) or a number"),
    as_of: str | None = typer.Option(None, "--as-of", help="as-of date YYYY-MM-DD "
                                     "(default: the last date in the data)"),
    seed: int | None = typer.Option(None, "--seed", help="random seed (default 0)"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress or tables"),
    previous_model: Path | None = typer.Option(
        None, "--previous-model", help="an earlier run's model/ folder: matching segments keep "
        "their ids (centroids matched with the Hungarian algorithm)"),
    workspace: Path | None = typer.Option(
        None, "--workspace", help="record this run in a workspace (an embedded DuckDB file in "
        "this folder) so drift and evolve can find it by date"),
    engine: str = _engine_option(),
    spark_master: str | None = _master_option(),
    calibration_end: str | None = typer.Option(
        None, "--calibration-end", help="holdout check of the value model: fit on purchases up "
        "to this date (YYYY-MM-DD), compare predicted with actual repeat purchases after it"),
) -> None:
    """Segment customers: features, k from evidence, K-Means, named profiles, report."""
    db = dict(zip(DB_OPTIONS, (customers_table, customers_query, transactions_table,
                               transactions_query), strict=True))
    _guard(lambda: _segment(customers, transactions, config, k, as_of, seed, out, quiet,
                            previous_model, workspace, engine, spark_master, db=db,
                            calibration_end=calibration_end))


def _inspect(customers: Path | None, transactions: Path | None, write_config: Path | None,
             quiet: bool) -> None:
    from custseg.config import TableConfig
    from custseg.io.readers import read_table
    from custseg.io.writers import write_text
    from custseg.roles import config_toml, customer_inference, inspect_rows, transaction_inference

    if customers is None and transactions is None:
        raise typer.BadParameter("give a customers file, --transactions, or both")
    tables = []
    for kind, path, infer in (("customers", customers, customer_inference),
                              ("transactions", transactions, transaction_inference)):
        if path is None:
            continue
        frame = read_table(path)
        inf = infer([str(c) for c in frame.columns], TableConfig(), str(path), frame)
        tables.append((kind, str(Path(path).resolve()), inf))
        if quiet:
            continue
        table = Table(title=f"{kind}: {path} ({len(frame):,} rows)", title_justify="left")
        for col, just in (("column", "left"), ("role", "left"), ("conf.", "right"),
                          ("type", "left"), ("missing", "right"), ("distinct", "right"),
                          ("example", "left"), ("evidence", "left")):
            table.add_column(col, justify=just, overflow="fold")
        for r in inspect_rows(frame, inf):
            ex = r["example"] if len(r["example"]) <= 24 else r["example"][:23] + "…"
            table.add_row(escape(r["column"]), r["role"],
                          "" if r["confidence"] is None else f"{r['confidence']:.2f}",
                          r["type"], f"{r['missing']:.0%}", f"{r['distinct']:,}", escape(ex),
                          escape(r["evidence"]))
        # piped or redirected (Rich assumes 80 columns): wide enough for the evidence
        (out_console if out_console.is_terminal else Console(width=200)).print(table)
    if write_config is not None:
        from custseg._version import __version__ as v

        write_text(write_config, config_toml(tables, f"(custseg {v})"))
        if not quiet:
            out_console.print(f"config written to {write_config}; edit it, then run "
                              f"custseg segment --config {write_config} --out results/",
                              highlight=False)


@app.command()
def inspect(
    customers: Path | None = typer.Argument(None, help="customers table (csv, parquet, xlsx)"),
    transactions: Path | None = typer.Option(None, "--transactions", "-t",
                                             help="transactions log"),
    write_config: Path | None = typer.Option(
        None, "--write-config", help="write a commented custseg.toml reproducing these roles"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no tables"),
) -> None:
    """Show each column's inferred role, confidence, type, missing share, distinct values
    and an example; optionally write a config that reproduces them."""
    _guard(lambda: _inspect(customers, transactions, write_config, quiet))


def _drift(reference: str, current: str, model: Path | None, out: Path,
           workspace: Path | None, config: Path | None, seed: int, alpha: float,
           quiet: bool, engine: str = "local", spark_master: str | None = None) -> int:
    from custseg.config import Config
    from custseg.drift import compare_snapshots
    from custseg.io.writers import OutputDir, write_json, write_text
    from custseg.model import load_model
    from custseg.report.drift_render import render_drift
    from custseg.snapshots import load_snapshot

    cfg = Config.from_toml(config) if config else None
    ws = None
    if workspace is not None:
        from custseg.store import Workspace

        ws = Workspace(workspace)
    ref_path = ws.find(reference) if ws else Path(reference)
    cur_path = ws.find(current) if ws else Path(current)
    if _parse_engine(engine) == "spark":
        from custseg.spark import load_snapshot_spark

        ref = load_snapshot_spark(ref_path, config=cfg, master=spark_master)
        cur = load_snapshot_spark(cur_path, config=cfg, master=spark_master)
    else:
        ref = load_snapshot(ref_path, config=cfg)
        cur = load_snapshot(cur_path, config=cfg)
    m = load_model(model) if model is not None else None
    report = compare_snapshots(ref, cur, model=m, alpha=alpha, seed=seed)
    with OutputDir(out) as od:
        write_json(od.path / "drift.json", report.to_dict())
        write_text(od.path / "drift.html", render_drift(report))
    if ws is not None:
        ws.record("drift", out, as_of=cur.as_of,
                  summary={"verdict": report.verdict, "score": report.score,
                           "reference": str(ref_path), "current": str(cur_path)})
    if not quiet:
        table = Table(title=f"drift {ref.name} → {cur.name}: {report.verdict.upper()}",
                      title_justify="left")
        for col in ("feature", "PSI", "threshold", "JS", "drifted"):
            table.add_column(col, justify="left" if col == "feature" else "right")
        for f in report.features[:12]:
            table.add_row(f.feature, f"{f.psi:.3f}", f"{f.threshold:.3f}",
                          f"{f.tests['js']['statistic']:.3f}", f.severity if f.drifted else "")
        out_console.print(table)
        for r in report.reasons:
            out_console.print(f"- {r}", highlight=False)
        out_console.print(f"Outputs in {out}/ — open {out}/drift.html", highlight=False)
    return 3 if report.drift_detected else 0


@app.command()
def drift(
    reference: str = typer.Option(..., "--reference", "-r", help="reference snapshot folder "
                                  "(data or a segment run), or a date in --workspace"),
    current: str = typer.Option(..., "--current", "-c", help="current snapshot folder or date"),
    model: Path | None = typer.Option(None, "--model", "-m", help="a model/ folder for "
                                      "segment-level drift (default: the reference run's)"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
    workspace: Path | None = typer.Option(None, "--workspace", help="workspace folder"),
    config: Path | None = typer.Option(None, "--config", help="TOML config for column roles"),
    seed: int = typer.Option(0, "--seed"),
    alpha: float = typer.Option(0.05, "--alpha", help="false-alarm rate of the whole comparison"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    engine: str = _engine_option(),
    spark_master: str | None = _master_option(),
) -> None:
    """Detect and quantify drift between two snapshots. Exit 0 stable, 3 drift detected."""
    code = _guard(lambda: _drift(reference, current, model, out, workspace, config, seed, alpha,
                                 quiet, engine, spark_master))
    raise typer.Exit(code)


def _evolve(snapshots: list[str], out: Path, model: Path | None, workspace: Path | None,
            config: Path | None, seed: int, quiet: bool) -> None:
    from custseg.config import Config
    from custseg.evolution import evolve as run_evolve
    from custseg.io.writers import OutputDir, write_json, write_text
    from custseg.model import load_model
    from custseg.report.drift_render import render_evolution
    from custseg.snapshots import load_snapshot

    cfg = Config.from_toml(config) if config else None
    paths = [Path(p) for p in snapshots]
    if workspace is not None:
        from custseg.store import Workspace

        ws = Workspace(workspace)
        paths = [ws.find(p) for p in snapshots] if snapshots else \
            [r.path for r in ws.runs("segment")]
    if len(paths) < 2:
        raise typer.BadParameter("give at least two snapshots (or a workspace with two runs)")
    snaps = [load_snapshot(p, config=cfg) for p in paths]
    report = run_evolve(snaps, model=load_model(model) if model else None, seed=seed)
    with OutputDir(out) as od:
        write_json(od.path / "evolution.json", report.to_dict())
        write_text(od.path / "evolution.html", render_evolution(report))
    if not quiet:
        table = Table(title="segment shares by snapshot", title_justify="left")
        table.add_column("snapshot")
        for s in report.segments:
            table.add_column(s["name"], justify="right")
        table.add_column("drift score", justify="right")
        table.add_column("verdict")
        for row in report.drift:
            shares = report.sizes[row["snapshot"]]
            table.add_row(row["snapshot"], *[f"{shares[s['name']]:.1%}" for s in report.segments],
                          f"{row['score']:.3f}", row["verdict"])
        out_console.print(table)
        out_console.print(report.advice.rationale, highlight=False)
        out_console.print(f"Outputs in {out}/ — open {out}/evolution.html", highlight=False)


@app.command()
def evolve(
    snapshots: list[str] = typer.Argument(None, help="snapshot folders (or dates in "
                                          "--workspace), oldest first"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
    model: Path | None = typer.Option(None, "--model", "-m", help="a model/ folder to assign "
                                      "every snapshot with (default: the first run's, or a "
                                      "model fitted on the first snapshot)"),
    workspace: Path | None = typer.Option(None, "--workspace", help="workspace folder: with "
                                          "no snapshots given, all its segment runs by date"),
    config: Path | None = typer.Option(None, "--config", help="TOML config for column roles"),
    seed: int = typer.Option(0, "--seed"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Migration between segments, size and drift trajectories, and retraining advice."""
    _guard(lambda: _evolve(snapshots or [], out, model, workspace, config, seed, quiet))


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
    customers: int = typer.Option(2000, "--customers", "-n", help="number of customers"),
    months: int = typer.Option(12, "--months", help="months of transactions"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    drift: str | None = typer.Option(None, "--drift", help="none|gradual|shock: also write "
                                     "snapshots/<YYYY-MM>/ (one per month) and drift.json"),
) -> None:
    """Write synthetic customers.csv, transactions.csv and truth.csv with planted personas."""

    def run() -> None:
        from custseg.synth import DRIFT_KINDS, generate, generate_snapshots, write, write_snapshots

        if drift is not None and drift not in DRIFT_KINDS:
            raise typer.BadParameter(f"--drift must be one of {', '.join(DRIFT_KINDS)}")
        data = generate(n_customers=customers, months=months, seed=seed)
        paths = write(data, out)
        out_console.print(f"wrote {len(data.customers):,} customers and "
                          f"{len(data.transactions):,} transaction rows: "
                          + ", ".join(str(p) for p in paths.values()), highlight=False)
        if drift is not None:
            snaps = generate_snapshots(customers, months=months, seed=seed, drift=drift)
            spaths = write_snapshots(snaps, out)
            out_console.print(f"wrote {len(snaps.labels)} monthly snapshots ({drift} drift) "
                              f"under {out / 'snapshots'} and {spaths['drift']}", highlight=False)

    _guard(run)


@app.command()
def demo(
    out: Path = typer.Option(Path("custseg-demo"), "--out", "-o", help="output folder"),
    customers: int = typer.Option(2000, "--customers", "-n", help="number of customers"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Synthesise demo data, segment it and write the report (all under --out)."""

    def run() -> None:
        from custseg.synth import generate, write

        data = generate(n_customers=customers, months=12, seed=seed)
        paths = write(data, out / "data")
        _segment(paths["customers"], paths["transactions"], None, "auto", None, seed, out, quiet)

    _guard(run)


def _score(model: Path, customers: Path | None, transactions: Path | None, as_of: str | None,
           out: Path, quiet: bool, engine: str = "local", spark_master: str | None = None) -> None:
    from custseg.io.writers import write_csv
    from custseg.score import score as run_score

    if _parse_engine(engine) == "spark":
        from custseg.spark import score_spark

        result = score_spark(model, customers, transactions, as_of=_parse_date(as_of),
                             master=spark_master)
    else:
        result = run_score(model, customers, transactions, as_of=_parse_date(as_of))
    excluded_path = out.with_name(out.stem + ".excluded.csv")
    write_csv(out, result.assignments)
    write_csv(excluded_path, result.excluded)
    if not quiet:
        counts = result.assignments["segment_name"].value_counts()
        table = Table(title=f"{len(result.assignments):,} customers scored", title_justify="left")
        table.add_column("segment")
        table.add_column("customers", justify="right")
        for name, n in counts.items():
            table.add_row(str(name), f"{n:,}")
        out_console.print(table)
        out_console.print(f"Assignments in {out}; {len(result.excluded):,} exclusions in "
                          f"{excluded_path}", highlight=False)


@app.command()
def score(
    customers: Path | None = typer.Argument(None, help="customers table to score"),
    model: Path = typer.Option(..., "--model", "-m", help="a model/ folder from custseg segment"),
    transactions: Path | None = typer.Option(None, "--transactions", "-t"),
    as_of: str | None = typer.Option(None, "--as-of", help="as-of date YYYY-MM-DD"),
    out: Path = typer.Option(..., "--out", "-o", help="output CSV (exclusions go beside it)"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    engine: str = _engine_option(),
    spark_master: str | None = _master_option(),
) -> None:
    """Assign customers to the segments of a saved model (batch scoring)."""
    _guard(lambda: _score(model, customers, transactions, as_of, out, quiet, engine,
                          spark_master))


def _serve(model: Path, host: str, port: int, api_key: str | None, limits: dict) -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise CustsegError(f"the API server needs FastAPI and uvicorn ({exc.name} is not "
                           'installed): pip install "custseg[serve]"') from None
    from custseg.serve import serve as run_server

    if not 0 <= port <= 65535:
        raise typer.BadParameter(f"port must be 0-65535, got {port}")
    for name, value in limits.items():
        if not value > 0:  # every limit, and the timeout, must be positive (NaN is not)
            flag = "--" + name.removesuffix("_s").replace("_", "-")
            raise typer.BadParameter(f"{flag} must be positive, got {value}")
    api_key = api_key or None

    def ready(address: tuple) -> None:
        where = f"http://{'[' + host + ']' if ':' in host else host}:{address[1]}"
        err_console.print(f"serving {model} on {where} (docs at {where}/docs; "
                          f"API key {'required' if api_key else 'not set'}); Ctrl+C to stop",
                          highlight=False, soft_wrap=True)
        if api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
            err_console.print(f"[bold yellow]warning:[/] listening on {escape(host)} without "
                              "an API key", highlight=False)

    run_server(model, host=host, port=port, api_key=api_key, on_ready=ready, **limits)


@app.command()
def serve(
    model: Path = typer.Option(..., "--model", "-m", help="a model/ folder from custseg segment"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
    port: int = typer.Option(8000, "--port", help="port to listen on"),
    api_key: str | None = typer.Option(None, "--api-key", envvar="CUSTSEG_API_KEY",
                                       help="require this key in the X-API-Key header "
                                       "(default: $CUSTSEG_API_KEY; none: no key needed)"),
    max_batch: int = typer.Option(1000, "--max-batch", help="most customers per request "
                                  "(413 above it)"),
    max_body_bytes: int = typer.Option(16 * 1024 * 1024, "--max-body-bytes",
                                       help="largest request body in bytes (413 above it, "
                                       "before the body is parsed)"),
    max_lines: int = typer.Option(50_000, "--max-lines",
                                  help="most transaction lines per request (413 above it)"),
    max_lines_per_customer: int = typer.Option(10_000, "--max-lines-per-customer",
                                               help="most transaction lines of one customer "
                                               "in a request (413 above it)"),
    timeout: float = typer.Option(10.0, "--timeout", help="seconds a request may take to "
                                  "score (503 past it)"),
    workers: int = typer.Option(1, "--workers", help="worker processes (each loads the "
                                "model; more serve more requests at once on more cores)"),
) -> None:
    """Serve the model over HTTP: /v1/score, /v1/segments, /healthz (docs at /docs)."""
    limits = {"max_batch": max_batch, "max_body_bytes": max_body_bytes,
              "max_lines": max_lines, "max_lines_per_customer": max_lines_per_customer,
              "timeout_s": timeout, "workers": workers}
    _guard(lambda: _serve(model, host, port, api_key, limits))


def version_callback(value: bool) -> None:
    if value:
        out_console.print(f"custseg {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=version_callback,
                                       is_eager=True, help="show the version and exit")) -> None:
    """custseg: customer segments that marketing teams can act on."""


def main() -> None:
    """Console-script entry point."""
    try:
        app(standalone_mode=True)
    except SystemExit as exc:
        sys.exit(exc.code)
