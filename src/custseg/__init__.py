"""custseg: customer segments that marketing teams can act on.

Examples
--------
>>> from custseg import segment                                      # doctest: +SKIP
>>> result = segment(customers="customers.csv", transactions="tx.csv", out="run/")
>>> [(s.segment_id, s.name, s.size) for s in result.profiles.segments]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from custseg._version import __version__
from custseg.errors import (
    ConfigError,
    CustsegError,
    InputError,
    ModelFormatError,
    NotFittedError,
)

if TYPE_CHECKING:
    import pandas as pd

    from custseg.config import Config
    from custseg.results.segmentation import SegmentationResult


def segment(customers: str | Path | pd.DataFrame | None = None,
            transactions: str | Path | pd.DataFrame | None = None, *,
            out: str | Path | None = None, config: Config | str | Path | None = None,
            **overrides: Any) -> SegmentationResult:
    """Segment customers; write the outputs to ``out`` when given.

    Parameters
    ----------
    customers, transactions : path or DataFrame, optional
        At least one is needed.
    out : path, optional
        Output folder for segments.csv, excluded.csv, profiles.json, summary.json, report.html
        and model/.
    config : Config or path to a TOML file, optional
    **overrides
        Settings of ``[segmentation]`` (``k``, ``seed``, ``as_of``, ``k_max`` …).
    """
    from custseg.config import Config
    from custseg.outputs import selection_charts, write_outputs
    from custseg.pipeline import run_segmentation

    cfg = config if isinstance(config, Config) else (
        Config.from_toml(config) if config is not None else Config())
    cfg = cfg.with_overrides(**overrides)
    result = run_segmentation(customers, transactions, config=cfg,
                              selection_charts=selection_charts)
    if out is not None:
        write_outputs(result, out)
    return result


def load_model(path: str | Path):
    """Load a saved model folder: ``(SegmentModel, Preprocessor, manifest)``."""
    from custseg.model import load_model as _load

    return _load(path)


__all__ = ["__version__", "segment", "load_model", "CustsegError", "InputError", "ConfigError",
           "ModelFormatError", "NotFittedError"]
