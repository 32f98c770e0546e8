"""Shared fixtures: the real-data folder, synthetic data, small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    """``$CUSTSEG_DATA`` or ``../shared/data``; None when absent (tests then skip, or fail on CI)."""
    path = Path(os.environ.get("CUSTSEG_DATA", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    path = data_dir()
    if path is None:
        msg = ("real data folder not found: set CUSTSEG_DATA or put the data in ../shared/data "
               f"(looked in {os.environ.get('CUSTSEG_DATA', REPO.parent / 'shared' / 'data')})")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def synth_files(tmp_path_factory) -> dict[str, Path]:
    """Synthetic customers + transactions (seed 0, 2,000 customers) written to CSV once."""
    from custseg.synth import generate, write

    out = tmp_path_factory.mktemp("synth")
    return write(generate(n_customers=2000, months=12, seed=0), out)
