"""Shared fixtures: the real-data folder, synthetic data, small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    """``$CUSTSEG_DATA`` or ``../shared/data``; None when absent (the real-data tests then fail)."""
    path = Path(os.environ.get("CUSTSEG_DATA", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real datasets' folder. Missing, the test fails (never skips): a developer's run checks
    the same real data as CI's. Deselect these tests with ``-m "not realdata"`` on purpose."""
    path = data_dir()
    if path is None:
        pytest.fail("real data folder not found: set CUSTSEG_DATA or put the data in "
                    "../shared/data (looked in "
                    f"{os.environ.get('CUSTSEG_DATA', REPO.parent / 'shared' / 'data')}); "
                    'to leave these tests out on purpose, run pytest -m "not realdata"')
    return path


@pytest.fixture(scope="session")
def synth_files(tmp_path_factory) -> dict[str, Path]:
    """Synthetic customers + transactions (seed 0, 2,000 customers) written to CSV once."""
    from custseg.synth import generate, write

    out = tmp_path_factory.mktemp("synth")
    return write(generate(n_customers=2000, months=12, seed=0), out)


# ---- the Spark session (test_spark.py, test_parity.py) ------------------------------------------


def _spark_missing() -> str | None:
    """Why the Spark engine cannot run here, or None."""
    import shutil

    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'custseg[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").is_file()) and not shutil.which("java"):
        return "no Java runtime (apt-get install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def spark():
    """One local-mode SparkSession for the whole run. A missing PySpark or Java fails the tests
    that need it (``make test`` installs both), so a developer's run is the same as CI's."""
    why = _spark_missing()
    if why:
        pytest.fail(f"the Spark tests need PySpark and Java (make test installs them): {why}")
    from custseg.spark import get_session

    session = get_session("local[2]", conf={
        "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2",
        "spark.ui.enabled": "false", "spark.driver.memory": "1g",
        "spark.python.worker.reuse": "true", "spark.sql.adaptive.enabled": "false"})
    yield session
    session.stop()
