"""Tests for custseg.io.readers and custseg.io.writers."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from custseg.errors import InputError
from custseg.io.readers import prefetch, read_table, sniff_delimiter, sniff_encoding
from custseg.io.writers import (
    OutputDir,
    to_json,
    write_bytes,
    write_csv,
    write_json,
    write_npy,
    write_text,
)

ROWS = [["17850", "Café Noir", "2.55"], ["13047", "Home & Garden", "1,234.50"]]
HEADER = ["CustomerID", "Description", "UnitPrice"]


def _csv_text(sep: str) -> str:
    lines = [sep.join(HEADER)] + [sep.join(r) for r in ROWS]
    return "\n".join(lines) + "\n"


def _assert_table(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == HEADER
    assert frame.shape == (2, 3)
    # text is kept as text: ids are not turned into numbers, "1,234.50" is not split or parsed
    assert frame["CustomerID"].tolist() == ["17850", "13047"]
    assert frame["Description"].tolist() == ["Café Noir", "Home & Garden"]


# ------------------------------------------------------------------------------------ sniffing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n4,5,6\n", ","),
        ("a;b;c\n1;2,5;3\n4;5;6\n", ";"),
        ("ID\tYear_Birth\tIncome\n1\t1957\t58138\n", "\t"),
        ("a|b|c\n1|2|3\n", "|"),
        ("", ","),
    ],
)
def test_sniff_delimiter(text: str, expected: str) -> None:
    assert sniff_delimiter(text) == expected


def test_sniff_delimiter_prefers_consistent_field_counts() -> None:
    # the header has more commas than semicolons, but only ';' splits every line the same way
    text = "name,x;city;total\nA,1;Paris;3\nB;Rome;4\nC;Oslo;5\n"
    assert sniff_delimiter(text) == ";"


def test_sniff_encoding_utf8_and_cp1252() -> None:
    assert sniff_encoding("name\nCafé au lait\nx\n".encode()) == "utf-8-sig"
    assert sniff_encoding("name\nCafé au lait\nx\n".encode("cp1252")) == "cp1252"


def test_sniff_encoding_utf8_character_cut_at_end_of_sample() -> None:
    data = "name\nCafé".encode()
    # the sample ends in the middle of the two-byte "é"
    assert sniff_encoding(data[:-1]) == "utf-8-sig"


def test_sniff_encoding_cp1252_byte_near_end_is_not_utf8() -> None:
    assert sniff_encoding(b"name,city\n1,Caf\xe9\n") == "cp1252"


# ------------------------------------------------------------------------------------ read_table


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_read_csv_with_sniffed_delimiter(tmp_path: Path, sep: str) -> None:
    text = _csv_text(sep)
    if sep == ",":  # a comma inside a value needs quoting in a comma file
        text = text.replace("1,234.50", '"1,234.50"')
    path = tmp_path / "customers.csv"
    path.write_text(text, encoding="utf-8")
    frame = read_table(path)
    _assert_table(frame)
    assert frame["UnitPrice"].tolist() == ["2.55", "1,234.50"]


def test_read_gzip_csv(tmp_path: Path) -> None:
    path = tmp_path / "transactions.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(_csv_text(";"))
    _assert_table(read_table(path))


def test_read_bad_gzip_names_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv.gz"
    path.write_bytes(b"this is not gzip data at all\n")
    with pytest.raises(InputError, match="broken.csv.gz") as info:
        read_table(path)
    assert "gzip" in str(info.value)


def test_read_cp1252_csv(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    # enough rows that the cp1252 byte is far from the end of the sample
    text = _csv_text(";") + "".join(f"{i};Crème brûlée;1.00\n" for i in range(20))
    path.write_bytes(text.encode("cp1252"))
    frame = read_table(path)
    assert frame.loc[0, "Description"] == "Café Noir"
    assert frame.loc[2, "Description"] == "Crème brûlée"
    assert len(frame) == 22


def test_read_short_cp1252_csv_still_decodes(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_bytes("id,city\n1,Café\n".encode("cp1252"))
    frame = read_table(path)
    assert frame["city"].tolist() == ["Café"]


def test_read_utf8_bom_csv(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _csv_text(",").replace("1,234.50", "1234.50").encode())
    frame = read_table(path)
    assert list(frame.columns) == HEADER  # no BOM glued to the first column name


def test_read_explicit_delimiter_overrides_sniffing(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a;b\n1;2\n", encoding="utf-8")
    frame = read_table(path, delimiter=",")
    assert list(frame.columns) == ["a;b"]


def test_read_missing_values_and_header_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "na.csv"
    path.write_text(" id , value\n1,NA\n2,\n3,?\n4,x\n", encoding="utf-8")
    frame = read_table(path)
    assert list(frame.columns) == ["id", "value"]
    assert frame["value"].isna().tolist() == [True, True, True, False]


def test_read_parquet_keeps_types(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    src = pd.DataFrame({"customer_id": ["a", "b"], "amount": [1.5, 2.5], "qty": [1, 2]})
    src.to_parquet(path, engine="pyarrow")
    frame = read_table(path)
    pd.testing.assert_frame_equal(frame, src)
    assert frame["amount"].dtype == np.float64


def test_read_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    pd.DataFrame({"ID": ["1", "2"], "Income": ["58138", "46344"], "Note": ["NA", "ok"]}).to_excel(
        path, index=False, engine="openpyxl"
    )
    frame = read_table(path)
    assert list(frame.columns) == ["ID", "Income", "Note"]
    assert frame["Income"].tolist() == ["58138", "46344"]
    assert frame["Note"].isna().tolist() == [True, False]


def test_read_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.csv: file is empty"):
        read_table(path)


def test_read_blank_lines_only_file(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match=r"blank\.csv: file is empty"):
        read_table(path)


def test_read_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("CustomerID,InvoiceDate\n", encoding="utf-8")
    with pytest.raises(InputError, match="header.csv") as info:
        read_table(path)
    assert "no data rows" in str(info.value)
    assert "CustomerID, InvoiceDate" in str(info.value)


def test_read_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(InputError, match="file not found") as info:
        read_table(path)
    assert info.value.file == str(path)
    assert str(path) in str(info.value)


def test_read_folder_path(tmp_path: Path) -> None:
    folder = tmp_path / "data.csv"
    folder.mkdir()
    with pytest.raises(InputError, match="expected a file but this is a folder") as info:
        read_table(folder)
    assert info.value.file == str(folder)


def test_read_duplicate_columns_after_strip(tmp_path: Path) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text("id,amount, amount\n1,2,3\n", encoding="utf-8")
    with pytest.raises(InputError, match="dupes.csv") as info:
        read_table(path)
    assert info.value.column == "amount"
    assert "duplicate column" in str(info.value)


def test_read_duplicate_columns_exact(tmp_path: Path) -> None:
    path = tmp_path / "dupes.csv"
    path.write_text("id,amount,amount\n1,2,3\n", encoding="utf-8")
    with pytest.raises(InputError, match="dupes.csv"):
        read_table(path)


# ------------------------------------------------------------------------------------ writers


def test_write_text_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "summary.txt"
    write_text(target, "first")
    write_text(target, "second")
    assert target.read_text(encoding="utf-8") == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.txt"]


def test_failed_write_keeps_old_content_and_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_json(target, {"k": 3})
    with pytest.raises(TypeError):
        write_json(target, {"k": object()})
    with pytest.raises(TypeError):  # fails inside the write, after the temp file exists
        write_bytes(target, "text is not bytes")  # type: ignore[arg-type]
    assert json.loads(target.read_text(encoding="utf-8")) == {"k": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_write_json_nan_and_inf_become_null(tmp_path: Path) -> None:
    obj = {
        "nan": float("nan"),
        "inf": float("inf"),
        "nested": [1.5, -float("inf"), {"x": np.float32("nan")}],
        "np64": np.float64("nan"),
        "int": np.int64(7),
        "ts": pd.Timestamp("2011-12-09"),
    }
    path = write_json(tmp_path / "a.json", obj)
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {
        "nan": None,
        "inf": None,
        "nested": [1.5, None, {"x": None}],
        "np64": None,
        "int": 7,
        "ts": "2011-12-09T00:00:00",
    }


def test_write_json_nan_inside_numpy_array(tmp_path: Path) -> None:
    path = write_json(tmp_path / "a.json", {"a": np.array([1.0, np.nan])})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": [1.0, None]}


def test_to_json_keeps_insertion_order() -> None:
    assert list(json.loads(to_json({"b": 1, "a": 2}))) == ["b", "a"]


def test_write_csv_roundtrip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"customer_id": ["a", "b"], "segment_id": [1, 2]})
    path = write_csv(tmp_path / "segments.csv", frame)
    assert path.read_bytes() == b"customer_id,segment_id\na,1\nb,2\n"


def test_write_npy_numeric_roundtrip_without_pickle(tmp_path: Path) -> None:
    arr = np.arange(6, dtype="float64").reshape(2, 3)
    path = write_npy(tmp_path / "c.npy", arr)
    np.testing.assert_array_equal(np.load(path, allow_pickle=False), arr)


def test_write_npy_refuses_object_arrays(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="pickle"):
        write_npy(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object))
    assert list(tmp_path.iterdir()) == []


def test_output_dir_commits_on_success(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with OutputDir(target) as out:
        assert out.path != target
        write_text(out.path / "a.txt", "hello")
        write_npy(out.path / "model" / "c.npy", np.zeros(2))
        assert not target.exists()  # nothing visible until the run succeeds
    assert (target / "a.txt").read_text(encoding="utf-8") == "hello"
    assert (target / "model" / "c.npy").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_output_dir_replaces_existing_subfolder(tmp_path: Path) -> None:
    target = tmp_path / "run"
    (target / "model").mkdir(parents=True)
    (target / "model" / "stale.npy").write_bytes(b"old")
    (target / "keep.txt").write_text("kept", encoding="utf-8")
    with OutputDir(target) as out:
        write_text(out.path / "model" / "manifest.json", "{}")
    assert sorted(p.name for p in (target / "model").iterdir()) == ["manifest.json"]
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt", "model"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_output_dir_leaves_target_untouched_on_error(tmp_path: Path) -> None:
    target = tmp_path / "run"
    target.mkdir()
    (target / "segments.csv").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="boom"), OutputDir(target) as out:
        write_text(out.path / "segments.csv", "new")
        write_text(out.path / "report.html", "<html>")
        raise RuntimeError("boom")
    assert sorted(p.name for p in target.iterdir()) == ["segments.csv"]
    assert (target / "segments.csv").read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging folder left


def test_output_dir_error_does_not_create_target(tmp_path: Path) -> None:
    target = tmp_path / "fresh"
    with pytest.raises(ValueError), OutputDir(target) as out:
        write_text(out.path / "a.txt", "x")
        raise ValueError
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ prefetch


def test_prefetched_read_is_the_same_frame_and_is_taken_once(tmp_path: Path) -> None:
    from custseg.io import readers

    path = tmp_path / "c.csv"
    path.write_text("customer_id;age\n1;30\n2;41\n", encoding="utf-8")
    prefetch(path)
    assert len(readers._prefetched) == 1
    got = read_table(path)
    assert not readers._prefetched  # taken: a second read reads the file again
    pd.testing.assert_frame_equal(got, read_table(path))
    assert got["age"].tolist() == ["30", "41"]


def test_prefetch_error_surfaces_from_read_table_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("  \n", encoding="utf-8")
    prefetch(path)
    with pytest.raises(InputError, match="file is empty") as info:
        read_table(path)
    assert info.value.file == str(path)


def test_prefetch_is_ignored_when_the_file_or_arguments_change(tmp_path: Path) -> None:
    import os

    from custseg.io import readers

    path = tmp_path / "c.csv"
    path.write_text("customer_id,age\n1,30\n", encoding="utf-8")
    prefetch(path)
    readers._prefetched[next(iter(readers._prefetched))].result()
    path.write_text("customer_id,age\n1,30\n2,55\n", encoding="utf-8")
    os.utime(path, ns=(1, 1))
    assert read_table(path)["age"].tolist() == ["30", "55"]
    prefetch(path, delimiter=",")
    assert read_table(path)["age"].tolist() == ["30", "55"]  # other arguments: own read
    readers._prefetched.clear()
    prefetch(tmp_path / "missing.csv")  # nothing to read: read_table reports it as always
    assert not readers._prefetched


@pytest.mark.parametrize("n", [7, 60_000])  # the pandas writer and the pyarrow one (>= 50k rows)
def test_write_csv_escapes_spreadsheet_formulas_but_not_numbers(tmp_path: Path, n: int) -> None:
    """Text cells starting with = + - @ tab or CR reach a spreadsheet as formulas (CSV
    injection): they are prefixed with a single quote (OWASP); numbers, also negative ones, and
    text that is a plain number stay as they are."""
    cells = ["=HYPERLINK(\"http://x\")", "+C2", "-C3", "@SUM(A1)", "\tx", "-12.5", "ok"]
    frame = pd.DataFrame({"customer_id": (cells * (n // 7 + 1))[:n],
                          "segment_name": pd.Series(["=cmd|' /C calc'!A0"] * n, dtype="string"),
                          "amount": np.resize([-1.5, 2.0], n)})
    path = write_csv(tmp_path / "s.csv", frame)
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back["customer_id"].tolist()[:7] == [
        "'=HYPERLINK(\"http://x\")", "'+C2", "'-C3", "'@SUM(A1)", "'\tx", "-12.5", "ok"]
    assert set(back["segment_name"]) == {"'=cmd|' /C calc'!A0"}
    assert back["amount"].tolist()[:2] == ["-1.5", "2.0"]
    assert frame["customer_id"].iloc[0].startswith("=")  # the caller's frame is not changed


def test_outputs_respect_the_umask(tmp_path: Path) -> None:
    """mkstemp creates 0600 files; outputs get the mode any new file gets (a colleague can read
    them under umask 022), still written atomically."""
    import os

    old = os.umask(0o022)
    try:
        with OutputDir(tmp_path / "run") as out:
            write_text(out.path / "a.txt", "x")
            write_csv(out.path / "model" / "b.csv", pd.DataFrame({"a": [1]}))
        write_json(tmp_path / "c.json", {"a": 1})
        os.umask(0o027)
        write_text(tmp_path / "d.txt", "y")
    finally:
        os.umask(old)
    mode = lambda p: p.stat().st_mode & 0o777  # noqa: E731
    assert mode(tmp_path / "run" / "a.txt") == 0o644
    assert mode(tmp_path / "run" / "model" / "b.csv") == 0o644
    assert mode(tmp_path / "run" / "model") == 0o755
    assert mode(tmp_path / "c.json") == 0o644
    assert mode(tmp_path / "d.txt") == 0o640


def test_stale_staging_folders_of_a_killed_run_are_removed(tmp_path: Path) -> None:
    """A `kill -9` leaves `.NAME.staging-*`; the next run of the same output removes it, but
    never a live run's staging folder, another output's, or anything not named like ours."""
    import os
    import socket
    import subprocess
    import sys

    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()

    def staging(name: str, owner: str | None) -> Path:
        d = tmp_path / name
        d.mkdir()
        (d / "segments.csv").write_text("half")
        if owner is not None:
            (d / ".custseg-staging-owner").write_text(owner)
        return d

    killed = staging(".run.staging-abc123", f"{dead} {host}")
    live = staging(".run.staging-live12", f"{os.getppid()} {host}")
    other_host = staging(".run.staging-far123", f"{dead} not-{host}")
    other_out = staging(".run2.staging-abc123", f"{dead} {host}")
    not_ours = staging(".run.stagingXabc", f"{dead} {host}")
    with OutputDir(tmp_path / "run") as out:
        write_text(out.path / "a.txt", "x")
    assert not killed.exists()
    assert live.exists() and other_host.exists() and other_out.exists() and not_ours.exists()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["a.txt"]  # no owner file


@pytest.mark.parametrize("where", ["file", "under_file", "proc"])
def test_unusable_output_folder_is_a_config_error(tmp_path: Path, where: str) -> None:
    from custseg.errors import ConfigError
    from custseg.io.writers import check_output_dir

    f = tmp_path / "segments.csv"
    f.write_text("x")
    target = {"file": f, "under_file": f / "sub", "proc": Path("/proc/self/out")}[where]
    with pytest.raises(ConfigError, match="output folder"):
        check_output_dir(target)
    with pytest.raises(ConfigError, match="output folder"), OutputDir(target):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["segments.csv"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-16-be-bom"])
def test_read_utf16_and_utf32_with_a_bom(tmp_path: Path, encoding: str) -> None:
    """Excel's "Unicode text" is UTF-16 with a BOM: read it, not a column '\\x00a\\x00g\\x00e'."""
    text = "customer_id;age;city\nC1;34;Zürich\nC2;51;Łódź\n"
    path = tmp_path / "c.csv"
    if encoding == "utf-16-be-bom":
        path.write_bytes(b"\xfe\xff" + text.encode("utf-16-be"))
    else:
        path.write_bytes(text.encode(encoding))
    frame = read_table(path)
    assert list(frame.columns) == ["customer_id", "age", "city"]
    assert frame["city"].tolist() == ["Zürich", "Łódź"]
    assert sniff_encoding(path.read_bytes()) in ("utf-16", "utf-32")


def test_none_is_a_value_not_a_missing_marker(tmp_path: Path) -> None:
    """A telephone yes/none column was read as yes/missing and dropped as constant: "none" and
    "None" are answers; only true missing markers are missing."""
    from custseg.cleaning import prepare_customers
    from custseg.config import TableConfig
    from custseg.ledger import Ledger

    rows = "".join(f"C{i},{20 + i},{'yes' if i % 2 else 'none'},{'None' if i % 3 else 'NA'}\n"
                   for i in range(12))
    path = tmp_path / "c.csv"
    path.write_text("customer_id,age,telephone,other\n" + rows)
    frame = read_table(path)
    assert frame["telephone"].value_counts().to_dict() == {"none": 6, "yes": 6}
    assert frame["other"].isna().sum() == 4 and (frame["other"] == "None").sum() == 8
    table = prepare_customers(frame, TableConfig(), file="c.csv", ledger=Ledger(), as_of=None)
    assert "telephone" in table.categorical and "telephone" not in table.ignored


def test_escaped_formulas_read_back_unchanged(tmp_path: Path) -> None:
    """A run's segments.csv read back as a snapshot gets its values back."""
    from custseg.io.writers import unescape_formulas

    frame = pd.DataFrame({"customer_id": ["=1+1", "-C3", "ok", "'quoted", None],
                          "x": [1.0, -2.0, 3.0, 4.0, 5.0]})
    path = write_csv(tmp_path / "s.csv", frame)
    back = unescape_formulas(pd.read_csv(path, dtype={"customer_id": str}))
    assert back["customer_id"].tolist()[:4] == ["=1+1", "-C3", "ok", "'quoted"]
    assert back["x"].tolist() == [1.0, -2.0, 3.0, 4.0, 5.0]
