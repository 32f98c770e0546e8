"""What a segmentation run computed: :class:`SegmentationResult` and its k-selection evidence.

:func:`custseg.pipeline.run_segmentation` produces a :class:`SegmentationResult`;
:func:`custseg.outputs.write_outputs` writes it, :mod:`custseg.report` renders it. The stage
objects it carries (config, ledger, features, preprocessor, model) are typed here for reading
only: this module imports no stage.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from datetime import date
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from custseg._version import __version__
from custseg.results.profiles import Profiles, SegmentMap

if TYPE_CHECKING:  # stage types, for annotations only (results import no stage)
    from custseg.config import Config
    from custseg.features import FeatureTable
    from custseg.ledger import Ledger
    from custseg.model import SegmentModel
    from custseg.preprocess import Preprocessor

#: bootstrap stability (mean adjusted Rand index) a k needs to be a candidate (see
#: :data:`custseg.selection.RULE`); the report marks the k's below it
STABILITY_MIN = 0.75


# ------------------------------------------------------------------------------- choosing k


@dataclass
class KScore:
    k: int
    inertia: float
    silhouette: float
    stability: float | None
    criteria: dict[str, float] = field(default_factory=dict)
    # silhouette of the same K-Means on a no-cluster reference with the data's shape
    null_silhouette: float | None = None
    # inertia per customer of the data's and of the reference's K-Means (the gap statistic's
    # log W, per customer so that sample sizes do not matter)
    null_inertia: float | None = None
    mean_inertia: float | None = None

    @property
    def inertia_gap(self) -> float | None:
        """log(reference inertia) - log(data inertia), per customer (Tibshirani's gap)."""
        if not self.null_inertia or not self.mean_inertia:
            return None
        return float(np.log(self.null_inertia) - np.log(self.mean_inertia))

    @property
    def silhouette_gap(self) -> float | None:
        """How much better the data separate than the no-cluster reference does."""
        if self.null_silhouette is None or self.null_silhouette != self.null_silhouette:
            return None
        return self.silhouette - self.null_silhouette


@dataclass
class KSelection:
    """The evidence for k and the decision."""

    k: int
    scores: list[KScore]
    rule: str
    reason: str
    knee: int | None
    no_strong_structure: bool
    sample_size: int
    silhouette_sample: int
    n_customers: int
    overridden: bool = False
    warnings: list[str] = field(default_factory=list)
    # how clustered the data are at the chosen k: "strong", "moderate" or "weak" (then
    # no_strong_structure), the figures it rests on, and what it means for the user
    structure: str = "weak"
    structure_evidence: dict = field(default_factory=dict)
    structure_message: str = ""
    # centroids of the best fit per k on the selection sample: the final fit can start there
    sample_centers: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    # name -> description of every criterion scored (from the selection stage's registry)
    criteria_descriptions: dict[str, str] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("sample_centers")
        d["criteria"] = d.pop("criteria_descriptions")
        return d

    def score_for(self, k: int) -> KScore | None:
        return next((s for s in self.scores if s.k == k), None)


def preferred_k(scores: list[KScore], criterion: str) -> int:
    """The k a criterion prefers: the highest silhouette or Calinski-Harabasz, the lowest
    Davies-Bouldin (a k missing the criterion never wins)."""
    if criterion == "silhouette":
        return max(scores, key=lambda s: s.silhouette).k
    if criterion == "davies_bouldin":
        return min(scores, key=lambda s: s.criteria.get(criterion, np.inf)).k
    return max(scores, key=lambda s: s.criteria.get(criterion, -np.inf)).k


@dataclass
class SilhouetteProfile:
    """Per-customer silhouette values of the final segmentation, on a stratified sample."""

    values: np.ndarray        # silhouette of each sampled customer
    labels: np.ndarray        # their segment ids
    sample_size: int
    n_customers: int

    @property
    def mean(self) -> float:
        return float(self.values.mean()) if len(self.values) else float("nan")

    def by_segment(self) -> dict[int, float]:
        return {int(s): float(self.values[self.labels == s].mean()) for s in np.unique(self.labels)}


# ------------------------------------------------------------------------------- the run


@dataclass
class SegmentationResult:
    """Everything a segmentation run computed; rendering and writing only read it."""

    config: Config
    inputs: dict[str, str]
    as_of: date | None
    ledger: Ledger
    features: FeatureTable
    preprocessor: Preprocessor
    matrix: np.ndarray
    selection: KSelection
    model: SegmentModel
    labels: np.ndarray
    distances: np.ndarray
    profiles: Profiles
    fences: dict[str, float | None] = field(default_factory=dict)
    silhouette: SilhouetteProfile | None = None
    segment_map: SegmentMap | None = None
    ignored_columns: dict[str, str] = field(default_factory=dict)
    # every input column: {table, column, role, confidence, evidence, use, reason}, where use
    # is id / feature / derives / profiled / ignored
    columns: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # report charts already drawn (PNG bytes by name): a big run draws the k-selection chart
    # while its final K-Means runs; the report draws whatever is missing
    charts: dict[str, bytes] = field(default_factory=dict)
    currency: str = ""  # put before amounts in the report ([report] currency, or inferred)
    value_model: dict | None = None  # the value model's parameters and settings, when fitted
    holdout: dict | None = None      # the holdout check ([value] calibration_end), when run
    why: np.ndarray | None = None    # per customer: the features that place it in its segment

    @property
    def k(self) -> int:
        return self.model.k

    def assignments(self) -> pd.DataFrame:
        """customer_id, segment_id, segment_name, distance, then the features (original units)."""
        segs = sorted(self.profiles.segments, key=lambda s: s.segment_id)
        ids = np.array([s.segment_id for s in segs])
        names = np.array([s.name for s in segs], dtype=object)
        f = self.features
        cols = [c for c in [*f.numeric, *f.binary, *f.descriptive, *f.categorical]
                if c in f.frame.columns]
        out = pd.DataFrame({
            "customer_id": f.frame.index.to_numpy(dtype=object),
            "segment_id": self.labels,
            "segment_name": names[np.searchsorted(ids, self.labels)],
            "distance": np.round(self.distances, 6),
        })
        if self.why is not None:
            out["why"] = self.why
        feats = f.frame[cols].reset_index(drop=True)
        for c in cols:
            if pd.api.types.is_numeric_dtype(feats[c]):
                feats[c] = feats[c].astype("float64").round(6)
        return pd.concat([out, feats], axis=1)

    def outcome_rates(self, seg) -> dict[str, dict[str, float | None]]:
        """Each outcome column's mean in the segment (a rate for yes/no outcomes) beside the
        base's, and the ratio of the two."""
        out = {}
        for c in self.features.outcomes:
            m = seg.means.get(c)
            b = self.profiles.population.get(c, {}).get("mean")
            ok = m is not None and b is not None and np.isfinite(m) and np.isfinite(b)
            out[c] = {"segment": round(m, 6) if ok else None, "base": round(b, 6) if ok else None,
                      "index": round(m / b, 4) if ok and b else None}
        return out

    def rows_summary(self) -> dict:
        return {name: s.to_dict() for name, s in self.ledger.sources.items()}

    def customers_summary(self) -> dict:
        excluded = self.ledger.excluded_customers()
        segmented = int(len(self.labels))
        return {"seen": segmented + sum(excluded.values()), "segmented": segmented,
                "excluded": dict(sorted(excluded.items()))}

    def summary(self) -> dict:
        """The ``summary.json`` content."""
        sel = self.selection.to_dict()
        return {
            "custseg_version": __version__,
            "inputs": self.inputs,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "seed": self.config.segmentation.seed,
            "k": self.k,
            "currency": self.currency or None,
            "value_model": self.value_model,
            "holdout": self.holdout,
            "no_strong_structure": self.selection.no_strong_structure,
            "structure": self.selection.structure,
            "structure_message": self.selection.structure_message,
            "k_selection": sel,
            "final_fit": {"init": getattr(self.model, "init_", None),
                          "iterations": getattr(self.model, "n_iter_", None),
                          "inertia": round(float(getattr(self.model, "inertia_", float("nan"))), 6)},
            "rows": self.rows_summary(),
            "customers": self.customers_summary(),
            "cleaning": dict(sorted(self.ledger.cleaned.items())),
            "features": {
                "model": self.features.model_columns,
                "descriptive": self.features.descriptive,
                "outcomes": self.features.outcomes,
                "value_column": self.features.value_column,
                "encoded": self.preprocessor.feature_names_out_,
                "transforms": [s.to_dict() for s in self.preprocessor.specs_],
                "definitions": {k: v for k, v in self.features.definitions.items()
                                if k in self.features.frame.columns},
                "ignored_columns": self.ignored_columns,
            },
            "columns": self.columns,
            "segments": [
                {"segment_id": s.segment_id, "name": s.name, "size": s.size,
                 "share": round(s.share, 6),
                 "revenue_share": None if s.revenue_share is None else round(s.revenue_share, 6),
                 "outcomes": self.outcome_rates(s),
                 "value": {k: (round(v, 6) if isinstance(v, float) else v)
                           for k, v in s.value.items()},
                 "evidence": s.evidence, "checks": s.checks,
                 "names_rejected": s.names_rejected}
                for s in self.profiles.segments
            ],
            "warnings": self.ledger.warnings + [{"category": "k-selection", "message": w}
                                                for w in self.selection.warnings],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "versions": _library_versions(),
        }


def _library_versions() -> dict[str, str]:
    """The versions that made the numbers (the modelling libraries' from their installed
    metadata: a result imports no modelling library)."""
    return {"custseg": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pd.__version__,
            "scikit-learn": version("scikit-learn"), "scipy": version("scipy"),
            "duckdb": version("duckdb")}
