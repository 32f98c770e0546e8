"""Error hierarchy. Every error a user can cause is a :class:`CustsegError`.

The CLI maps these to a one-line message and exit code 2; anything else is a bug (exit 1).
"""

from __future__ import annotations


class CustsegError(Exception):
    """Base class for errors caused by input, configuration or saved models."""

    exit_code = 2


class InputError(CustsegError):
    """Bad input data. Names the file, the column, the row, the rule and the offending value.

    Examples
    --------
    >>> str(InputError("cannot parse as a date", file="tx.csv", column="InvoiceDate", row=1043, value="31/02/2011"))
    "tx.csv, column 'InvoiceDate', row 1043: cannot parse as a date (value '31/02/2011')"
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        column: str | None = None,
        row: int | None = None,
        value: object = None,
    ) -> None:
        self.message = message
        self.file = file
        self.column = column
        self.row = row
        self.value = value
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.column is not None:
            where.append(f"column '{self.column}'")
        if self.row is not None:
            where.append(f"row {self.row}")
        prefix = ", ".join(where)
        text = f"{prefix}: {self.message}" if prefix else self.message
        if self.value is not None:
            text += f" (value {self.value!r})"
        return text


class ConfigError(CustsegError):
    """Invalid configuration file or option."""


class ModelFormatError(CustsegError):
    """A saved model that cannot be loaded: unknown version, tampered or truncated file."""


class NotFittedError(CustsegError):
    """A model was used before it was fitted."""
