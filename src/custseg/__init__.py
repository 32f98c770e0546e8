"""custseg: customer segments that marketing teams can act on.

The public API::

    from custseg import segment, load_model
    result = segment(customers="customers.csv", transactions="transactions.csv", out="run/")
"""

from __future__ import annotations

__version__ = "0.1.0"

from custseg.errors import ConfigError, CustsegError, InputError, ModelFormatError  # noqa: E402

__all__ = ["__version__", "CustsegError", "InputError", "ConfigError", "ModelFormatError"]
