"""The package version, in one place.

``pyproject.toml`` reads it from here (``[tool.setuptools.dynamic]``), and every module that
records a version (model manifests, ``summary.json``, the API) imports it from here rather than
from the package root, so that nothing inside the package imports ``custseg`` itself.
"""

__version__ = "0.1.0"
