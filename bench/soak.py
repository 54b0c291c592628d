"""Soak benchmark: a deployment under mixed valid and invalid load for a long time.

A benchmark, not a test. It converts the bundled sample model, serves it with
``modelship serve`` (``python -m app.serving``, the same server every image runs) and
keeps ``--concurrency`` (64) keep-alive clients busy for ``--seconds`` (600) with a mix
of requests: valid JSON rows, valid CSV, and the mistakes and attacks a public
endpoint sees (malformed JSON, wrong types, unknown columns, null in a column the
model cannot take, deeply nested JSON, oversized bodies, wrong methods, unknown
routes, health probes, half-sent requests that stall).

It reports answers by status, transport errors, and the resident memory of the
server (the supervisor and every worker process) at start and end. Figures to reach:
no 5xx, RSS growth under 5 %. Results: bench/results/soak.json and soak.md.

    .venv/bin/python -m bench.soak [--seconds 600] [--concurrency 64] [--workers N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(proc: psutil.Process) -> int:
    """Resident memory of the server: the process and all its children (the workers)."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def requests_mix(columns: list[str], row: dict[str, Any]) -> list[tuple[str, str, bytes, dict]]:
    """(name, method+path, body, headers) of every kind of request the soak sends."""
    j = {"Content-Type": "application/json"}
    c = {"Content-Type": "text/csv"}
    first = columns[0]
    csv_head = ",".join(columns)
    csv_row = ",".join(str(row[k]) for k in columns)
    deep = b"[" * 5000 + b"]" * 5000
    return [
        ("valid-json", "POST /predict", json.dumps([row, row]).encode(), j),
        ("valid-json", "POST /invocations", json.dumps([row]).encode(), j),
        ("valid-csv", "POST /predict", f"{csv_head}\n{csv_row}\n".encode(), c),
        ("health", "GET /ping", b"", {}),
        ("health", "HEAD /ping", b"", {}),
        ("metrics", "GET /metrics", b"", {}),
        ("malformed-json", "POST /predict", b'[{"a": 1,', j),
        ("wrong-type", "POST /predict", json.dumps([{**row, first: "many"}]).encode(), j),
        ("unknown-column", "POST /predict", json.dumps([{**row, "nope": 1}]).encode(), j),
        ("null-value", "POST /predict", json.dumps([{**row, first: None}]).encode(), j),
        (
            "empty-csv-cell",
            "POST /predict",
            f"{csv_head}\n,{csv_row.split(',', 1)[1]}\n".encode(),
            c,
        ),
        ("nested-json", "POST /predict", json.dumps([[[[[[1]]]]]]).encode(), j),
        ("deep-json", "POST /predict", deep, j),
        ("deep-json", "POST /v2/models/churn/infer", b'{"inputs": ' + deep + b"}", j),
        ("too-large", "POST /predict", b"[" + b"1," * 3_500_000 + b"1]", j),
        ("wrong-method", "GET /predict", b"", {}),
        ("unknown-route", "GET /admin", b"", {}),
        ("v2-bad", "POST /v2/models/churn/infer", b'{"inputs": [{"name": "x"}]}', j),
    ]


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: Counter[str] = Counter()
        self.by_kind: dict[str, Counter[str]] = {}
        self.transport: Counter[str] = Counter()
        self.requests = 0

    def add(self, kind: str, status: str) -> None:
        with self.lock:
            self.requests += 1
            self.status[status] += 1
            self.by_kind.setdefault(kind, Counter())[status] += 1


def client(port: int, mix: list, stop: float, stats: Stats, seed: int) -> None:
    rnd = random.Random(seed)
    conn: http.client.HTTPConnection | None = None
    weights = [8 if k.startswith("valid") else 1 for k, *_ in mix]
    while time.monotonic() < stop:
        kind, route, body, headers = rnd.choices(mix, weights)[0]
        method, path = route.split(" ", 1)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            resp.read()
            stats.add(kind, str(resp.status))
            if resp.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as exc:
            # the server may close a connection after refusing a body it will not read
            # (413): a client error by design, counted apart from the statuses
            stats.transport[f"{kind}:{type(exc).__name__}"] += 1
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def stalling_client(port: int, stop: float, stats: Stats) -> None:
    """Half-sent requests, over and over: the server must time them out, not pile them up."""
    while time.monotonic() < stop:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Le")
                data = s.recv(4096)  # the server answers 408 (or closes) at its deadline
                stats.add("half-sent", data.split(b" ", 2)[1].decode() if data else "closed")
        except OSError as exc:
            stats.transport[f"half-sent:{type(exc).__name__}"] += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--stalling", type=int, default=8, help="clients sending half requests")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--sample-every", type=float, default=10.0, help="RSS sampling interval")
    ap.add_argument(
        "--warmup", type=float, default=30.0, help="seconds of full load before the first RSS"
    )
    args = ap.parse_args(argv)

    from app.model.convert import ConvertOptions, convert_model
    from app.model.samples import sample_model_path

    work = Path(tempfile.mkdtemp(prefix="modelship-soak-"))
    result = convert_model(sample_model_path(), work / "churn.onnx", ConvertOptions())
    proof = json.loads(result.proof_path.read_text())
    columns = proof["columns"]
    row = proof["rows"][0]
    workers = args.workers or max(1, min(2, os.cpu_count() or 1))
    port = free_port()
    log_path = work / "server.log"
    env = {**os.environ, "MODELSHIP_LOG_LEVEL": "warning", "MODELSHIP_HEAD_TIMEOUT_S": "5"}
    env.pop("MODELSHIP_API_KEY", None)
    env.pop("MODELSHIP_API_KEY_FILE", None)
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "app.serving", "serve", str(result.onnx_path), "--port",
             str(port), "--workers", str(workers)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/ping")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"server did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        proc = psutil.Process(server.pid)
        mix = requests_mix(columns, row)
        stats = Stats()
        # warm up at full load (allocator pools, buffers per connection) before the first
        # RSS figure: growth after that is what a long-running deployment would see
        warm_stop = time.monotonic() + args.warmup
        warm = [
            threading.Thread(target=client, args=(port, mix, warm_stop, Stats(), -1 - i))
            for i in range(args.concurrency)
        ]
        for t in warm:
            t.start()
        for t in warm:
            t.join()
        rss_start = rss_bytes(proc)
        samples = [(0.0, rss_start)]
        t0 = time.monotonic()
        stop = t0 + args.seconds
        threads = [
            threading.Thread(target=client, args=(port, mix, stop, stats, i), daemon=True)
            for i in range(args.concurrency)
        ] + [
            threading.Thread(target=stalling_client, args=(port, stop, stats), daemon=True)
            for _ in range(args.stalling)
        ]
        for t in threads:
            t.start()
        while time.monotonic() < stop:
            time.sleep(min(args.sample_every, max(0.1, stop - time.monotonic())))
            samples.append((round(time.monotonic() - t0, 1), rss_bytes(proc)))
        for t in threads:
            t.join(timeout=90)
        elapsed = time.monotonic() - t0
        rss_end = rss_bytes(proc)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/ping")
        ping_after = c.getresponse().status
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    log_text = log_path.read_text(errors="replace")
    five = {k: v for k, v in stats.status.items() if k.startswith("5")}
    growth = (rss_end - rss_start) / rss_start * 100
    doc = {
        "seconds": round(elapsed, 1),
        "concurrency": args.concurrency,
        "stalling_clients": args.stalling,
        "workers": workers,
        "requests": stats.requests,
        "requests_per_s": round(stats.requests / elapsed, 1),
        "by_status": dict(sorted(stats.status.items())),
        "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(stats.by_kind.items())},
        "transport_errors": dict(sorted(stats.transport.items())),
        "5xx": sum(five.values()),
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_max_mb": round(max(r for _, r in samples) / 2**20, 1),
        "rss_growth_percent": round(growth, 2),
        "rss_samples_mb": [(t, round(r / 2**20, 1)) for t, r in samples],
        "ping_after": ping_after,
        "server_log_lines": len(log_text.splitlines()),
        "server_log_bytes": len(log_text.encode()),
        "targets": {"5xx": 0, "rss_growth_percent_below": 5},
        "passed": not five and growth < 5 and ping_after == 200,
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "soak.md").write_text(_markdown(doc, log_text))
    print(_markdown(doc, log_text))
    return 0 if doc["passed"] else 1


def _markdown(d: dict, log_text: str) -> str:
    lines = [
        "# Soak: mixed valid and invalid requests against `modelship serve`",
        "",
        f"{d['seconds']:.0f} s at concurrency {d['concurrency']} (+{d['stalling_clients']} "
        f"clients sending half requests), {d['workers']} worker(s), bundled churn sample; "
        f"{d['machine']}, Python {d['python']}.",
        "",
        f"- requests answered: {d['requests']} ({d['requests_per_s']}/s)",
        f"- 5xx: **{d['5xx']}** (target 0)",
        f"- server RSS (all processes): {d['rss_start_mb']} MB at start, {d['rss_end_mb']} MB "
        f"at end, {d['rss_max_mb']} MB max: growth **{d['rss_growth_percent']} %** "
        "(target < 5 %)",
        f"- /ping after the soak: {d['ping_after']}",
        f"- server log: {d['server_log_lines']} lines, {d['server_log_bytes']} bytes",
        f"- verdict: {'PASSED' if d['passed'] else 'FAILED'}",
        "",
        "| kind | answers by status |",
        "|---|---|",
    ]
    for kind, counts in d["by_kind"].items():
        lines.append(f"| {kind} | {', '.join(f'{k}: {v}' for k, v in counts.items())} |")
    if d["transport_errors"]:
        lines += ["", "Transport errors (client side): " + ", ".join(
            f"{k} {v}" for k, v in d["transport_errors"].items())]  # fmt: skip
    tail = log_text.strip().splitlines()[-8:]
    if tail:
        lines += ["", "Last server log lines:", "", *[f"    {t}" for t in tail]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
