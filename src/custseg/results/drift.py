"""What a drift comparison found: :class:`DriftReport` and its per-feature and per-segment parts.

:func:`custseg.drift.compare_snapshots` produces a :class:`DriftReport`;
:func:`custseg.report.drift_render.render_drift` renders it and the CLI writes its
:meth:`~DriftReport.to_dict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: PSI from which a feature's shift is material (a drift, when also beyond chance) …
PSI_MATERIAL = 0.10
#: … and major (a reason to retrain); the reports draw both levels
PSI_MAJOR = 0.25


@dataclass
class FeatureDrift:
    feature: str
    kind: str
    n_reference: int
    n_current: int
    tests: dict[str, dict[str, float | None]]
    psi: float
    threshold: float            # calibrated PSI threshold at this sample size
    p_value: float              # of the PSI under the calibrated null
    drifted: bool
    severity: str               # none | minor | major
    reference: dict[str, float | str | None]
    current: dict[str, float | str | None]
    new_levels: list[str] = field(default_factory=list)
    vanished_levels: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class SegmentChange:
    segment_id: int
    name: str
    reference_share: float
    current_share: float
    status: str                 # grew | shrank | stable | faded | appeared
    centroid_shift_sd: float | None = None
    top_changes: list[dict] = field(default_factory=list)


@dataclass
class SegmentDrift:
    """How the segments changed: shares under the reference model, and a refit on current data."""

    k: int
    share_chi2: float
    share_p_value: float
    share_tvd: float            # total variation distance between the share vectors
    refit_ari: float            # reference model's assignment vs a refit on current data
    silhouette_reference: float
    silhouette_current: float
    current_best_k: int | None
    changes: list[SegmentChange]
    notes: list[str] = field(default_factory=list)


@dataclass
class DriftReport:
    reference: dict
    current: dict
    features: list[FeatureDrift]
    segments: SegmentDrift | None
    verdict: str                # stable | watch | retrain
    reasons: list[str]
    score: float                # the largest feature PSI: the drift score tracked over time
    settings: dict
    # name -> description of every test run (from the drift stage's registry)
    test_descriptions: dict[str, str] = field(default_factory=dict)

    @property
    def drift_detected(self) -> bool:
        return self.verdict != "stable"

    def to_dict(self) -> dict:
        return {
            "reference": self.reference, "current": self.current, "verdict": self.verdict,
            "drift_detected": self.drift_detected, "reasons": self.reasons, "score": self.score,
            "settings": self.settings,
            "features": [asdict(f) for f in self.features],
            "segments": asdict(self.segments) if self.segments is not None else None,
            "tests": dict(self.test_descriptions),
        }
