"""The command line: bad input exits 2 with one clear line and leaves nothing behind;
same input and seed give byte-identical outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from custseg.cli import app

runner = CliRunner()

TX_HEADER = "order_id,customer_id,timestamp,amount,category,channel\n"


def _tx_rows(n_customers: int = 12) -> list[str]:
    rows = []
    for c in range(n_customers):
        for j in range(3):
            rows.append(f"O{c}-{j},C{c},2024-0{1 + j}-1{c % 10} 10:00:00,{10 + 7 * c + j},"
                        f"{'Books' if c % 2 else 'Toys'},{'web' if c % 3 else 'store'}\n")
    return rows


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _customers(tmp_path: Path, rows: list[str], header: str = "customer_id,age,income\n") -> Path:
    return _write(tmp_path / "customers.csv", header + "".join(rows))


def _run(args: list[str]):
    return runner.invoke(app, args)


def _assert_bad(result, out: Path, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    message = result.stderr.strip()
    assert "Traceback" not in result.output
    assert len(message.splitlines()) == 1 and message.startswith("error:"), message
    for n in needles:
        assert n in message, (n, message)
    assert not out.exists() or not any(out.iterdir())
    assert not any(p.name.startswith(f".{out.name}.staging") for p in out.parent.iterdir())


def test_empty_file(tmp_path: Path) -> None:
    f = _write(tmp_path / "tx.csv", "")
    out = tmp_path / "out"
    _assert_bad(_run(["segment", "--transactions", str(f), "--out", str(out)]), out,
                "tx.csv", "empty")


def test_header_only(tmp_path: Path) -> None:
    f = _write(tmp_path / "tx.csv", TX_HEADER)
    out = tmp_path / "out"
    _assert_bad(_run(["segment", "--transactions", str(f), "--out", str(out)]), out,
                "tx.csv", "no data rows")


def test_no_id_column(tmp_path: Path) -> None:
    # (a customers table without an id is numbered by row; a transactions log needs one)
    f = _write(tmp_path / "tx.csv", "".join(f"2024-01-{i + 1:02d},{10 + i}\n" for i in range(9)))
    f.write_text("when,amount\n" + f.read_text())
    out = tmp_path / "out"
    _assert_bad(_run(["segment", "--transactions", str(f), "--out", str(out)]), out,
                "tx.csv", "no customer id column", "when, amount")


def test_all_nan_column(tmp_path: Path) -> None:
    f = _customers(tmp_path, [f"C{i},{20 + i},\n" for i in range(10)])
    out = tmp_path / "out"
    _assert_bad(_run(["segment", str(f), "--out", str(out)]), out,
                "customers.csv", "'income'", "no values")


def test_non_numeric_amount(tmp_path: Path) -> None:
    rows = _tx_rows()
    rows[2] = rows[2].replace(",12,", ",twelve,")
    f = _write(tmp_path / "tx.csv", TX_HEADER + "".join(rows))
    out = tmp_path / "out"
    _assert_bad(_run(["segment", "--transactions", str(f), "--out", str(out)]), out,
                "tx.csv", "column 'amount'", "row 3", "'twelve'")


def test_duplicate_ids(tmp_path: Path) -> None:
    rows = [f"C{i},{20 + i},{1000 * i}\n" for i in range(10)] + ["C3,50,9999\n"]
    f = _customers(tmp_path, rows)
    out = tmp_path / "out"
    _assert_bad(_run(["segment", str(f), "--out", str(out)]), out,
                "customers.csv", "duplicate customer id 'C3'", "row 11")


def test_unparseable_dates(tmp_path: Path) -> None:
    rows = _tx_rows()
    rows[4] = rows[4].replace("2024-02-11 10:00:00", "31/02/2011")
    f = _write(tmp_path / "tx.csv", TX_HEADER + "".join(rows))
    out = tmp_path / "out"
    _assert_bad(_run(["segment", "--transactions", str(f), "--out", str(out)]), out,
                "tx.csv", "column 'timestamp'", "row 5", "'31/02/2011'", "date")


def test_single_customer(tmp_path: Path) -> None:
    f = _write(tmp_path / "tx.csv", TX_HEADER + "".join(_tx_rows(1)))
    out = tmp_path / "out"
    _assert_bad(_run(["segment", "--transactions", str(f), "--out", str(out)]), out,
                "only 1 customer")


def test_fewer_customers_than_k(tmp_path: Path) -> None:
    f = _write(tmp_path / "tx.csv", TX_HEADER + "".join(_tx_rows(4)))
    out = tmp_path / "out"
    _assert_bad(_run(["segment", "--transactions", str(f), "--k", "5", "--out", str(out)]), out,
                "fewer than k=5")


def test_unreadable_path(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _assert_bad(_run(["segment", "--transactions", str(tmp_path / "nope.csv"), "--out", str(out)]),
                out, "nope.csv", "file not found")


def test_bad_config_key(tmp_path: Path) -> None:
    f = _write(tmp_path / "tx.csv", TX_HEADER + "".join(_tx_rows()))
    cfg = _write(tmp_path / "c.toml", "[segmentation]\nk_maxx = 4\n")
    out = tmp_path / "out"
    _assert_bad(_run(["segment", "--transactions", str(f), "-c", str(cfg), "--out", str(out)]),
                out, "c.toml", "k_maxx")


def test_bad_input_in_a_real_process(tmp_path: Path) -> None:
    """A real subprocess: exit code 2, one line on stderr, no traceback, nothing written."""
    f = _write(tmp_path / "tx.csv", "customer_id,timestamp,amount\nC1,2024-01-01,abc\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "custseg", "segment", "--transactions", str(f),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "column 'amount', row 1" in lines[0] and "'abc'" in lines[0]
    assert not out.exists()


def test_same_seed_byte_identical(tmp_path: Path, synth_files) -> None:
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        r = _run(["segment", str(synth_files["customers"]), "--transactions",
                  str(synth_files["transactions"]), "--seed", "7", "--out", str(out), "-q"])
        assert r.exit_code == 0, r.output
        outs.append(out)
    a, b = outs
    for f in ("segments.csv", "excluded.csv", "profiles.json", "model/manifest.json",
              "model/centroids.npy"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    sa, sb = (json.loads((o / "summary.json").read_text()) for o in outs)
    sa.pop("timings"), sb.pop("timings")
    assert sa == sb


def test_segment_outputs_contract(tmp_path: Path, synth_files) -> None:
    out = tmp_path / "run"
    r = _run(["segment", str(synth_files["customers"]), "--transactions",
              str(synth_files["transactions"]), "--out", str(out)])
    assert r.exit_code == 0, r.output
    for f in ("segments.csv", "excluded.csv", "profiles.json", "summary.json", "report.html",
              "model/manifest.json", "model/centroids.npy"):
        assert (out / f).is_file(), f
    summary = json.loads((out / "summary.json").read_text())
    for key in ("k", "k_selection", "rows", "segments", "timings", "versions"):
        assert key in summary
    assert summary["k_selection"]["rule"] and summary["k_selection"]["reason"]
    # the console shows the segment table
    for s in summary["segments"]:
        assert s["name"] in r.stdout
    assert not list(out.rglob("*.pkl")) and not list(out.rglob(".*.tmp"))


def test_k_option_overrides(tmp_path: Path, synth_files) -> None:
    out = tmp_path / "k3"
    r = _run(["segment", str(synth_files["customers"]), "--transactions",
              str(synth_files["transactions"]), "--k", "3", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["k"] == 3 and summary["k_selection"]["overridden"] is True
    assert len(summary["segments"]) == 3


@pytest.mark.parametrize("bad", ["one", "1"])
def test_bad_k_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    f = _write(tmp_path / "tx.csv", TX_HEADER + "".join(_tx_rows()))
    r = _run(["segment", "--transactions", str(f), "--k", bad, "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert not (tmp_path / "o").exists()


def test_demo_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "custseg", "demo", "--out", str(out), "-q"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    names = {s["name"] for s in summary["segments"]}
    assert {"Young Professionals", "Family-Oriented", "Budget-Conscious", "Loyalists"} <= names
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "data" / "truth.csv").is_file()


def test_previous_model_keeps_segment_ids(tmp_path: Path, synth_files) -> None:
    first = tmp_path / "first"
    args = ["segment", str(synth_files["customers"]), "--transactions",
            str(synth_files["transactions"]), "-q"]
    assert _run([*args, "--out", str(first)]).exit_code == 0
    again = tmp_path / "again"
    r = _run([*args, "--seed", "11", "--previous-model", str(first / "model"), "--out",
              str(again)])
    assert r.exit_code == 0, r.output
    a = json.loads((first / "summary.json").read_text())["segments"]
    b = json.loads((again / "summary.json").read_text())["segments"]
    assert {s["segment_id"]: s["name"] for s in a} == {s["segment_id"]: s["name"] for s in b}


@pytest.mark.parametrize("where", ["file", "proc"])
def test_unusable_out_exits_2_before_the_run(tmp_path: Path, where: str) -> None:
    """--out that is an existing file or a path under /proc: exit 2 and one line, not exit 1
    "internal error" after the whole run."""
    cust = _customers(tmp_path, [f"C{i},{20 + i},{1000 * i}\n" for i in range(30)])
    out = cust if where == "file" else Path("/proc/self/custseg-out")
    result = _run(["segment", str(cust), "--out", str(out), "--k", "2"])
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "output folder" in message, message
    assert "internal error" not in message


def _tx_file(tmp_path: Path, edit=None) -> Path:
    rows = _tx_rows()
    if edit:
        rows = edit(rows)
    return _write(tmp_path / "tx.csv", TX_HEADER + "".join(rows))


@pytest.mark.parametrize(("edit", "extra", "needles"), [
    # a column that mixes date formats
    (lambda r: [r[0], r[1], r[2], r[3], r[4].replace("2024-02-11 10:00:00", "11 Feb 2024 10:00"),
                *r[5:]], [], ["column 'timestamp'", "row 5", "mixes date formats",
                              "'11 Feb 2024 10:00'"]),
    # a date the format reads but no table can hold
    (lambda r: [r[0].replace("2024-01-10", "2999-01-10"), *r[1:]], [],
     ["column 'timestamp'", "row 1", "implausible date: it matches the format"]),
    # an as-of date before every line
    (None, ["--as-of", "1900-01-01"],
     ["no transactions on or before the as-of date 1900-01-01", "2024-01-10"]),
    # every line excluded: an empty table after cleaning, with the reasons
    (lambda r: [",".join([*x.split(",")[:3], "0", *x.split(",")[4:]]) for x in r], [],
     ["no customer is left", "zero or missing amount"]),
])
def test_bad_transactions_exit_2_with_one_clear_line(tmp_path: Path, edit, extra,
                                                     needles) -> None:
    f = _tx_file(tmp_path, edit)
    out = tmp_path / "out"
    _assert_bad(_run(["segment", "--transactions", str(f), "--out", str(out), *extra]), out,
                "tx.csv", *needles)


def test_awkward_but_valid_input_segments(tmp_path: Path) -> None:
    """UTF-16 customers (Excel's "Unicode text", semicolons), ids written 7.0 in the log and 7
    in the customers table (the same customer), timestamps ending in Z: all read, exit 0."""
    cust = "customer_id;age;income;phone\n" + "".join(
        f"{i};{20 + 3 * i};{1000 * (i % 5 + 1)};{'yes' if i % 2 else 'none'}\n"
        for i in range(12))
    (tmp_path / "c.csv").write_bytes(cust.encode("utf-16"))
    rows = [r.replace(f",C{c},", f",{c}.0,").replace(" 10:00:00", "T10:00:00Z")
            for c in range(12) for r in _tx_rows() if f",C{c}," in r]
    tx = _write(tmp_path / "tx.csv", TX_HEADER + "".join(rows))
    out = tmp_path / "out"
    result = _run(["segment", str(tmp_path / "c.csv"), "--transactions", str(tx), "--out",
                   str(out), "--k", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"]["customers"]["used"] == 12
    assert summary["rows"]["transactions"]["excluded"] == {}
