"""Preprocessing that is part of the saved model: impute, log1p skewed money, clip, encode, scale.

Why not a scikit-learn ``ColumnTransformer``? A saved model must be a JSON manifest plus numeric
arrays (never pickle), and every parameter here is a handful of numbers per column, so the
transformer is written to round-trip exactly through :meth:`Preprocessor.to_dict` /
:meth:`Preprocessor.from_dict`. It follows scikit-learn's estimator shape (``fit`` returns self,
learned state ends in ``_``).

Per numeric column: median imputation; ``log1p`` when the column is non-negative and skewed
(skewness > 1); clipping to the 0.5th-99.5th percentiles (so a handful of extreme customers cannot
pull a centroid on their own); standardisation; an optional weight. Binary 0/1 columns are imputed
with their mean and kept on the 0/1 scale. Categorical columns are one-hot encoded over the levels
that hold at least 1% of customers (at most 12), the rest as "other"; each indicator is scaled by
``1/sqrt(2)`` so that a whole categorical variable weighs about as much as one numeric column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from custseg.errors import InputError, NotFittedError
from custseg.fast import map_columns

SKEW_THRESHOLD = 1.0
CLIP_QUANTILES = (0.005, 0.995)
ONE_HOT_SCALE = float(1 / np.sqrt(2))


@dataclass
class ColumnSpec:
    """Learned parameters of one input column."""

    name: str
    kind: str  # numeric | binary | categorical
    impute: float | str | None = None
    log: bool = False
    lo: float | None = None
    hi: float | None = None
    mean: float = 0.0
    scale: float = 1.0
    weight: float = 1.0
    levels: list[str] | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class Preprocessor:
    """Turn a feature table into the numeric matrix K-Means sees.

    Parameters
    ----------
    numeric, binary, categorical : list of str
        Column names of each kind.
    weights : dict, optional
        Multiplier per input column (applied after scaling).
    max_levels, min_level_share : int, float
        One-hot levels kept per categorical column.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"spend": [1.0, 10.0, 100.0, 1000.0], "city": ["a", "b", "a", "b"]})
    >>> pre = Preprocessor(numeric=["spend"], categorical=["city"]).fit(df)
    >>> pre.transform(df).shape
    (4, 3)
    """

    def __init__(self, *, numeric: list[str] = (), binary: list[str] = (),
                 categorical: list[str] = (), weights: dict[str, float] | None = None,
                 max_levels: int = 12, min_level_share: float = 0.01) -> None:
        self.numeric = list(numeric)
        self.binary = list(binary)
        self.categorical = list(categorical)
        self.weights = dict(weights or {})
        self.max_levels = max_levels
        self.min_level_share = min_level_share

    # ---------------------------------------------------------------- fit / transform
    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        self._check_columns(frame, fitted=False)
        def numeric_spec(c: str) -> ColumnSpec:
            x = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype="float64")
            finite = x[np.isfinite(x)]
            if finite.size == 0:
                raise InputError("feature has no values", column=c)
            med = float(np.median(finite))
            xi = np.where(np.isfinite(x), x, med)
            log = bool(finite.min() >= 0 and finite.size > 2 and np.ptp(finite) > 0
                       and stats.skew(finite) > SKEW_THRESHOLD)
            if log:
                xi = np.log1p(xi)
            lo, hi = (float(v) for v in np.quantile(xi, CLIP_QUANTILES))
            if hi <= lo:  # a spike of identical values: don't clip
                lo, hi = float(xi.min()), float(xi.max())
            xc = np.clip(xi, lo, hi)
            mean, sd = float(xc.mean()), float(xc.std())
            return ColumnSpec(c, "numeric", impute=med, log=log, lo=lo, hi=hi, mean=mean,
                              scale=sd if sd > 0 else 1.0, weight=self.weights.get(c, 1.0))

        specs: list[ColumnSpec] = list(map_columns(numeric_spec, self.numeric, len(frame)))
        for c in self.binary:
            x = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype="float64")
            m = float(np.nanmean(x)) if np.isfinite(x).any() else 0.0
            specs.append(ColumnSpec(c, "binary", impute=m, weight=self.weights.get(c, 1.0)))
        for c in self.categorical:
            s = frame[c].astype("string").fillna("(missing)")
            counts = s.value_counts()
            counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
            share = counts / counts.sum()
            levels = [str(v) for v in share.index[share >= self.min_level_share][: self.max_levels]]
            if len(levels) < len(counts):
                levels.append("other")
            specs.append(ColumnSpec(c, "categorical", impute="(missing)", levels=levels,
                                    weight=self.weights.get(c, 1.0)))
        self.specs_ = specs
        self.feature_names_out_ = self._names_out()
        return self

    def _names_out(self) -> list[str]:
        names: list[str] = []
        for s in self.specs_:
            if s.kind == "categorical":
                names += [f"{s.name}={lv}" for lv in s.levels or []]
            else:
                names.append(s.name)
        return names

    def _check_columns(self, frame: pd.DataFrame, fitted: bool = True) -> None:
        needed = [*self.numeric, *self.binary, *self.categorical]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise InputError(f"missing feature columns: {', '.join(missing)}")
        if fitted and not hasattr(self, "specs_"):
            raise NotFittedError("Preprocessor is not fitted; call fit() first")

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The model matrix (float64, one row per customer, columns ``feature_names_out_``)."""
        self._check_columns(frame)

        def numeric_block(s: ColumnSpec) -> np.ndarray:
            x = pd.to_numeric(frame[s.name], errors="coerce").to_numpy(dtype="float64")
            x = np.where(np.isfinite(x), x, s.impute)
            if s.kind == "binary":
                return (x * s.weight)[:, None]
            if s.log:
                x = np.log1p(np.maximum(x, 0.0))
            x = np.clip(x, s.lo, s.hi)
            return (((x - s.mean) / s.scale) * s.weight)[:, None]

        numbers = [s for s in self.specs_ if s.kind != "categorical"]
        done = dict(zip([s.name for s in numbers],
                        map_columns(numeric_block, numbers, len(frame)), strict=True))
        blocks: list[np.ndarray] = []
        for s in self.specs_:
            if s.kind != "categorical":
                blocks.append(done[s.name])
                continue
            v = frame[s.name].astype("string").fillna("(missing)").to_numpy(dtype=object)
            levels = s.levels or []
            if "other" in set(levels):
                v = np.where(np.isin(v, levels), v, "other")
            block = np.column_stack([(v == lv) for lv in levels]).astype("float64")
            blocks.append(block * ONE_HOT_SCALE * s.weight)
        out = np.hstack(blocks) if blocks else np.empty((len(frame), 0))
        return np.ascontiguousarray(out)

    def fit_transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.fit(frame).transform(frame)

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        if not hasattr(self, "specs_"):
            raise NotFittedError("Preprocessor is not fitted")
        return {
            "numeric": self.numeric, "binary": self.binary, "categorical": self.categorical,
            "weights": self.weights, "max_levels": self.max_levels,
            "min_level_share": self.min_level_share,
            "columns": [s.to_dict() for s in self.specs_],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessor:
        pre = cls(numeric=data["numeric"], binary=data["binary"], categorical=data["categorical"],
                  weights=data.get("weights"), max_levels=data["max_levels"],
                  min_level_share=data["min_level_share"])
        pre.specs_ = [ColumnSpec(**c) for c in data["columns"]]
        pre.feature_names_out_ = pre._names_out()
        return pre
