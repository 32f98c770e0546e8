"""PostgreSQL as a source, against a real server started here (tests/pg_server.py).

Real data goes in with COPY (Mall_Customers.csv as a typed customers table, the first lines of
online_retail.csv.gz as a typed transactions table); segmenting from the database must give what
segmenting the files gives. The test role has a password checked by scram-sha-256 over TCP, and
no output, message or file may ever show it.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import pg_server
from custseg.cli import app
from custseg.config import Config
from custseg.errors import ConfigError, InputError
from custseg.io.db import DbSource, iter_batches, read_db, scrub_url

runner = CliRunner()
RETAIL_LINES = 4000

MALL_DDL = ('CREATE TABLE mall ("CustomerID" integer PRIMARY KEY, "Gender" text, "Age" integer, '
            '"Annual Income (k$)" integer, "Spending Score (1-100)" integer)')
RETAIL_COLUMNS = ('"InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", '
                  '"UnitPrice", "CustomerID", "Country"')
# the file's lines in the file's order (line numbers in excluded.csv are positions in the result)
RETAIL_QUERY = f"select {RETAIL_COLUMNS} from retail order by line"
RETAIL_DDL = ('CREATE TABLE retail (line bigint GENERATED ALWAYS AS IDENTITY, "InvoiceNo" text, "StockCode" text, "Description" text, '
              '"Quantity" integer, "InvoiceDate" timestamp, "UnitPrice" numeric, '
              '"CustomerID" integer, "Country" text)')


@pytest.fixture(scope="session")
def pg():
    """A server of our own for the whole session; one that can't start fails the tests."""
    try:
        server = pg_server.start()
    except Exception as exc:  # noqa: BLE001 - the reason goes into the failure
        pytest.fail(f"could not start a PostgreSQL server for the tests: {exc}")
    try:
        yield server
    finally:
        server.stop()


def _connect(pg):
    import psycopg

    return psycopg.connect(pg.url_with_password, autocommit=True)


def _copy_in(conn, table: str, data: bytes) -> None:
    with conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER true)") as cp:
        cp.write(data)


@pytest.fixture(scope="session")
def shop(pg, real_data: Path, tmp_path_factory) -> dict[str, Path]:
    """The mall customers and the first RETAIL_LINES lines of Online Retail, as files and as
    typed tables loaded with COPY."""
    files = tmp_path_factory.mktemp("shop")
    mall = (real_data / "Mall_Customers.csv").read_bytes()
    with gzip.open(real_data / "online_retail.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        retail = "".join(fh.readline() for _ in range(RETAIL_LINES + 1)).encode()
    (files / "mall.csv").write_bytes(mall)
    (files / "retail.csv").write_bytes(retail)
    with _connect(pg) as conn:
        conn.execute(MALL_DDL)
        conn.execute(RETAIL_DDL)
        _copy_in(conn, "mall", mall)
        _copy_in(conn, f"retail ({RETAIL_COLUMNS})", retail)
        conn.execute('CREATE TABLE "many lines" AS SELECT g AS n, md5(g::text) AS h '
                     "FROM generate_series(1, 5000) AS g")
        conn.execute("CREATE TABLE kinds (b boolean, ts timestamptz, d date, x numeric, "
                     "f double precision, t text)")
        conn.execute("INSERT INTO kinds VALUES (true, '2011-03-01 10:00:00+02', '2011-03-01', "
                     "2.50, 0.1, ''), (false, NULL, NULL, NULL, NULL, 'a,\"b\"\nc')")
    return {"mall": files / "mall.csv", "retail": files / "retail.csv"}


@pytest.fixture
def pgpassword(pg, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", pg.password)
    return pg.password


def _segment(args: list[str], out: Path, env: dict[str, str] | None = None):
    return runner.invoke(app, ["segment", *args, "--out", str(out), "--quiet"], env=env)


def _summary(out: Path, label: str) -> dict:
    s = json.loads((out / "summary.json").read_text())
    s.pop("timings", None)
    return json.loads(json.dumps(s).replace(json.dumps(label)[1:-1], "<source>"))


def _same_run(from_db: Path, db_label: str, from_file: Path, file_label: str) -> None:
    assert (from_db / "segments.csv").read_bytes() == (from_file / "segments.csv").read_bytes()
    assert (from_db / "excluded.csv").read_bytes() == (from_file / "excluded.csv").read_bytes()
    assert (json.loads((from_db / "profiles.json").read_text())
            == json.loads((from_file / "profiles.json").read_text()))
    a, b = _summary(from_db, db_label), _summary(from_file, file_label)
    a.pop("config", None), b.pop("config", None)
    assert a == b


def test_customers_table_segments_like_the_file(pg, shop, pgpassword, tmp_path: Path) -> None:
    db_out, file_out = tmp_path / "db", tmp_path / "file"
    r = _segment([pg.url, "--customers-table", "mall"], db_out)
    assert r.exit_code == 0, r.output
    r = _segment([str(shop["mall"])], file_out)
    assert r.exit_code == 0, r.output
    _same_run(db_out, f"{pg.url} (table mall)", file_out, str(shop["mall"]))
    segs = pd.read_csv(db_out / "segments.csv")
    assert len(segs) == 200 and segs["segment_name"].nunique() >= 2


def test_transactions_query_segments_like_the_file(pg, shop, pgpassword, tmp_path: Path) -> None:
    # typed columns (timestamp, numeric, integer with NULLs) come back as the file's text
    query = RETAIL_QUERY
    db_out, file_out = tmp_path / "db", tmp_path / "file"
    r = _segment([pg.url, "--transactions-query", query, "--k", "3"], db_out)
    assert r.exit_code == 0, r.output
    r = _segment(["--transactions", str(shop["retail"]), "--k", "3"], file_out)
    assert r.exit_code == 0, r.output
    label = DbSource(pg.url, query=query).label
    _same_run(db_out, label, file_out, str(shop["retail"]))
    summary = json.loads((db_out / "summary.json").read_text())
    assert summary["inputs"]["transactions"] == label


def test_the_database_text_is_the_files_text(pg, shop, pgpassword) -> None:
    from custseg.io.readers import read_table

    db = read_db(DbSource(pg.url, query=RETAIL_QUERY))
    f = read_table(shop["retail"])
    pd.testing.assert_frame_equal(db.reset_index(drop=True), f.reset_index(drop=True),
                                  check_dtype=False)
    assert db["CustomerID"].isna().sum() == f["CustomerID"].isna().sum() > 0


def test_values_render_the_same_whatever_the_server_settings(pg, shop, pgpassword) -> None:
    with _connect(pg) as conn:
        conn.execute(f"ALTER ROLE {pg.user} SET TimeZone = 'America/New_York'")
        conn.execute(f"ALTER ROLE {pg.user} SET DateStyle = 'SQL, DMY'")
    try:
        frame = read_db(DbSource(pg.url, table="kinds"))
    finally:
        with _connect(pg) as conn:
            conn.execute(f"ALTER ROLE {pg.user} RESET ALL")
    assert frame.iloc[0, :5].tolist() == ["true", "2011-03-01 08:00:00+00", "2011-03-01",
                                          "2.50", "0.1"]
    assert pd.isna(frame.iloc[0, 5])        # '' is missing, as in a CSV file
    assert frame.iloc[1, 0] == "false" and frame.iloc[1, 1:5].isna().all()
    assert frame.iloc[1, 5] == 'a,"b"\nc'   # quotes, commas and newlines survive the CSV stream


def test_a_table_is_read_in_its_stored_order(pg, shop, pgpassword) -> None:
    # a scan of a big table left half way leaves its position behind; a synchronized scan would
    # start there and hand the rows over rotated (excluded.csv's row numbers would then change).
    # (The stored order is the heap's, not always the load's: COPY may fill earlier pages' gaps.)
    with _connect(pg) as conn, conn.transaction():
        cur = conn.cursor(name="halfway")
        cur.execute("select * from retail")
        cur.fetchmany(RETAIL_LINES * 3 // 4)
        cur.close()
        stored = [str(r[0]) for r in conn.execute("select line from retail order by retail.ctid")]
    frame = read_db(DbSource(pg.url, table="retail"))
    assert frame["line"].tolist() == stored


def test_big_tables_stream_in_batches(pg, shop, pgpassword) -> None:
    src = DbSource(pg.url, table="many lines", batch_rows=1000)
    batches = list(iter_batches(src))
    assert [b.num_rows for b in batches] == [1000] * 5
    assert all(b.column_names == ["n", "h"] for b in batches)
    frame = read_db(DbSource(pg.url, query='select * from "many lines" where n <= 2500',
                             batch_rows=1000))
    assert frame.attrs["batches"] == 3 and len(frame) == 2500
    assert frame["n"].tolist() == [str(i) for i in range(1, 2501)]
    # the config's batch size reaches the reader
    cfg = Config.from_dict({"source": {"url": pg.url, "batch_rows": 1000},
                            "transactions": {"table": "many lines"}})
    assert cfg.db_source("transactions").batch_rows == 1000


def test_config_file_source_with_an_env_reference(pg, shop, tmp_path: Path,
                                                  monkeypatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("CUSTSEG_TEST_PGPW", pg.password)
    url = f"postgresql://{pg.user}:${{CUSTSEG_TEST_PGPW}}@{pg.host}:{pg.port}/{pg.dbname}"
    cfg = tmp_path / "custseg.toml"
    cfg.write_text(f'[source]\nurl = "{url}"\nbatch_rows = 50\n\n[customers]\ntable = "mall"\n')
    out = tmp_path / "out"
    r = runner.invoke(app, ["segment", "--config", str(cfg), "--out", str(out)])
    assert r.exit_code == 0, r.output
    _assert_no_password(pg.password, r.output, out)
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["config"]["source"]["url"] == f"postgresql://{pg.user}:***@{pg.host}:" \
                                                  f"{pg.port}/{pg.dbname}"
    assert manifest["config"]["customers"]["table"] == "mall"


def _assert_no_password(password: str, output: str, out: Path | None) -> None:
    assert password not in output
    if out is not None and out.exists():
        for p in out.rglob("*"):
            if p.is_file():
                assert password.encode() not in p.read_bytes(), p


def _assert_bad(result, out: Path, password: str, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    for n in needles:
        assert n in message, (n, message)
    assert password not in result.output
    assert not out.exists() or not any(out.iterdir())
    return message


def test_the_password_is_never_shown(pg, shop, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    pw = pg.password
    # a password written into the URL itself (the discouraged way) still goes nowhere
    out = tmp_path / "ok"
    r = _segment([pg.url_with_password, "--customers-table", "mall"], out)
    assert r.exit_code == 0, r.output
    _assert_no_password(pw, r.output, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"]["customers"] == f"{scrub_url(pg.url_with_password)} (table mall)"
    assert ":***@" in summary["inputs"]["customers"]

    # the wrong password: the server's refusal is shown, the password is not
    wrong = pg.url_with_password.replace(pw, "Wr0ng-" + pw)
    out = tmp_path / "wrong"
    m = _assert_bad(_segment([wrong, "--customers-table", "mall"], out), out, pw,
                    "password authentication failed", ":***@", "cannot connect")
    assert "Wr0ng" not in m

    # nothing listens on the port: connection refused, still no password
    refused = pg.url_with_password.replace(f":{pg.port}/", f":{pg_server.free_port()}/")
    out = tmp_path / "refused"
    _assert_bad(_segment([refused, "--customers-table", "mall"], out), out, pw,
                "cannot connect", "refused", ":***@")

    # the password from PGPASSWORD is scrubbed from a driver message too
    monkeypatch.setenv("PGPASSWORD", pw)
    out = tmp_path / "query"
    _assert_bad(_segment([pg.url, "--customers-query", f"select '{pw}'::integer"], out), out,
                pw, "query failed", "invalid input syntax", "***")

    # ... and so is one that a ${NAME} in the URL brings in
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("CUSTSEG_TEST_PGPW", pw)
    url = f"postgresql://{pg.user}:${{CUSTSEG_TEST_PGPW}}@{pg.host}:{pg.port}/{pg.dbname}"
    out = tmp_path / "env"
    _assert_bad(_segment([url, "--customers-query", f"select '{pw}'::integer"], out), out,
                pw, "query failed", "invalid input syntax", "***")


def test_bad_sources_exit_2_naming_the_source(pg, shop, pgpassword, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _assert_bad(_segment([pg.url, "--customers-table", "malls"], out), out, pgpassword,
                pg.url, "table 'malls' does not exist", "mall")
    _assert_bad(_segment([pg.url, "--customers-query", "selec * from mall"], out), out,
                pgpassword, pg.url, "selec * from mall", "syntax error")
    _assert_bad(_segment([pg.url, "--customers-query", "select * from mall where false"], out),
                out, pgpassword, pg.url, "no rows", "CustomerID")
    _assert_bad(_segment([pg.url, "--customers-table", "mall", "--customers-query", "select 1"],
                         out), out, pgpassword, "--customers-table", "--customers-query")
    _assert_bad(_segment([pg.url], out), out, pgpassword, "--customers-table")
    r = _segment(["--customers-table", "mall"], out)
    assert r.exit_code == 2 and "needs a database" in r.output
    # read-only: a query can't change the database through custseg (a DELETE … RETURNING is
    # already refused inside the subquery; a function with side effects is refused by the server)
    _assert_bad(_segment([pg.url, "--customers-query",
                          "select nextval('retail_line_seq') as n"], out), out, pgpassword,
                "read-only transaction")
    assert len(read_db(DbSource(pg.url, table="mall"))) == 200


def test_config_rules() -> None:
    with pytest.raises(ConfigError, match="needs a database"):
        Config.from_dict({"customers": {"table": "mall"}})
    with pytest.raises(ConfigError, match="path and table"):
        Config.from_dict({"source": {"url": "postgresql://a@b/c"},
                          "customers": {"table": "mall", "path": "x.csv"}})
    with pytest.raises(ConfigError, match="batch_rows"):
        Config.from_dict({"source": {"url": "postgresql://a:secret@b/c", "batch_rows": 0}})
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"source": {"url": "mysql://a:secret@b/c"}})
    assert "secret" not in str(err.value)
    cfg = Config.from_dict({"source": {"url": "postgresql://a:secret@b/c"},
                            "transactions": {"query": "select 1"}})
    assert "secret" not in json.dumps(cfg.model_dump(mode="json"))
    assert cfg.model_dump()["source"]["url"] == "postgresql://a:secret@b/c"   # kept for use
    assert cfg.db_source("customers") is None
    assert "secret" not in str(cfg.db_source("transactions"))
    assert "secret" not in repr(cfg.db_source("transactions"))


def test_scrub_url() -> None:
    assert scrub_url("postgres://u:p%40ss@h/db?password=zz&sslmode=require") == \
        "postgres://u:***@h/db?password=***&sslmode=require"
    assert scrub_url("postgresql://h/db") == "postgresql://h/db"
    assert scrub_url("postgresql://u:@h/db") == "postgresql://u:***@h/db"


def test_missing_env_reference_is_a_config_error(monkeypatch) -> None:
    monkeypatch.delenv("CUSTSEG_NO_SUCH_VAR", raising=False)
    with pytest.raises(ConfigError, match="CUSTSEG_NO_SUCH_VAR is not set"):
        read_db(DbSource("postgresql://u:${CUSTSEG_NO_SUCH_VAR}@127.0.0.1:1/db", table="t"))


def test_errors_are_input_errors(pg, shop, pgpassword) -> None:
    with pytest.raises(InputError, match="table 'nope' does not exist"):
        read_db(DbSource(pg.url, table="nope"))
    with pytest.raises(InputError, match="duplicate column name"):
        read_db(DbSource(pg.url, query="select 1 as a, 2 as a"))



def test_missing_driver_names_the_extra(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)   # as if not installed
    with pytest.raises(ConfigError, match=r'pip install "custseg\[postgres\]"'):
        read_db(DbSource("postgresql://u@127.0.0.1:1/db", table="t"))
