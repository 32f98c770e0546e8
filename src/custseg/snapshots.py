"""Snapshots: the data as of a date, for drift and evolution.

A snapshot is either

* a **data folder** holding ``customers.*`` and/or ``transactions.*`` (csv, csv.gz, tsv,
  parquet, xlsx), optionally with ``snapshot.toml`` naming the as-of date and column roles::

      as_of = 2011-03-31
      window_days = 365        # features from the year up to the as-of date
      [transactions.columns]
      customer_id = "Customer ID"

* or a **segment run's output folder** (``segments.csv`` + ``summary.json`` [+ ``model/``]):
  its features, segment assignment and model are reused as they are.

Either way the features are built by the same code as ``custseg segment`` uses.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from custseg.config import Config, SegmentationConfig, TableConfig
from custseg.errors import ConfigError, InputError
from custseg.features import FeatureTable
from custseg.io.writers import unescape_formulas
from custseg.model import SegmentModel, load_model
from custseg.preprocess import Preprocessor

DATA_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".parquet", ".xlsx")


@dataclass
class Snapshot:
    """Per-customer features as of a date, with the segment assignment when it came from a run."""

    name: str
    path: Path | None
    as_of: date | None
    features: FeatureTable
    source: str                                   # "data" | "run" | "frame"
    labels: pd.Series | None = None               # segment id per customer (runs only)
    model: tuple[SegmentModel, Preprocessor, dict[str, Any]] | None = None
    rows: dict | None = None

    @property
    def n_customers(self) -> int:
        return len(self.features.frame)


def _find(folder: Path, stem: str) -> Path | None:
    hits = [p for p in sorted(folder.iterdir())
            if p.is_file() and p.name.lower().startswith(stem + ".")
            and any(p.name.lower().endswith(s) for s in DATA_SUFFIXES)]
    if len(hits) > 1:
        raise InputError(f"more than one {stem} file in the snapshot folder "
                         f"({', '.join(p.name for p in hits)})", file=str(folder))
    return hits[0] if hits else None


def _snapshot_config(folder: Path, base: Config | None) -> Config:
    cfg = base or Config()
    toml = folder / "snapshot.toml"
    if not toml.is_file():
        return cfg
    try:
        data = tomllib.loads(toml.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{toml}: cannot read ({exc})") from None
    update: dict[str, Any] = {}
    try:
        for table in ("customers", "transactions"):
            if table in data:
                update[table] = TableConfig.model_validate(data.pop(table))
        seg = cfg.segmentation.model_dump()
        for key in ("as_of", "window_days"):
            if key in data:
                seg[key] = data.pop(key)
        update["segmentation"] = SegmentationConfig.model_validate(seg)
    except Exception as exc:  # pydantic's ValidationError
        raise ConfigError(f"{toml}: {exc}") from None
    if data:
        raise ConfigError(f"{toml}: unknown keys {', '.join(sorted(data))}; expected as_of, "
                          "[customers], [transactions]")
    return cfg.model_copy(update=update)


def load_snapshot(path: str | Path, *, config: Config | None = None,
                  name: str | None = None, prepare=None) -> Snapshot:
    """Load a snapshot folder (data or a segment run's output).

    ``prepare(customers, transactions, config=)`` builds a data folder's features (default
    :func:`custseg.pipeline.prepare_data`; the Spark engine passes its own).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("snapshot folder not found", file=str(path))
    if not path.is_dir():
        raise InputError("a snapshot is a folder (with customers.* and/or transactions.*, "
                         "or a segment run's output)", file=str(path))
    label = name or path.name
    if (path / "segments.csv").is_file() and (path / "summary.json").is_file():
        return _load_run(path, label)
    if prepare is None:
        from custseg.pipeline import prepare_data as prepare

    customers, transactions = _find(path, "customers"), _find(path, "transactions")
    if customers is None and transactions is None:
        raise InputError("no customers.* or transactions.* file (csv, csv.gz, parquet, xlsx) "
                         "and not a segment run's output folder", file=str(path))
    cfg = _snapshot_config(path, config)
    data = prepare(customers, transactions, config=cfg)
    return Snapshot(name=label, path=path, as_of=data.as_of, features=data.features,
                    source="data", rows={k: v.to_dict() for k, v in data.ledger.sources.items()})


def _load_run(path: Path, label: str) -> Snapshot:
    try:
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable summary.json ({exc})", file=str(path)) from None
    # (text a spreadsheet would run as a formula was written with a leading quote: undone)
    seg = unescape_formulas(pd.read_csv(path / "segments.csv", dtype={"customer_id": str},
                                        low_memory=False))
    model = load_model(path / "model") if (path / "model").is_dir() else None
    if model is not None:
        f = model[2]["features"]
        numeric, binary, categorical = f["numeric"], f["binary"], f["categorical"]
        value = f.get("value_column")
    else:
        feats = summary.get("features", {})
        cols = set(feats.get("model", []))
        numeric = [c for c in cols if c in seg and pd.api.types.is_numeric_dtype(seg[c])]
        binary, categorical, value = [], [c for c in cols if c not in numeric], None
    descriptive = [c for c in summary.get("features", {}).get("descriptive", []) if c in seg]
    frame = seg.set_index("customer_id")
    labels = frame.pop("segment_id")
    frame = frame.drop(columns=[c for c in ("segment_name", "distance") if c in frame])
    as_of = date.fromisoformat(summary["as_of"]) if summary.get("as_of") else None
    ft = FeatureTable(frame=frame, numeric=numeric, binary=binary, categorical=categorical,
                      descriptive=descriptive, as_of=as_of, value_column=value)
    return Snapshot(name=label, path=path, as_of=as_of, features=ft, source="run",
                    labels=labels, model=model, rows=summary.get("rows"))
