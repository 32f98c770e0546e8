"""Scoring: assign new or existing customers to the segments of a saved model.

The model's own configuration (column roles, feature window, feature selection) rebuilds the
features exactly as at fit time, then its preprocessing and centroids assign each customer.
Customers that cannot be scored go to the exclusions with a reason. Scoring the training data
reproduces the training assignment exactly.

``confidence`` is ``1 - d1 / d2`` (d1, d2: distances to the nearest and second-nearest centroid):
0 on the boundary between two segments, towards 1 deep inside one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from custseg.config import Config
from custseg.errors import InputError, ModelFormatError
from custseg.explain import why_placed
from custseg.features import VALUE_INPUTS
from custseg.model import SegmentModel, load_model
from custseg.preprocess import Preprocessor
from custseg.value import VALUE_COLUMNS, apply_value_model

Source = str | Path | pd.DataFrame | None


@dataclass
class LoadedModel:
    """A saved model ready to score: centroids, preprocessing, segments and the fit config."""

    model: SegmentModel
    preprocessor: Preprocessor
    manifest: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> LoadedModel:
        return cls(*load_model(path))

    @property
    def segments(self) -> list[dict]:
        return self.manifest.get("segments", [])

    def names(self) -> dict[int, str]:
        return {int(s["segment_id"]): s["name"] for s in self.segments}

    def why(self, X: np.ndarray, segment_ids: np.ndarray,
            values: dict[str, np.ndarray]) -> list[str] | None:
        """Why each row of the model matrix ``X`` is in its segment (:mod:`custseg.explain`),
        against the training run's medians; None for a model saved without them.
        ``values``: the numeric / 0-1 features in original units (those present are used)."""
        segs = self.segments
        if not segs or not all("medians" in s for s in segs):
            return None
        ids = np.asarray(self.model.segment_ids_)
        by_id = {int(s["segment_id"]): s["medians"] for s in segs}

        def numbers(d: dict) -> dict[str, float]:
            return {k: (np.nan if v is None else v) for k, v in d.items()}

        features = [c for c in [*self.preprocessor.numeric, *self.preprocessor.binary]
                    if c in values]
        return why_placed(X, np.searchsorted(ids, segment_ids),
                          np.asarray(self.model.cluster_centers_),
                          self.preprocessor.feature_names_out_, features, values,
                          [numbers(by_id[int(i)]) for i in ids],
                          numbers(self.manifest.get("population_medians", {})),
                          self.manifest.get("units", {}))

    def config(self, as_of: date | None = None) -> Config:
        """The fit-time config with input paths (and database tables/queries) removed (and the as-of date replaced)."""
        try:
            cfg = Config.model_validate(self.manifest["config"])
        except Exception as exc:
            raise ModelFormatError(f"model manifest has an invalid config ({exc})") from None
        update = {t: getattr(cfg, t).model_copy(update={"path": None, "table": None,
                                                       "query": None})
                  for t in ("customers", "transactions")}
        seg = cfg.segmentation.model_copy(update={"as_of": as_of})
        return cfg.model_copy(update={**update, "segmentation": seg})

    def assign(self, frame: pd.DataFrame, X: np.ndarray | None = None) -> pd.DataFrame:
        """segment_id, segment_name, distance, confidence for a feature frame (``X``: its
        model matrix, when already computed)."""
        if X is None:
            X = self.preprocessor.transform(frame)
        d = self.model.transform(X)
        order = np.argsort(d, axis=1, kind="stable")
        nearest = order[:, 0]
        d1 = d[np.arange(len(d)), nearest]
        if d.shape[1] > 1:
            d2 = d[np.arange(len(d)), order[:, 1]]
            conf = np.where(d2 > 0, 1.0 - d1 / np.where(d2 > 0, d2, 1.0), 0.0)
        else:
            conf = np.ones(len(d))
        ids = self.model.segment_ids_[nearest]
        names = self.names()
        return pd.DataFrame({
            "customer_id": frame.index.to_numpy(dtype=object),
            "segment_id": ids,
            "segment_name": [names.get(int(i), f"Segment {i}") for i in ids],
            "distance": np.round(d1, 6),
            "confidence": np.round(conf, 6),
        })


@dataclass
class ScoreResult:
    assignments: pd.DataFrame
    excluded: pd.DataFrame
    rows: dict
    as_of: date | None


def score(model: LoadedModel | str | Path, customers: Source = None, transactions: Source = None,
          *, as_of: date | None = None, scoring_config: Config | None = None,
          prepare=None, assign=None) -> ScoreResult:
    """Score customers with a saved model.

    Parameters
    ----------
    model : LoadedModel or path to a ``model/`` folder
    customers, transactions : path or DataFrame
        The same kind of inputs the model was fitted on (a model fitted on transactions needs
        transactions; one fitted on customers needs customers).
    as_of : date, optional
        Default: the last date in the data, as when fitting.
    prepare, assign : callable, optional
        Another engine's feature building (``prepare_data``'s signature) and assignment
        (``assign(loaded_model, features_frame)``); the Spark engine passes its own.
    """
    if prepare is None:
        from custseg.pipeline import prepare_data as prepare

    lm = model if isinstance(model, LoadedModel) else LoadedModel.load(model)
    cfg = scoring_config or lm.config(as_of)
    inputs = lm.manifest.get("training", {}).get("inputs", {})
    if "transactions" in inputs and transactions is None:
        raise InputError("this model was fitted on transactions: give --transactions to score")
    if "customers" in inputs and customers is None:
        raise InputError("this model was fitted on a customers table: give the customers file")
    feats = lm.manifest["features"]
    data = prepare(customers if "customers" in inputs else None,
                        transactions if "transactions" in inputs else None,
                   config=cfg, scoring=True, fixed_groups=feats.get("groups") or None,
                   fences=lm.manifest.get("cleaning_fences") or {})
    frame = data.features.frame
    needed = [*lm.preprocessor.numeric, *lm.preprocessor.binary, *lm.preprocessor.categorical]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(f"the input lacks columns the model needs: {', '.join(missing)}")
    X = lm.preprocessor.transform(frame)  # the model matrix, for assignment and explanation
    assignments = assign(lm, frame) if assign is not None else lm.assign(frame, X)
    # why each customer is in its segment, against the training run's medians
    numeric = [c for c in [*lm.preprocessor.numeric, *lm.preprocessor.binary]
               if c in frame.columns]
    why = lm.why(X, assignments["segment_id"].to_numpy(),
                 {c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype="float64")
                  for c in numeric})
    if why is not None:
        assignments.insert(assignments.columns.get_loc("confidence") + 1, "why", why)
    value = lm.manifest.get("value_model")
    if value and set(VALUE_INPUTS) <= set(frame.columns):
        # the training run's fitted value model, applied (never refitted on a scoring batch)
        cols = apply_value_model(value, frame[list(VALUE_INPUTS)])
        for c in VALUE_COLUMNS:
            if cols[c].notna().any():
                assignments[c] = np.round(cols[c].to_numpy(float), 6)
    return ScoreResult(assignments=assignments, excluded=data.ledger.excluded_frame(),
                       rows={k: v.to_dict() for k, v in data.ledger.sources.items()},
                       as_of=data.as_of)


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """A customers or transactions table from JSON records, every value as text (like a CSV)."""
    frame = pd.DataFrame.from_records(records)
    return frame.astype("string").astype(object).where(frame.notna(), None)


__all__ = ["LoadedModel", "ScoreResult", "score", "records_frame"]
