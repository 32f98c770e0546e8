"""The Spark engine (local mode) against the local engine: same k, segments, names, accounting,
features, errors; models interchangeable; drift verdicts the same.

The ``spark`` session fixture lives in ``conftest.py`` (shared with ``test_parity.py``); a missing
PySpark or Java fails these tests instead of skipping them (``make test`` installs both).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from custseg.cli import app
from custseg.config import Config

runner = CliRunner()

# the same, smaller k range for both engines keeps the Spark fits few (the rule is unchanged)
CONFIG_TOML = "[segmentation]\nk_min = 3\nk_max = 6\nbootstrap = 3\n"


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "custseg.toml"
    path.write_text(CONFIG_TOML)
    return path


@pytest.fixture(scope="module")
def runs(spark, synth_files, config_file, tmp_path_factory) -> dict[str, Path]:
    """The same synthetic data segmented by both engines through the CLI."""
    out = {}
    for engine in ("local", "spark"):
        folder = tmp_path_factory.mktemp(f"run_{engine}")
        res = runner.invoke(app, ["segment", str(synth_files["customers"]), "--transactions",
                                  str(synth_files["transactions"]), "--config", str(config_file),
                                  "--out", str(folder), "--quiet", "--engine", engine])
        assert res.exit_code == 0, res.output
        out[engine] = folder
    return out


def _segments(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "segments.csv", dtype={"customer_id": str}).set_index(
        "customer_id")


def test_same_k_segments_and_names(runs) -> None:
    loc, spk = (json.loads((runs[e] / "summary.json").read_text()) for e in ("local", "spark"))
    assert spk["k"] == loc["k"]
    a, b = _segments(runs["local"]), _segments(runs["spark"])
    assert set(a.index) == set(b.index)
    b = b.loc[a.index]
    assert adjusted_rand_score(a["segment_id"], b["segment_id"]) >= 0.95
    assert [s["name"] for s in spk["segments"]] == [s["name"] for s in loc["segments"]]
    # value-ordered ids: the same segment has the same id and name in both runs
    assert (a["segment_name"] == b["segment_name"]).mean() >= 0.97
    sizes_a = {s["name"]: s["size"] for s in loc["segments"]}
    sizes_b = {s["name"]: s["size"] for s in spk["segments"]}
    assert all(abs(sizes_a[n] - sizes_b[n]) <= 0.03 * len(a) for n in sizes_a)
    # the per-customer features in segments.csv are the same numbers
    feats = [c for c in a.columns if c not in ("segment_id", "segment_name", "distance")
             and pd.api.types.is_numeric_dtype(a[c])]
    assert np.allclose(a[feats].to_numpy(float), b[feats].to_numpy(float), rtol=1e-9,
                       equal_nan=True)
    assert any(w["category"] == "engine" for w in spk["warnings"])


def test_rows_accounted_identically(runs) -> None:
    loc, spk = (json.loads((runs[e] / "summary.json").read_text()) for e in ("local", "spark"))
    assert spk["rows"] == loc["rows"]
    assert spk["customers"] == loc["customers"]
    assert spk["rows"]["transactions"]["excluded"]  # the synthetic log has dirty rows
    ea = pd.read_csv(runs["local"] / "excluded.csv", dtype=str)
    eb = pd.read_csv(runs["spark"] / "excluded.csv", dtype=str)
    pd.testing.assert_frame_equal(ea, eb)  # the same rows, numbered the same, same reasons
    for name in ("report.html", "profiles.json", "summary.md", "model/manifest.json"):
        assert (runs["spark"] / name).is_file()


def test_spark_model_scores_identically_with_local_score(runs, synth_files, tmp_path) -> None:
    out = tmp_path / "scored.csv"
    res = runner.invoke(app, ["score", str(synth_files["customers"]), "--model",
                              str(runs["spark"] / "model"), "--transactions",
                              str(synth_files["transactions"]), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    scored = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    seg = _segments(runs["spark"])
    assert (scored.loc[seg.index, "segment_id"] == seg["segment_id"]).all()
    # and the Spark scorer gives the same assignment as the local one
    out2 = tmp_path / "scored_spark.csv"
    res = runner.invoke(app, ["score", str(synth_files["customers"]), "--model",
                              str(runs["spark"] / "model"), "--transactions",
                              str(synth_files["transactions"]), "--out", str(out2), "--quiet",
                              "--engine", "spark"])
    assert res.exit_code == 0, res.output
    scored2 = pd.read_csv(out2, dtype={"customer_id": str}).set_index("customer_id")
    assert (scored2.loc[scored.index, "segment_id"] == scored["segment_id"]).all()
    assert np.allclose(scored2.loc[scored.index, "distance"], scored["distance"], atol=1e-6)


@pytest.mark.realdata
def test_real_data_features_equal(spark, real_data) -> None:
    from custseg.pipeline import prepare_data
    from custseg.spark import prepare_data_spark

    file = real_data / "online_retail.csv.gz"
    loc = prepare_data(transactions=file)
    spk = prepare_data_spark(transactions=file, spark=spark)
    fa, fb = loc.features.frame, spk.features.frame
    assert list(fa.index) == list(fb.index)
    assert list(fa.columns) == list(fb.columns)
    for c in fa.columns:
        if pd.api.types.is_numeric_dtype(fa[c]):
            assert np.allclose(fa[c].to_numpy(float), fb[c].to_numpy(float), rtol=1e-9,
                               atol=1e-12, equal_nan=True), c
    assert spk.as_of == loc.as_of
    assert {k: v.to_dict() for k, v in spk.ledger.sources.items()} == \
        {k: v.to_dict() for k, v in loc.ledger.sources.items()}
    assert spk.ledger.excluded_customers() == loc.ledger.excluded_customers()


# ------------------------------------------------------------------------------------ errors


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


GOOD = ("InvoiceNo,CustomerID,InvoiceDate,Amount\n"
        "1,A,2024-01-01 10:00:00,10.5\n2,B,2024-01-02 10:00:00,20\n3,A,2024-01-03 10:00:00,5\n")


@pytest.mark.parametrize(("text", "needles"), [
    (GOOD + "4,B,2024-01-04 10:00:00,12..5\n5,C,2024-01-05 10:00:00,abc\n",
     ["tx.csv", "column 'Amount'", "row 4", "cannot parse as a number (2 such values)",
      "'12..5'"]),
    (GOOD + "4,B,2024-13-45 10:00:00,12\n",
     ["tx.csv", "column 'InvoiceDate'", "row 4", "cannot parse as a date", "'2024-13-45 10:00:00'"]),
    (GOOD + "4,B,2999-01-01 10:00:00,12\n",
     ["tx.csv", "column 'InvoiceDate'", "row 4", "implausible date: it matches the format",
      "outside the years 1800 to 2261", "'2999-01-01 10:00:00'"]),
    (GOOD.replace("CustomerID", "Colour"),
     ["tx.csv", "no customer id column found", "Columns seen: InvoiceNo, Colour"]),
])
def test_bad_input_same_clear_error(spark, tmp_path, text, needles) -> None:
    from custseg.errors import InputError
    from custseg.pipeline import prepare_data
    from custseg.spark import prepare_data_spark

    tx = _write(tmp_path / "tx.csv", text)
    with pytest.raises(InputError) as local_err:
        prepare_data(transactions=tx)
    with pytest.raises(InputError) as spark_err:
        prepare_data_spark(transactions=tx, spark=spark)
    assert str(spark_err.value) == str(local_err.value)
    res = runner.invoke(app, ["segment", "--transactions", str(tx), "--out",
                              str(tmp_path / "o"), "--engine", "spark"])
    assert res.exit_code == 2
    text_out = " ".join(res.output.split())
    for n in needles:
        assert n in text_out, text_out
    assert "Traceback" not in res.output


def test_bad_input_excluded_rows_counted_alike(spark, tmp_path) -> None:
    from custseg.pipeline import prepare_data
    from custseg.spark import prepare_data_spark

    tx = _write(tmp_path / "tx.csv", GOOD + "4,B,2024-01-04 10:00:00,abc\n"
                "5,,2024-01-04 10:00:00,3\n6,B,,4\n3,A,2024-01-03 10:00:00,5\n"
                "7,C,2024-01-05 10:00:00,0\n8,D,2024-01-05 10:00:00,-4\n")
    cfg = Config.model_validate({"segmentation": {"on_invalid": "exclude"}})
    loc = prepare_data(transactions=tx, config=cfg)
    spk = prepare_data_spark(transactions=tx, config=cfg, spark=spark)
    assert spk.ledger.sources["transactions"].to_dict() == \
        loc.ledger.sources["transactions"].to_dict()
    pd.testing.assert_frame_equal(spk.ledger.excluded_frame(), loc.ledger.excluded_frame())


def test_missing_file_and_bad_engine(spark, tmp_path) -> None:
    res = runner.invoke(app, ["segment", "--transactions", str(tmp_path / "nope.csv"), "--out",
                              str(tmp_path / "o"), "--engine", "spark"])
    assert res.exit_code == 2 and "file not found" in res.output
    res = runner.invoke(app, ["segment", "--transactions", str(tmp_path / "nope.csv"), "--out",
                              str(tmp_path / "o"), "--engine", "flink"])
    assert res.exit_code == 2 and "--engine must be one of local, spark" in \
        " ".join(res.output.split())


def test_missing_pyspark_or_java_is_a_clear_error(monkeypatch, tmp_path) -> None:
    tx = _write(tmp_path / "tx.csv", GOOD)
    monkeypatch.setitem(sys.modules, "pyspark", None)
    res = runner.invoke(app, ["segment", "--transactions", str(tx), "--out",
                              str(tmp_path / "o"), "--engine", "spark"])
    assert res.exit_code == 2
    assert "pip install 'custseg[spark]'" in " ".join(res.output.split())
    monkeypatch.delitem(sys.modules, "pyspark")
    # pyspark is there again (make test installs it): now hide Java
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    res = runner.invoke(app, ["segment", "--transactions", str(tx), "--out",
                              str(tmp_path / "o2"), "--engine", "spark"])
    assert res.exit_code == 2
    assert "Java" in res.output and "openjdk-17-jre-headless" in " ".join(res.output.split())


def test_cli_subprocess_exit_code_without_traceback(tmp_path) -> None:
    # a real process: bad input is reported (before Spark even starts) with exit code 2
    proc = subprocess.run([sys.executable, "-m", "custseg", "segment", "--transactions",
                           str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"),
                           "--engine", "spark", "--spark-master", "local[1]"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "missing.csv: file not found" in " ".join(proc.stderr.split())


# ------------------------------------------------------------------------------------- drift


def test_drift_same_verdict(spark, tmp_path) -> None:
    from custseg.synth import generate_snapshots, write_snapshots

    paths = write_snapshots(generate_snapshots(600, months=4, seed=3, drift="shock"), tmp_path)
    labels = sorted(k for k in paths if k != "drift")
    ref, cur = paths[labels[0]], paths[labels[-1]]
    codes, verdicts = {}, {}
    for engine in ("local", "spark"):
        out = tmp_path / f"drift_{engine}"
        res = runner.invoke(app, ["drift", "--reference", str(ref), "--current", str(cur),
                                  "--out", str(out), "--quiet", "--engine", engine])
        assert res.exit_code in (0, 3), res.output
        codes[engine] = res.exit_code
        verdicts[engine] = json.loads((out / "drift.json").read_text())
    assert codes["local"] == 3  # the planted shock is detected ...
    assert codes["spark"] == codes["local"]  # ... by both engines
    assert verdicts["spark"]["verdict"] == verdicts["local"]["verdict"]
    fa = {f["feature"]: f["psi"] for f in verdicts["local"]["features"]}
    fb = {f["feature"]: f["psi"] for f in verdicts["spark"]["features"]}
    assert fa.keys() == fb.keys()
    assert all(abs(fa[k] - fb[k]) < 1e-9 for k in fa)


# ----------------------------------------------------------------- one definition, two engines


def test_feature_sql_is_one_definition_for_both_dialects() -> None:
    from custseg.features import DUCKDB, SPARK, transaction_feature_sql

    cols = ["customer_id", "order_id", "ts", "amount", "is_return", "quantity", "discount"]
    duck, spark_sql = (transaction_feature_sql(d, cols, date(2024, 6, 30))
                       for d in (DUCKDB, SPARK))
    # the same query apart from the rendered date arithmetic
    assert "date_diff('day'" in duck and "datediff(DATE'2024-06-30'" in spark_sql
    strip = [ln for ln in duck.splitlines() if "date_diff" not in ln and "$as_of" not in ln]
    assert all(ln in spark_sql for ln in strip if "NULL" not in ln)


def test_transaction_features_from_a_duckdb_connection(synth_files) -> None:
    import duckdb

    from custseg.cleaning import prepare_transactions
    from custseg.config import FeatureConfig
    from custseg.features import transaction_features
    from custseg.io.readers import read_table
    from custseg.ledger import Ledger

    cfg = Config()
    tx = prepare_transactions(read_table(synth_files["transactions"]), cfg.transactions,
                              file="tx.csv", ledger=Ledger(), as_of=None)
    expected, groups = transaction_features(tx, FeatureConfig())
    con = duckdb.connect()
    con.register("tx_frame", tx.frame)
    con.execute("CREATE TABLE tx AS SELECT * FROM tx_frame")
    got, got_groups = transaction_features(None, FeatureConfig(), con=con, as_of=tx.as_of)
    assert got_groups == groups
    pd.testing.assert_frame_equal(got, expected)
    con.execute("SELECT 1")  # the caller's connection is left open
    con.close()


def test_implausible_future_dates_excluded_alike(spark, tmp_path) -> None:
    """Lines dated 2200 do not move the as-of date on Spark either: the same rule, the same
    ledger; and an as-of date before every line is the same clear error."""
    from custseg.errors import InputError
    from custseg.pipeline import prepare_data
    from custseg.spark import prepare_data_spark

    rows = "".join(f"{i},C{i % 7},2024-0{1 + i % 9}-1{i % 10} 10:00:00,{5 + i}\n"
                   for i in range(4, 400))
    tx = _write(tmp_path / "tx.csv", GOOD + rows + "900,A,2200-01-01 10:00:00,3\n")
    loc = prepare_data(transactions=tx)
    spk = prepare_data_spark(transactions=tx, spark=spark)
    assert spk.as_of == loc.as_of < date(2025, 1, 1)
    assert loc.ledger.sources["transactions"].excluded["implausible future date (over 366 "
                                                       "days after 99% of the dates)"] == 1
    pd.testing.assert_frame_equal(spk.ledger.excluded_frame(), loc.ledger.excluded_frame())
    cfg = Config.model_validate({"segmentation": {"as_of": "1900-01-01"}})
    with pytest.raises(InputError) as local_err:
        prepare_data(transactions=tx, config=cfg)
    with pytest.raises(InputError) as spark_err:
        prepare_data_spark(transactions=tx, config=cfg, spark=spark)
    assert str(spark_err.value) == str(local_err.value)
    assert "no transactions on or before the as-of date 1900-01-01" in str(local_err.value)


def test_identical_lines_without_order_id_kept_alike(spark, tmp_path) -> None:
    """No order id: identical lines are repeat purchases on Spark too (kept, the same note)."""
    from custseg.pipeline import prepare_data
    from custseg.spark import prepare_data_spark

    text = ("CustomerID,InvoiceDate,Amount\nA,2024-01-01 10:00:00,10.5\n"
            "A,2024-01-01 10:00:00,10.5\nB,2024-01-02 10:00:00,20\nA,2024-01-03 10:00:00,5\n")
    tx = _write(tmp_path / "tx.csv", text)
    for mode, dropped in (("auto", 0), ("drop", 1)):
        cfg = Config.model_validate({"transactions": {"duplicates": mode}})
        loc = prepare_data(transactions=tx, config=cfg)
        spk = prepare_data_spark(transactions=tx, config=cfg, spark=spark)
        assert spk.ledger.sources["transactions"].to_dict() == \
            loc.ledger.sources["transactions"].to_dict()
        assert loc.ledger.sources["transactions"].excluded.get("duplicate row", 0) == dropped
        assert [w for w in spk.ledger.warnings if w["category"] == "duplicates"] == \
            [w for w in loc.ledger.warnings if w["category"] == "duplicates"]
