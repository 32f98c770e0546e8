"""The row ledger: what happened to every input row and customer.

Cleaning records each excluded row (with its 1-based row number and the reason) and each value
a rule changed; the run summary is built from the ledger, so it accounts for every row read.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def row_numbers(n: int) -> np.ndarray:
    """The ledger's numbers for ``n`` data rows: 1 for the first (the header is not counted)."""
    return np.arange(1, n + 1, dtype="int64")


@dataclass
class SourceLedger:
    """What happened to the rows of one input file."""

    file: str
    rows_read: int = 0
    excluded: Counter = field(default_factory=Counter)
    returns: int = 0
    duplicates: str | None = None  # what was done with identical lines, and why

    @property
    def rows_used(self) -> int:
        return self.rows_read - sum(self.excluded.values())

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "read": self.rows_read,
            "used": self.rows_used,
            "excluded": dict(sorted(self.excluded.items())),
            **({"returns_and_cancellations": self.returns} if self.returns else {}),
            **({"duplicates": self.duplicates} if self.duplicates else {}),
        }


@dataclass
class Ledger:
    """Accounts for every input row and customer, and every value the cleaning rules changed."""

    sources: dict[str, SourceLedger] = field(default_factory=dict)
    cleaned: Counter = field(default_factory=Counter)
    warnings: list[dict] = field(default_factory=list)
    _excluded: list[pd.DataFrame] = field(default_factory=list)

    def source(self, name: str, file: str, rows: int) -> SourceLedger:
        self.sources[name] = SourceLedger(file=file, rows_read=rows)
        return self.sources[name]

    def exclude_rows(self, source: str, rows: pd.Series | np.ndarray, ids: pd.Series | None,
                     reason: str) -> None:
        """Record rows (1-based numbers) of ``source`` excluded for ``reason``."""
        rows = np.asarray(rows)
        if len(rows) == 0:
            return
        self.sources[source].excluded[reason] += len(rows)
        ids_arr = (np.asarray(ids, dtype=object) if ids is not None
                   else np.full(len(rows), None, dtype=object))
        self._excluded.append(pd.DataFrame({
            "source": source, "row": rows.astype("int64"), "customer_id": ids_arr, "reason": reason,
        }))

    def exclude_customers(self, ids: pd.Series | np.ndarray | list, reason: str) -> None:
        """Record customers excluded from segmentation as a whole (not tied to one row)."""
        ids = list(ids)
        if not ids:
            return
        self._excluded.append(pd.DataFrame({
            "source": "customer", "row": pd.array([pd.NA] * len(ids), dtype="Int64"),
            "customer_id": pd.Series(ids, dtype=object), "reason": reason,
        }))

    def warn(self, category: str, message: str) -> None:
        self.warnings.append({"category": category, "message": message})

    def excluded_frame(self) -> pd.DataFrame:
        cols = ["source", "row", "customer_id", "reason"]
        if not self._excluded:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
        out = pd.concat(self._excluded, ignore_index=True)
        out["row"] = out["row"].astype("Int64")
        return out[cols]

    def excluded_customers(self) -> Counter:
        frame = self.excluded_frame()
        cust = frame[frame["source"] == "customer"]
        return Counter(cust["reason"].tolist())
