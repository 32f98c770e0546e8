"""Run configuration: pydantic models for the TOML config file.

Precedence is CLI > file > defaults: the CLI builds a :class:`Config` from the file and then applies
its own options with :meth:`Config.with_overrides`.

Example ``custseg.toml``::

    [customers]
    id = "ID"                       # column roles can be named when auto-detection can't find them
    categorical = ["Channel", "Region"]
    ignore = ["Z_CostContact"]

    [source]                        # optional: tables read from PostgreSQL instead of files
    url = "postgresql://analyst@db.example:5432/shop"   # password: PGPASSWORD or ${ENV} in the URL

    [transactions]
    query = "select * from orders where created >= '2024-01-01'"   # or table = "orders", or path

    [transactions.columns]
    customer_id = "CustomerID"

    [features]
    exclude = ["return_rate"]
    weights = { monetary = 2.0 }

    [segmentation]
    k = "auto"
    k_max = 8
    seed = 0
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from custseg.errors import ConfigError
from custseg.io.db import DbSource, is_db_url, scrub_url


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableConfig(_Strict):
    """How to read one input table and which columns play which role."""

    path: str | None = None
    table: str | None = Field(default=None, description="a table of [source] url (instead of path)")
    query: str | None = Field(default=None, description="a query on [source] url (instead of path)")
    id: str | None = Field(default=None, description="customer id column (a shortcut for columns.customer_id)")
    row_ids: bool = Field(default=False, description="the table has no id column: use the 1-based row number")
    columns: dict[str, str] = Field(default_factory=dict, description="role -> column name overrides")
    categorical: list[str] = Field(default_factory=list, description="columns to treat as categories")
    numeric: list[str] = Field(default_factory=list, description="columns to treat as numbers")
    ignore: list[str] = Field(default_factory=list, description="columns not to use at all")
    outcomes: list[str] | None = Field(
        default=None, description="outcome columns (churn, campaign response, complaints …): "
        "profiled per segment as rates or means beside the base, never clustered on; default: "
        "inferred from common names (churn, response, AcceptedCmp*, complain, subscribed, y); "
        "[] for none")
    value: str | list[str] | None = Field(
        default=None, description="a customers table's value column (e.g. TotalCharges), or "
        "columns summed into one (e.g. annual spend per product family): each segment's share "
        "of it is reported; default: pre-aggregated Mnt* spend, or a column named like "
        "total charges / total spend / revenue")
    date_format: str | None = Field(default=None, description="strftime format for date columns")
    duplicates: Literal["auto", "drop", "keep"] = Field(
        default="auto", description="transaction lines identical in every column: drop all but "
        "the first (drop), keep them all as repeat purchases (keep), or drop them only when an "
        "order id column makes them provably the same line (auto)")
    delimiter: str | None = None
    encoding: str | None = None


class SourceConfig(_Strict):
    """A database the ``table``/``query`` of [customers] and [transactions] are read from."""

    url: str | None = Field(default=None, description="postgresql://user@host:port/database; the "
                            "password from PGPASSWORD, ~/.pgpass or a ${ENV} reference in the URL")
    batch_rows: int = Field(default=100_000, ge=1, description="rows streamed per Arrow batch")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not is_db_url(v):
            raise ValueError(f"expected postgresql://user@host:port/database, got "
                             f"{scrub_url(v)!r}")
        return v

    @field_serializer("url", when_used="json")
    def _no_password(self, v: str | None) -> str | None:
        # summary.json carries the config: the password never goes with it
        return scrub_url(v) if v else v


class FeatureConfig(_Strict):
    """Which engineered features go into the model and with what weight."""

    include: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    weights: dict[str, float] = Field(default_factory=dict)
    max_categories: int = Field(default=12, ge=2, le=100)
    min_category_share: float = Field(default=0.01, ge=0.0, lt=0.5)

    @field_validator("weights")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        for name, w in v.items():
            if not w > 0:
                raise ValueError(f"weight for {name!r} must be > 0, got {w}")
        return v


class SegmentationConfig(_Strict):
    """How k is chosen and K-Means is fitted."""

    k: int | Literal["auto"] = "auto"
    k_min: int = Field(default=2, ge=2)
    k_max: int = Field(default=10, ge=2, le=50)
    seed: int = 0
    as_of: date | None = None
    window_days: int | None = Field(
        default=None, ge=1,
        description="only transactions in this many days up to the as-of date make the features "
        "(default: all history); snapshots compared over time should use the same window",
    )
    selection_sample: int = Field(default=20_000, ge=200)
    silhouette_sample: int = Field(default=4_000, ge=100)
    bootstrap: int = Field(
        default=10, ge=0, le=50,
        description="K-Means refits on 80% subsamples per k for the stability score (0: skip); "
        "10 keeps the figure's resampling noise near +-0.05 at the 0.75 threshold",
    )
    n_init: int = Field(default=10, ge=1)
    final_fit: Literal["from-sample", "full"] = Field(
        default="from-sample",
        description="above selection_sample customers, the final K-Means starts from the centroids "
        "of the best selection fit on the sample and runs once on all customers ('from-sample'), "
        "or runs n_init times from scratch on all customers ('full', the slow reference path)",
    )
    threads: int = Field(
        default=1, ge=1, le=256,
        description="threads for K-Means and distances; 1 is fastest on the small shared machines "
        "measured so far (OpenMP with 2 threads ran 2-30x slower there)",
    )
    k_workers: int = Field(
        default=2, ge=1, le=64,
        description="k values scored side by side while choosing k (threads; each K-Means still "
        "uses `threads`); the chosen k and every score are the same for any value",
    )
    transactions_engine: Literal["auto", "duckdb", "pandas"] = Field(
        default="auto",
        description="where a transactions CSV/Parquet file is cleaned: in DuckDB straight from the "
        "file (any size, spills to disk), in pandas, or auto (DuckDB from 64 MB); the same rules "
        "and results either way",
    )
    duckdb_memory_limit: str | None = Field(
        default=None, description="memory DuckDB may use, e.g. '2GB' (default: DuckDB's 80% of RAM); "
        "beyond it DuckDB spills to duckdb_temp_directory")
    duckdb_temp_directory: str | None = None
    on_invalid: Literal["error", "exclude"] = Field(
        default="error",
        description="unparseable values in a required column: stop with an error, or exclude the row",
    )

    @field_validator("k")
    @classmethod
    def _k(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 2:
            raise ValueError("k must be at least 2")
        return v


class ValueConfig(_Strict):
    """The value model (BG/NBD + Gamma-Gamma): P(alive), expected purchases, CLV per customer."""

    enabled: bool = Field(default=True, description="fit it whenever there are transactions")
    horizon_months: int = Field(default=12, ge=1, le=120, description="CLV and expected "
                                "purchases over this many months")
    monthly_discount: float = Field(default=0.01, ge=0.0, lt=1.0,
                                    description="CLV discount rate per month")
    unit_days: float = Field(default=7.0, gt=0, le=366,
                             description="the model's time unit in days (weeks by default)")
    at_risk_below: float = Field(default=0.5, gt=0.0, lt=1.0,
                                 description="P(alive) under which a customer's CLV is at risk")
    calibration_end: date | None = Field(
        default=None, description="holdout check: fit on purchases up to this date and compare "
        "predicted with actual repeat purchases after it, up to the as-of date")


class ReportConfig(_Strict):
    """How the report states amounts."""

    currency: str | None = Field(
        default=None, max_length=8,
        description="symbol or code put before amounts (e.g. '£', 'EUR '); default: inferred "
        "from the amount / value column names (usd, dollar, eur, gbp, £ …), else none")


class Config(_Strict):
    """The whole run configuration."""

    source: SourceConfig = Field(default_factory=SourceConfig)
    customers: TableConfig = Field(default_factory=TableConfig)
    transactions: TableConfig = Field(default_factory=TableConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    value: ValueConfig = Field(default_factory=ValueConfig)
    naming_rules: str | None = Field(default=None, description="a TOML rules table replacing the built-in one")

    @model_validator(mode="after")
    def _one_source_each(self) -> Config:
        for name in ("customers", "transactions"):
            t: TableConfig = getattr(self, name)
            given = [k for k in ("path", "table", "query") if getattr(t, k) is not None]
            if len(given) > 1:
                raise ValueError(f"[{name}] gives {' and '.join(given)}: give one of them")
            if given and given[0] != "path" and self.source.url is None:
                raise ValueError(f"[{name}] {given[0]} needs a database: [source] url = "
                                 '"postgresql://user@host:port/database"')
        return self

    def db_source(self, table: str) -> DbSource | None:
        """The database source of ``table`` ("customers" or "transactions"), if it has one."""
        t: TableConfig = getattr(self, table)
        if self.source.url is None or (t.table is None and t.query is None):
            return None
        return DbSource(self.source.url, table=t.table, query=t.query,
                        batch_rows=self.source.batch_rows)

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read a TOML config file; errors name the file and the offending key."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from None
        cfg = cls.from_dict(data, source=str(path))
        # relative paths inside the config are relative to the config file
        updates: dict[str, Any] = {}
        for table in ("customers", "transactions"):
            t: TableConfig = getattr(cfg, table)
            if t.path and not Path(t.path).is_absolute():
                updates[table] = t.model_copy(update={"path": str(path.parent / t.path)})
        if cfg.naming_rules and not Path(cfg.naming_rules).is_absolute():
            updates["naming_rules"] = str(path.parent / cfg.naming_rules)
        return cfg.model_copy(update=updates) if updates else cfg

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            where = f"key '{loc}': " if loc else ""
            raise ConfigError(f"{source}: {where}{err['msg']}") from None

    def with_overrides(self, **overrides: Any) -> Config:
        """Apply CLI options (``None`` means "not given") on top of this config."""
        seg = {k: v for k, v in overrides.items() if v is not None}
        if not seg:
            return self
        data = self.model_dump()
        data["segmentation"].update(seg)
        return Config.from_dict(data, source="command line")
