"""Readers for CSV (delimiter and encoding sniffed, gzip too), Parquet and Excel files.

Every reader returns a :class:`pandas.DataFrame` whose text columns are kept as text: typing
happens in :mod:`custseg.parsing` and :mod:`custseg.cleaning`, where a failure can name the column, the row and the value.
"""

from __future__ import annotations

import csv
import gzip
import threading
from concurrent.futures import Future
from pathlib import Path

import pandas as pd

from custseg.errors import InputError

#: the cells read as missing: only markers that never are a value. "None"/"none" are not among
#: them: in real tables they are answers (a telephone "yes"/"none", an education level "none").
NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "#N/A", "?"]
_DELIMITERS = [",", "\t", ";", "|"]
_ENCODINGS = ["utf-8-sig", "cp1252", "latin-1"]


def _open_sample(path: Path, n: int = 65536) -> bytes:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return fh.read(n)
    except gzip.BadGzipFile:
        raise InputError("not a valid gzip file", file=str(path)) from None


#: byte-order marks of the UTF-16/32 encodings (the UTF-32 ones first: they start like UTF-16's)
_BOMS = [(b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")]


def sniff_encoding(sample: bytes) -> str:
    """UTF-16 or UTF-32 when the sample starts with their byte-order mark (Excel's "Unicode
    text"), else the first of utf-8, cp1252, latin-1 that decodes the sample.

    >>> sniff_encoding("a,b\n".encode("utf-16"))
    'utf-16'
    """
    for bom, enc in _BOMS:
        if sample.startswith(bom):
            return enc
    for enc in _ENCODINGS:
        try:
            sample.decode(enc)
            return enc
        except UnicodeDecodeError as exc:
            # a multi-byte character cut at the end of the sample is not a decoding failure
            if enc == "utf-8-sig" and exc.reason == "unexpected end of data":
                return enc
            continue
    return "latin-1"


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter that splits the header and the next lines into the same number of fields.

    >>> sniff_delimiter("a;b;c\\n1;2;3\\n")
    ';'
    >>> sniff_delimiter("ID\\tYear_Birth\\n1\\t1957\\n")
    '\\t'
    """
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    if not lines:
        return ","
    best, best_score = ",", (-1, -1)
    for d in _DELIMITERS:
        counts = [ln.count(d) for ln in lines]
        if counts[0] == 0:
            continue
        consistent = sum(c == counts[0] for c in counts[1:])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = d, score
    return best


_prefetched: dict[tuple, Future] = {}
_prefetch_lock = threading.Lock()


def _prefetch_key(path: Path, delimiter: str | None, encoding: str | None) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), st.st_mtime_ns, st.st_size, delimiter, encoding)


def prefetch(path: str | Path, *, delimiter: str | None = None,
             encoding: str | None = None) -> None:
    """Start reading ``path`` on a background thread; :func:`read_table` with the same
    arguments then takes that result (or its error, unchanged) instead of reading again.

    Parsing runs in Arrow's C++ code, outside the interpreter lock, so it overlaps work that
    needs the interpreter: the CLI starts the read before it imports scikit-learn and
    matplotlib (a million-row CSV: ~0.7 s of its ~1 s read is hidden). A file that changes
    in between is read again.
    """
    path = Path(path)
    key = _prefetch_key(path, delimiter, encoding)
    if key is None or not path.is_file():
        return
    fut: Future = Future()
    with _prefetch_lock:
        if key in _prefetched:
            return
        _prefetched[key] = fut

    def work() -> None:
        try:
            fut.set_result(_read_table(path, delimiter=delimiter, encoding=encoding))
        except BaseException as exc:  # handed to read_table, which raises it
            fut.set_exception(exc)

    threading.Thread(target=work, name="custseg-prefetch", daemon=True).start()


def read_table(
    path: str | Path,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read a CSV (optionally gzipped), TSV, Parquet or Excel file.

    Text files are read with every column as text so that nothing is silently coerced; Parquet
    and Excel keep their stored types.

    Raises
    ------
    InputError
        When the path can't be read, the file is empty or has a header but no rows.
    """
    path = Path(path)
    key = _prefetch_key(path, delimiter, encoding)
    with _prefetch_lock:
        fut = _prefetched.pop(key, None) if key is not None else None
    if fut is not None:
        return fut.result()
    return _read_table(path, delimiter=delimiter, encoding=encoding)


def _read_table(path: Path, *, delimiter: str | None, encoding: str | None) -> pd.DataFrame:
    name = str(path)
    if not path.exists():
        raise InputError("file not found", file=name)
    if path.is_dir():
        raise InputError("expected a file but this is a folder", file=name)
    try:
        if path.stat().st_size == 0:
            raise InputError("file is empty", file=name)
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", file=name) from None
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if suffixes and suffixes[-1] == ".parquet":
            frame = pd.read_parquet(path)
        elif suffixes and suffixes[-1] in (".xlsx", ".xlsm", ".xls"):
            frame = pd.read_excel(path, dtype=str, na_values=NA_VALUES, keep_default_na=False)
        else:
            frame = _read_csv(path, delimiter=delimiter, encoding=encoding)
    except InputError:
        raise
    except PermissionError:
        raise InputError("cannot read file (permission denied)", file=name) from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read file ({msg})", file=name) from None
    if frame.shape[1] == 0:
        raise InputError("file has no columns", file=name)
    if len(frame) == 0:
        raise InputError(
            f"file has a header but no data rows (columns: {', '.join(map(str, frame.columns))})",
            file=name,
        )
    header = [str(c).strip() for c in _raw_header(path, frame)]
    frame.columns = header
    dupes = frame.columns[frame.columns.duplicated()].tolist()
    if dupes:
        raise InputError("duplicate column name in header", file=name, column=dupes[0])
    return frame


def _raw_header(path: Path, frame: pd.DataFrame) -> list[str]:
    """The header as written (pandas renames a repeated name to "name.1")."""
    raw = frame.attrs.get("raw_header")
    if raw is not None and len(raw) == frame.shape[1]:
        return list(raw)
    suffix = path.suffixes[-1].lower() if path.suffixes else ""
    if suffix in (".xlsx", ".xlsm", ".xls"):
        head = pd.read_excel(path, header=None, nrows=1, dtype=str)
        return [str(v) for v in head.iloc[0].tolist()]
    return [str(c) for c in frame.columns]


def _read_csv(path: Path, *, delimiter: str | None, encoding: str | None) -> pd.DataFrame:
    sample = _open_sample(path)
    if not sample.strip():
        raise InputError("file is empty", file=str(path))
    enc = encoding or sniff_encoding(sample)
    text = sample.decode(enc, errors="replace")
    sep = delimiter or sniff_delimiter(text)
    compression = "gzip" if path.name.lower().endswith(".gz") else None
    kwargs = dict(
        sep=sep,
        dtype=str,
        na_values=NA_VALUES,
        keep_default_na=False,
        compression=compression,
        skipinitialspace=False,
        engine="c",
    )
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    header = next(csv.reader([first], delimiter=sep), [])
    frame = _read_csv_arrow(path, header, sep, enc)
    if frame is not None:
        frame.attrs["raw_header"] = header
        return frame
    try:
        frame = pd.read_csv(path, encoding=enc, **kwargs)
    except UnicodeDecodeError:
        if encoding:
            raise
        # the sample decoded, a later part of the file did not: fall back to a one-byte encoding
        enc = "cp1252"
        frame = pd.read_csv(path, encoding=enc, encoding_errors="replace", **kwargs)
    except pd.errors.EmptyDataError:
        raise InputError("file is empty", file=str(path)) from None
    frame.attrs["raw_header"] = header
    return frame


def _read_csv_arrow(path: Path, header: list[str], sep: str, enc: str) -> pd.DataFrame | None:
    """Read every column as text with pyarrow's multi-threaded parser (2-3x faster than
    pandas' on large files); None when pyarrow can't (ragged rows, odd quoting, a bad byte...) so
    that the pandas reader runs and reports the problem precisely."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    if not header or len(set(header)) != len(header):
        return None
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding="utf8" if enc == "utf-8-sig" else enc,
                                           column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header}, null_values=NA_VALUES,
                strings_can_be_null=True, quoted_strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, UnicodeError,
            OSError):
        return None
    frame = table.to_pandas()
    return frame
