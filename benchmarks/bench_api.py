"""Bounded load test of the scoring API (``custseg serve``) on loopback.

Starts the server as a subprocess on 127.0.0.1, then a second process sends single-customer
``POST /v1/score`` requests (default 10,000 at concurrency 16; then up to 1,000 one at a time,
for the latency without queueing) and then 100-customer batches (default 1,000 requests), all
over keep-alive connections, and reports throughput, p50/p99 latency (measured in the client,
per request) and the number of errors. Each phase stops at its request count or its time
limit, whichever comes first; the server's CPU time per request is read from /proc.

    python benchmarks/bench_api.py [--requests 10000] [--concurrency 16]
                                   [--batch-requests 1000] [--batch-size 100] [--model DIR]

Without ``--model`` it fits a customers-only model on ``Mall_Customers.csv`` (from
``$CUSTSEG_DATA`` or ``../shared/data``), or on synthetic customers when that file is absent.
Exit status: 0 when there were no errors and the single-customer p99 met the target, 1 otherwise.
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
    """The second process: run the phases described in ``spec_path``, print JSON results."""
    spec = json.loads(Path(spec_path).read_text())
    out = {}
    for phase in spec["phases"]:
        bodies = [json.dumps(b).encode() for b in phase["bodies"]]
        if phase.get("warmup"):
            asyncio.run(_load(spec["host"], spec["port"], bodies, phase["warmup"],
                              phase["concurrency"], 30.0, spec.get("api_key")))
        out[phase["name"]] = asyncio.run(_load(spec["host"], spec["port"], bodies,
                                               phase["requests"], phase["concurrency"],
                                               phase["time_limit"], spec.get("api_key")))
    print(json.dumps(out))


# ------------------------------------------------------------------------------------ server


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
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


def _records(model_dir: Path | None, tmp: Path) -> tuple[Path, list[dict]]:
    """A model folder and customer records (as a client would send them) to score."""
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
        write_outputs(run_segmentation(customers=frame), tmp / "run")
        model_dir = tmp / "run" / "model"
    records = json.loads(frame.to_json(orient="records"))
    return model_dir, records


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=10_000, help="single-customer requests")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--batch-requests", type=int, default=1_000, help="batch requests")
    p.add_argument("--batch-size", type=int, default=100, help="customers per batch request")
    p.add_argument("--time-limit", type=float, default=120.0, help="seconds per phase at most")
    p.add_argument("--model", type=Path, default=None, help="a model/ folder (default: fit one)")
    p.add_argument("--client", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client:
        client_main(args.client)
        return 0

    with tempfile.TemporaryDirectory(prefix="custseg-bench-") as tmpdir:
        tmp = Path(tmpdir)
        model_dir, records = _records(args.model, tmp)
        port = _free_port()
        api_key = "bench-key"
        env = {**os.environ, "CUSTSEG_API_KEY": api_key}
        log = open(tmp / "server.log", "w+", encoding="utf-8")  # noqa: SIM115
        server = subprocess.Popen([sys.executable, "-m", "custseg", "serve", "--model",
                                   str(model_dir), "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        results: dict[str, dict] = {}
        t0 = time.perf_counter()
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", server)
            n = args.batch_size
            singles = [{"customers": [r]} for r in records]
            pool = records * (n // max(len(records), 1) + 2)
            step = max(1, len(records) // 20)
            batches = [{"customers": pool[i:i + n]} for i in range(0, len(records), step)][:20]
            phases = [
                {"name": "single", "bodies": singles, "requests": args.requests,
                 "concurrency": args.concurrency, "warmup": min(500, args.requests)},
                {"name": "single-c1", "bodies": singles, "requests": min(1000, args.requests),
                 "concurrency": 1, "warmup": 0},
                {"name": f"batch{n}", "bodies": batches, "requests": args.batch_requests,
                 "concurrency": args.concurrency, "warmup": min(20, args.batch_requests)},
            ]
            for phase in phases:
                spec_path = tmp / "spec.json"
                spec_path.write_text(json.dumps({
                    "host": "127.0.0.1", "port": port, "api_key": api_key,
                    "phases": [{**phase, "time_limit": args.time_limit}]}))
                cpu0 = _cpu_seconds(server.pid)
                client = subprocess.run([sys.executable, __file__, "--client", str(spec_path)],
                                        capture_output=True, text=True,
                                        timeout=2 * args.time_limit + 120)
                cpu1 = _cpu_seconds(server.pid)
                if client.returncode != 0:
                    print(client.stderr, file=sys.stderr)
                    return 1
                r = json.loads(client.stdout)[phase["name"]]
                total = r["requests"] + (phase["warmup"] or 0)
                r["server_cpu_ms"] = (1e3 * (cpu1 - cpu0) / total
                                      if cpu0 is not None and cpu1 is not None and total else None)
                results[phase["name"]] = r
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.seek(0)
            server_log = log.read()
            log.close()
        elapsed = time.perf_counter() - t0
        if "Traceback" in server_log:
            print("server log:\n" + server_log[-3000:], file=sys.stderr)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"custseg API load test on 127.0.0.1: {os.cpu_count()} CPUs, load average {load:.1f} "
          f"at the end; client in a second process; {elapsed:.1f} s")
    print(f"{'phase':<11}{'conc':>5}{'requests':>9}{'errors':>7}{'req/s':>8}{'cust/s':>8}"
          f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'server CPU ms/req':>19}")
    for phase in phases:
        name = phase["name"]
        if name not in results:
            continue
        r = results[name]
        per = args.batch_size if name.startswith("batch") else 1
        cpu = r["server_cpu_ms"]
        print(f"{name:<11}{phase['concurrency']:>5}{r['requests']:>9}{r['errors']:>7}"
              f"{r['throughput']:>8.0f}{r['throughput'] * per:>8.0f}{r['p50_ms']:>8.2f}"
              f"{r['p99_ms']:>8.2f}{r['max_ms'] or float('nan'):>8.2f}"
              f"{'n/a' if cpu is None else f'{cpu:.2f}':>19}"
              + ("  (stopped at the time limit)" if r["timed_out"] else ""))
        if r["errors"]:
            print(f"  errors: statuses {r['statuses']}, exceptions {r['exceptions']}")
    single = results["single"]
    ok = single["p99_ms"] < TARGET_P99_MS
    print(f"api p99 single-customer: {single['p99_ms']:.2f} ms (target < {TARGET_P99_MS:.0f} ms) "
          f"{'PASS' if ok else 'FAIL'}")
    errors = sum(r["errors"] for r in results.values())
    return 0 if ok and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
