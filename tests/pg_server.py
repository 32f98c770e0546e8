"""A throwaway PostgreSQL server for the tests (Debian's ``postgresql`` package; ``make postgres``
installs it when ``initdb``/``pg_ctl`` are missing).

:func:`start` runs ``initdb`` into a temporary folder, starts the server on a free TCP port of
127.0.0.1 with its unix socket in the same folder, and creates a login role with a password
(``scram-sha-256`` over TCP, so the tests go through real password authentication) and a database
it owns. initdb refuses to run as root: as root the server's folder is handed to the ``postgres``
system user (the Debian package creates it) and the server runs as that user.

Nothing here skips: a server that cannot start raises with initdb's or pg_ctl's own words.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROLE = "custseg_test"
DATABASE = "shop"


def bin_dir() -> Path:
    """The folder with initdb and pg_ctl: Debian keeps them in /usr/lib/postgresql/<major>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not versions:
        raise RuntimeError("PostgreSQL is not installed (no initdb on PATH or under "
                           "/usr/lib/postgresql/*/bin): run `make postgres` or "
                           "`apt-get install postgresql`")
    return Path(versions[-1]).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    root: Path
    port: int
    password: str
    host: str = "127.0.0.1"
    user: str = ROLE
    dbname: str = DATABASE

    @property
    def url(self) -> str:
        """The connection URL without the password (it comes from PGPASSWORD)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def url_with_password(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        _run(self, [str(bin_dir() / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                    "-w", "stop"], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _run(server: Server | None, cmd: list[str], check: bool = True,
         input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, input=input,
                          timeout=120)
    if check and proc.returncode != 0:
        log = ""
        if server is not None and (server.root / "server.log").exists():
            log = (server.root / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): "
                           f"{proc.stderr.strip() or proc.stdout.strip()}\n{log}")
    return proc


def start(password: str = "s3cr3t-Pw-7f1c") -> Server:
    """Start a fresh cluster; the caller stops it with :meth:`Server.stop`."""
    bins = bin_dir()
    # as root the server runs as `postgres`, which must reach the folder: not under a private
    # $TMPDIR such as /root/tmp
    root = Path(tempfile.mkdtemp(prefix="custseg-pg-",
                                 dir="/tmp" if os.geteuid() == 0 and Path("/tmp").is_dir()
                                 else None))
    server = Server(root=root, port=free_port(), password=password)
    server.socket_dir.mkdir()
    superpw = root / "superuser.pw"
    superpw.write_text("postgres-" + password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        for p in (server.socket_dir, superpw):
            shutil.chown(p, "postgres", "postgres")
    superpw.chmod(0o600)
    try:
        _init_and_start(server, bins, superpw, password)
    except BaseException:
        server.stop()   # (a half-started server too) and its folder
        raise
    return server


def _init_and_start(server: Server, bins: Path, superpw: Path, password: str) -> None:
    root = server.root
    _run(server, [str(bins / "initdb"), "-D", str(root / "data"), "-U", "postgres",
                  "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={superpw}",
                  "-E", "UTF8", "--locale=C", "--no-sync"])
    _run(server, [str(bins / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"),
                  "-w", "-t", "60", "-o",
                  f"-p {server.port} -k {server.socket_dir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c full_page_writes=off -c synchronous_commit=off "
                  # tiny buffers: a table of a few hundred kB already counts as "big", so the
                  # synchronized scans that reorder a big table's rows happen in the tests too
                  "-c shared_buffers=128kB", "start"])
    psql(server, f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}';"
                 f"CREATE DATABASE {DATABASE} OWNER {ROLE};")


def psql(server: Server, sql: str, dbname: str = "postgres") -> str:
    """Run SQL as the superuser over the unix socket (trusted: no password needed there)."""
    psql_bin = bin_dir() / "psql"
    exe = str(psql_bin) if psql_bin.exists() else (shutil.which("psql") or "psql")
    proc = _run(server, [exe, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(server.socket_dir),
                         "-p", str(server.port), "-U", "postgres", "-d", dbname, "-At"],
                input=sql)
    return proc.stdout
