"""Starting (or reusing) a SparkSession, with clear errors when PySpark or Java is missing."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from typing import Any

from custseg.errors import CustsegError

INSTALL_HINT = "pip install 'custseg[spark]'"
JAVA_HINT = ("install a Java 17 runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) "
             "or set JAVA_HOME")

# settings every custseg Spark session needs: timestamps are read and compared in UTC (so day
# and second differences never cross a daylight-saving change) and pandas <-> Spark goes via Arrow
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "true",
}
# defaults a caller's ``conf`` (or spark-submit) may override
DEFAULT_CONF = {"spark.ui.showConsoleProgress": "false"}


def quiet_pandas_warning() -> None:
    """Hide PySpark's one known FutureWarning about pandas 3 (custseg's Spark code only uses
    the Arrow paths that pandas 3 supports); every other warning is left as it is."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)


class SparkUnavailableError(CustsegError):
    """PySpark or a Java runtime is missing (exit code 2, like other usage errors)."""


def require_spark() -> None:
    """Raise :class:`SparkUnavailableError` naming the fix when PySpark or Java is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailableError(
            f"the Spark engine needs PySpark, which is not installed: {INSTALL_HINT}") from None
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.path.isfile(os.path.join(java_home, "bin", "java"))) \
            and shutil.which("java") is None:
        raise SparkUnavailableError(f"the Spark engine needs Java, which was not found: {JAVA_HINT}")


def get_session(master: str | None = "local[*]", *, app_name: str = "custseg",
                conf: dict[str, Any] | None = None, quiet: bool = True):
    """The active SparkSession, or a new one on ``master``.

    ``None``: the master spark-submit set (when run by spark-submit), else ``local[*]``.

    Settings in :data:`REQUIRED_CONF` are applied to an existing session too.
    """
    require_spark()
    quiet_pandas_warning()
    from pyspark.sql import SparkSession

    if master is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = "local[*]"  # not under spark-submit, which sets the master itself
    if master is None or master.startswith("local"):
        # local mode: the Python workers run this interpreter (with custseg and its packages)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None:
        spark = active
    else:
        builder = SparkSession.builder.appName(app_name)
        if master:
            builder = builder.master(master)
        for k, v in {**DEFAULT_CONF, **(conf or {}), **REQUIRED_CONF}.items():
            builder = builder.config(k, str(v))
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # Java gateway failures are RuntimeErrors/Py4J errors
            raise SparkUnavailableError(f"could not start Spark on {master!r} "
                                        f"({str(exc).splitlines()[0] if str(exc) else exc!r}); "
                                        f"{JAVA_HINT}") from None
        if quiet:
            spark.sparkContext.setLogLevel("ERROR")
    for k, v in REQUIRED_CONF.items():
        spark.conf.set(k, v)
    return spark
