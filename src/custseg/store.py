"""A workspace: run history in an embedded DuckDB file, so runs can be found by date.

``custseg segment --workspace W`` records each run (its as-of date, output folder, k, segment
names); ``custseg drift --workspace W --reference 2011-03-31 --current 2011-06-30`` and
``custseg evolve --workspace W`` find them again without the user juggling folders. The file is
``W/custseg.duckdb``; runs are numbered in the order they were recorded (no wall-clock times, so
the workspace content is reproducible).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from custseg.errors import InputError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id     INTEGER PRIMARY KEY,
    kind       VARCHAR NOT NULL,      -- segment | drift | evolve
    as_of      DATE,
    path       VARCHAR NOT NULL,
    k          INTEGER,
    summary    VARCHAR                -- JSON: segments, verdict, ...
)
"""


@dataclass(frozen=True)
class RunRecord:
    run_id: int
    kind: str
    as_of: date | None
    path: Path
    k: int | None
    summary: dict


class Workspace:
    """Run history kept in ``<folder>/custseg.duckdb``."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.file = self.folder / "custseg.duckdb"
        try:
            with self._connect() as con:
                con.execute(_SCHEMA)
        except duckdb.Error as exc:
            raise InputError(f"not a usable workspace database ({exc})", file=str(self.file)) \
                from None

    def _connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.file))

    def record(self, kind: str, path: str | Path, *, as_of: date | None = None,
               k: int | None = None, summary: dict | None = None) -> RunRecord:
        """Add a run; recording the same kind and folder again replaces the old record."""
        path = Path(path).resolve()
        with self._connect() as con:
            con.execute("BEGIN TRANSACTION")
            con.execute("DELETE FROM runs WHERE kind = ? AND path = ?", [kind, str(path)])
            (nxt,) = con.execute("SELECT coalesce(max(run_id), 0) + 1 FROM runs").fetchone()
            con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                        [nxt, kind, as_of, str(path), k, json.dumps(summary or {})])
            con.execute("COMMIT")
        return RunRecord(int(nxt), kind, as_of, path, k, summary or {})

    def runs(self, kind: str | None = None) -> list[RunRecord]:
        """Recorded runs ordered by as-of date, then by the order they were recorded."""
        sql = "SELECT run_id, kind, as_of, path, k, summary FROM runs"
        params: list = []
        if kind:
            sql += " WHERE kind = ?"
            params.append(kind)
        sql += " ORDER BY as_of NULLS LAST, run_id"
        with self._connect() as con:
            rows = con.execute(sql, params).fetchall()
        return [RunRecord(int(r[0]), r[1], r[2], Path(r[3]), r[4], json.loads(r[5] or "{}"))
                for r in rows]

    def find(self, ref: str, kind: str = "segment") -> Path:
        """The output folder of the latest run of ``kind`` as of ``ref`` (YYYY-MM-DD), or ``ref``
        itself when it is an existing path."""
        if Path(ref).exists():
            return Path(ref)
        try:
            when = date.fromisoformat(ref)
        except ValueError:
            raise InputError(f"{ref!r} is neither a folder nor a date (YYYY-MM-DD) of a run in the "
                             "workspace", file=str(self.file)) from None
        hits = [r for r in self.runs(kind) if r.as_of == when]
        if not hits:
            dates = sorted({r.as_of.isoformat() for r in self.runs(kind) if r.as_of})
            raise InputError(f"no {kind} run as of {when} in the workspace; runs exist as of: "
                             f"{', '.join(dates) or 'none'}", file=str(self.file))
        return hits[-1].path
