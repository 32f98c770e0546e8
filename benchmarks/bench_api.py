"""Load test of the scoring API (``custseg serve``) on loopback, at 1, 8 and 32 clients.

Starts ``custseg serve --workers W`` (default: one worker per CPU) as a subprocess on 127.0.0.1,
then a second process (an asyncio client over raw keep-alive HTTP/1.1 connections, one per
simulated client, each sending its next request as soon as the last answer arrived) runs, for
each workload and each number of concurrent clients, a short warm-up and then requests until
``--seconds`` pass (or ``--requests`` are done). Latency is measured in the client per request;
the server's CPU time per request (all its processes) is read from /proc.

Workloads, on a customers-only model fitted on ``Mall_Customers.csv``:

* ``single``:   one customer per request (the fast path, no pandas);
* ``batch100``: 100 customers per request (batch scoring: pandas + DuckDB);

and, with ``--transactions`` (on by default; ``--no-transactions`` to leave it out), on a model
fitted on synthetic customers with transactions:

* ``single+tx``: one customer and its ~25 transaction lines (batch scoring; no fast path).

    python benchmarks/bench_api.py [--seconds 2] [--clients 1,8,32] [--workers W]
                                   [--no-transactions] [--model DIR]

Prints a table (p50/p99 latency, requests/s, customers/s, errors) and one line per row
(``api ROW: ...``, read by ``run.py``), then ``api p99 single-customer: X ms (target < 20 ms)
PASS|FAIL`` for single-customer requests at 8 clients. Exit status: 0 without errors and with
that target met, 1 otherwise. About 45 s on a 2-core machine (75 s with ``--transactions``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_P99_MS = 20.0


# ------------------------------------------------------------------------------------ client


async def _one_connection(host: str, port: int, requests: list[bytes], state: dict,
                          latencies: list[float], deadline: float) -> None:
    reader = writer = None
    while True:
        i = state["next"]
        if i >= state["total"] or time.perf_counter() > deadline:
            break
        state["next"] = i + 1
        req = requests[i % len(requests)]
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                state["errors"] += 1
                state.setdefault("statuses", {}).setdefault(str(status), 0)
                state["statuses"][str(status)] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            state["errors"] += 1
            state.setdefault("exceptions", []).append(repr(exc)[:200])
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _load(host: str, port: int, bodies: list[bytes], total: int, concurrency: int,
                time_limit: float, api_key: str | None) -> dict:
    extra = f"X-API-Key: {api_key}\r\n" if api_key else ""
    requests = [(f"POST /v1/score HTTP/1.1\r\nHost: {host}:{port}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n{extra}\r\n"
                 ).encode() + b for b in bodies]
    state = {"next": 0, "total": total, "errors": 0}
    latencies: list[float] = []
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    await asyncio.gather(*[_one_connection(host, port, requests, state, latencies, deadline)
                           for _ in range(concurrency)])
    wall = time.perf_counter() - t0
    lat = sorted(latencies)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3 if lat else float("nan")

    return {"requests": len(lat), "planned": total, "errors": state["errors"],
            "statuses": state.get("statuses", {}), "exceptions": state.get("exceptions", [])[:5],
            "seconds": wall, "throughput": len(lat) / wall if wall > 0 else 0.0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": lat[-1] * 1e3 if lat else None,
            "timed_out": len(lat) + state["errors"] < total}


def client_main(spec_path: str) -> None:
    """The second process: run the phases in ``spec_path`` (reading the server's CPU time
    around each), print JSON results."""
    spec = json.loads(Path(spec_path).read_text())
    out = {}
    for phase in spec["phases"]:
        bodies = [json.dumps(b).encode() for b in spec["bodies"][phase["workload"]]]
        if phase.get("warmup"):
            asyncio.run(_load(spec["host"], spec["port"], bodies, phase["warmup"],
                              phase["concurrency"], 10.0, spec.get("api_key")))
        cpu0 = _tree_cpu_seconds(spec["server_pid"])
        r = asyncio.run(_load(spec["host"], spec["port"], bodies, phase["requests"],
                              phase["concurrency"], phase["seconds"], spec.get("api_key")))
        cpu1 = _tree_cpu_seconds(spec["server_pid"])
        r["server_cpu_ms"] = (1e3 * (cpu1 - cpu0) / r["requests"]
                              if cpu0 is not None and cpu1 is not None and r["requests"]
                              else None)
        out[phase["name"]] = r
    print(json.dumps(out))


# ------------------------------------------------------------------------------------ server


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a process and its descendants (the server and its workers)."""
    total = _cpu_seconds(pid)
    if total is None:
        return None
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        total += _cpu_seconds(child) or 0.0
        todo += children.get(child, [])
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {timeout:.0f} s")


def _mall(model_dir: Path | None, tmp: Path) -> tuple[Path, list[dict]]:
    """A customers-only model folder and customer records (as a client sends them)."""
    import pandas as pd

    data = Path(os.environ.get("CUSTSEG_DATA", REPO.parent / "shared" / "data"))
    mall = data / "Mall_Customers.csv"
    if mall.is_file():
        frame = pd.read_csv(mall)
    else:
        from custseg.synth import generate

        frame = generate(n_customers=2000, months=12, seed=0).customers
        frame = frame.drop(columns=[c for c in frame.columns if "date" in c.lower()])
    if model_dir is None:
        from custseg.outputs import write_outputs
        from custseg.pipeline import run_segmentation

        print(f"fitting a customers-only model on {mall if mall.is_file() else 'synthetic data'}"
              " ...", flush=True)
        write_outputs(run_segmentation(customers=frame), tmp / "mall")
        model_dir = tmp / "mall" / "model"
    return model_dir, json.loads(frame.to_json(orient="records"))


def _with_transactions(tmp: Path) -> tuple[Path, list[dict]]:
    """A model fitted on 1,000 synthetic customers with transactions, and single-customer
    bodies (a customer and all its lines) for 50 of them."""
    import pandas as pd

    from custseg.outputs import write_outputs
    from custseg.pipeline import run_segmentation
    from custseg.synth import generate, write

    print("fitting a model on 1,000 synthetic customers with transactions ...", flush=True)
    files = write(generate(n_customers=1000, months=12, seed=0), tmp / "synth")
    write_outputs(run_segmentation(files["customers"], files["transactions"]), tmp / "tx")
    customers = pd.read_csv(files["customers"], dtype=str)
    tx = pd.read_csv(files["transactions"], dtype=str)
    bodies = []
    for cid, lines in tx.groupby("customer_id"):
        if len(bodies) == 50:
            break
        cust = customers[customers["customer_id"] == cid]
        bodies.append({"customers": json.loads(cust.to_json(orient="records")),
                       "transactions": json.loads(lines.to_json(orient="records"))})
    return tmp / "tx" / "model", bodies


def _start(model_dir: Path, workers: int, api_key: str | None, log) -> tuple[subprocess.Popen,
                                                                             int]:
    port = _free_port()
    env = {**os.environ, "CUSTSEG_API_KEY": api_key or ""}
    server = subprocess.Popen([sys.executable, "-m", "custseg", "serve", "--model",
                               str(model_dir), "--host", "127.0.0.1", "--port", str(port),
                               "--workers", str(workers)],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", server)
    except BaseException:
        _stop(server)
        raise
    return server, port


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _run_client(spec: dict, tmp: Path, timeout: float) -> dict:
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps(spec))
    client = subprocess.run([sys.executable, __file__, "--client", str(spec_path)],
                            capture_output=True, text=True, timeout=timeout)
    if client.returncode != 0:
        raise RuntimeError(client.stderr[-3000:])
    return json.loads(client.stdout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per measured phase")
    p.add_argument("--requests", type=int, default=100_000,
                   help="requests per phase at most (the phase ends at --seconds otherwise)")
    p.add_argument("--clients", default="1,8,32", help="numbers of concurrent clients")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="custseg serve --workers (default: one per CPU)")
    p.add_argument("--batch-size", type=int, default=100, help="customers per batch request")
    p.add_argument("--transactions", action=argparse.BooleanOptionalAction, default=True,
                   help="also a model with transactions (single customer + its lines)")
    p.add_argument("--model", type=Path, default=None, help="a customers-only model/ folder "
                   "(default: fit one on Mall_Customers.csv)")
    p.add_argument("--client", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client:
        client_main(args.client)
        return 0
    clients = [int(c) for c in args.clients.split(",")]

    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    rows: list[tuple[str, int, int]] = []  # (workload, clients, customers per request)
    with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmpdir:
        tmp = Path(tmpdir)
        model_dir, records = _mall(args.model, tmp)
        n = args.batch_size
        pool = records * (n // max(len(records), 1) + 2)
        step = max(1, len(records) // 20)
        setups = [(model_dir, {
            "single": [{"customers": [r]} for r in records],
            f"batch{n}": [{"customers": pool[i:i + n]} for i in range(0, len(records), step)][:20],
        }, {"single": 1, f"batch{n}": n})]
        if args.transactions:
            tx_model, tx_bodies = _with_transactions(tmp)
            setups.append((tx_model, {"single+tx": tx_bodies}, {"single+tx": 1}))
        api_key = "bench-key"
        for model, bodies, sizes in setups:
            with open(tmp / "server.log", "a+", encoding="utf-8") as log:
                server, port = _start(model, args.workers, api_key, log)
                try:
                    phases = [{"name": f"{w} c{c}", "workload": w, "concurrency": c,
                               "requests": args.requests, "seconds": args.seconds,
                               "warmup": 200 if w == "single" else c if w == "single+tx"
                               else 2 * c}
                              for w in bodies for c in clients]
                    out = _run_client({"host": "127.0.0.1", "port": port, "api_key": api_key,
                                       "server_pid": server.pid, "bodies": bodies,
                                       "phases": phases},
                                      tmp, timeout=len(phases) * (args.seconds + 30) + 60)
                finally:
                    _stop(server)
                log.seek(0)
                server_log = log.read()
            results.update(out)
            rows += [(w, c, sizes[w]) for w in bodies for c in clients]
            if "Traceback" in server_log:
                print("server log:\n" + server_log[-3000:], file=sys.stderr)
    elapsed = time.perf_counter() - t0

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"custseg API load test on 127.0.0.1: custseg serve --workers {args.workers}, "
          f"{os.cpu_count()} CPUs, load average {load:.1f} at the end (other work included); "
          f"client: one asyncio process, keep-alive connections; {args.seconds:g} s per row; "
          f"{elapsed:.0f} s in all")
    print(f"{'workload':<11}{'clients':>8}{'requests':>9}{'errors':>7}{'req/s':>8}"
          f"{'cust/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'server CPU ms/req':>19}")
    errors = 0
    for workload, c, per in rows:
        r = results[f"{workload} c{c}"]
        cpu = r["server_cpu_ms"]
        errors += r["errors"]
        print(f"{workload:<11}{c:>8}{r['requests']:>9}{r['errors']:>7}{r['throughput']:>8.0f}"
              f"{r['throughput'] * per:>8.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
              f"{r['max_ms'] or float('nan'):>9.2f}"
              f"{'n/a' if cpu is None else f'{cpu:.2f}':>19}")
        if r["errors"]:
            print(f"  errors: statuses {r['statuses']}, exceptions {r['exceptions']}")
    for workload, c, _ in rows:
        r = results[f"{workload} c{c}"]
        print(f"api {workload} c{c}: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
              f"{r['throughput']:.0f} req/s")
    key = "single c8" if "single c8" in results else f"single c{clients[0]}"
    p99 = results[key]["p99_ms"]
    ok = p99 < TARGET_P99_MS
    print(f"api p99 single-customer: {p99:.2f} ms (target < {TARGET_P99_MS:.0f} ms) "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
