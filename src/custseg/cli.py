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

from custseg import __version__
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


def _segment(customers: Path | None, transactions: Path | None, config: Path | None, k: str,
             as_of: str | None, seed: int | None, out: Path, quiet: bool,
             previous_model: Path | None = None) -> None:
    from custseg.config import Config
    from custseg.pipeline import run_segmentation, write_outputs

    cfg = Config.from_toml(config) if config else Config()
    cfg = cfg.with_overrides(k=_parse_k(k) if k != "auto" or config is None else None,
                             as_of=_parse_date(as_of), seed=seed)
    if customers is None and transactions is None and not (cfg.customers.path or
                                                           cfg.transactions.path):
        raise typer.BadParameter("give a customers file, --transactions, or both")
    previous = None
    if previous_model is not None:
        from custseg.model import load_model

        previous = load_model(previous_model)[:2]
    with _Bars(quiet) as bars:
        result = run_segmentation(customers, transactions, config=cfg, progress=bars,
                                  previous_model=previous)
        write_outputs(result, out, progress=bars)
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
    customers: Path | None = typer.Argument(None, help="customers table (csv, csv.gz, parquet, xlsx)"),
    transactions: Path | None = typer.Option(None, "--transactions", "-t",
                                             help="transactions log"),
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
) -> None:
    """Segment customers: features, k from evidence, K-Means, named profiles, report."""
    _guard(lambda: _segment(customers, transactions, config, k, as_of, seed, out, quiet,
                            previous_model))


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", "-o", help="output folder"),
    customers: int = typer.Option(2000, "--customers", "-n", help="number of customers"),
    months: int = typer.Option(12, "--months", help="months of transactions"),
    seed: int = typer.Option(0, "--seed", help="random seed"),
) -> None:
    """Write synthetic customers.csv, transactions.csv and truth.csv with planted personas."""

    def run() -> None:
        from custseg.synth import generate, write

        data = generate(n_customers=customers, months=months, seed=seed)
        paths = write(data, out)
        out_console.print(f"wrote {len(data.customers):,} customers and "
                          f"{len(data.transactions):,} transaction rows: "
                          + ", ".join(str(p) for p in paths.values()), highlight=False)

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
