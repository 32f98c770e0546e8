"""What profiling found: per-segment statistics, names and actions, and the 2-D segment map.

:func:`custseg.profile.profile_segments` and :func:`custseg.profile.segment_map` compute them;
naming and recommendations fill in their text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class SegmentProfile:
    """Everything known about one segment."""

    segment_id: int
    size: int
    share: float
    revenue: float | None
    revenue_share: float | None
    value_per_customer: float | None
    means: dict[str, float]
    medians: dict[str, float]
    z: dict[str, float]
    mixes: dict[str, dict[str, float]]       # column or group -> level -> share in the segment
    level_diff: dict[str, float]             # "column=level" -> segment share - population share
    distinguishing: list[dict]
    name: str = ""
    name_rule: str | None = None
    description: str = ""
    evidence: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)          # the name's absolute checks
    names_rejected: list[dict] = field(default_factory=list)  # names whose checks failed
    insights: list[str] = field(default_factory=list)
    recommendations: list[dict] = field(default_factory=list)
    opportunity: dict = field(default_factory=dict)
    value: dict = field(default_factory=dict)  # forward-looking: P(alive), purchases, CLV

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Profiles:
    segments: list[SegmentProfile]
    population: dict[str, dict[str, float]]   # mean / median / sd per feature
    population_mixes: dict[str, dict[str, float]]
    value_column: str | None
    features: list[str]
    units: dict[str, str] = field(default_factory=dict)  # feature -> unit ("k$")

    def by_id(self, segment_id: int) -> SegmentProfile:
        return next(s for s in self.segments if s.segment_id == segment_id)

    def to_dict(self) -> dict:
        return {"value_column": self.value_column, "features": self.features,
                "population": self.population, "population_mixes": self.population_mixes,
                "units": self.units,
                "segments": [s.to_dict() for s in self.segments]}


@dataclass
class SegmentMap:
    """A 2-D PCA projection of the model matrix for plotting: a stratified sample of customers
    (all of them when few) and every centroid."""

    points: np.ndarray            # (m, 2) projected sampled customers
    labels: np.ndarray            # (m,) their segment ids
    centroids: np.ndarray         # (k, 2) projected centroids, in segment-id order
    segment_ids: np.ndarray       # (k,)
    explained_variance: tuple[float, float]
    sample_size: int
    n_customers: int

    @property
    def sampled(self) -> bool:
        return self.sample_size < self.n_customers
