"""What segment evolution across snapshots found: :class:`EvolutionReport`, the migrations
between consecutive snapshots and the retraining advice.

:func:`custseg.evolution.evolve` produces it; :func:`custseg.report.drift_render.render_evolution`
renders it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Migration:
    """Customers moving between segments from one snapshot to the next."""

    source: str
    target: str
    matrix: dict[str, dict[str, int]]   # from segment (or "new") -> to segment (or "gone") -> n
    stayed_share: float                 # of customers in both, share that kept their segment
    customers_in_both: int


@dataclass
class RetrainAdvice:
    interval_months: float | None
    low_months: float | None
    high_months: float | None
    slope_per_month: float              # of sqrt(drift score)
    threshold: float
    crossed_at: str | None              # first snapshot whose verdict was "retrain"
    rationale: str


@dataclass
class EvolutionReport:
    snapshots: list[dict]
    segments: list[dict]                # id, name
    sizes: dict[str, dict[str, float]]  # snapshot -> segment name -> share
    counts: dict[str, dict[str, int]]
    migrations: list[Migration]
    drift: list[dict]                   # per snapshot: score, verdict, per-feature psi
    advice: RetrainAdvice
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)
