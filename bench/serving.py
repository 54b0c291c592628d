"""Serving benchmark: ModelShip's runtime vs in-process session.run vs plain FastAPI.

A benchmark, not a test. It builds two reference models (a scikit-learn pipeline with
a 100-tree random forest on 20 float features, and a 256x256 MLP classifier), then for
each model measures with a real load generator (Debian's ``wrk``, POSTing one row per
request) at concurrency 1, 8 and 64:

* ``modelship``: ``python -m app.serving`` (micro-batching on);
* ``fastapi``: a plain FastAPI + uvicorn endpoint calling ``session.run`` per request;
* ``in-process``: ``session.run`` on one row in a loop, no HTTP (the ceiling).

Both servers get the same worker processes and onnxruntime threads. Results go to
bench/results/serving.json and bench/results/serving.md.

    .venv/bin/python -m bench.serving [--duration 5] [--workers N]

``--capture`` instead measures what captured requests cost (issue 24): two ModelShip
servers on the same model, one with capture off and one with ``MODELSHIP_CAPTURE_RATE
= 0.1``, measured in turns in the same run (so both see the same machine load); the
ratio of their requests/s goes to bench/results/serving-capture.{json,md}.

    .venv/bin/python -m bench.serving --capture [--duration 3] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CONCURRENCY = (1, 8, 64)

FASTAPI_APP = textwrap.dedent(
    '''
    """Plain FastAPI endpoint: one session.run per request (the baseline)."""
    import os

    import numpy as np
    import onnxruntime as ort
    from fastapi import FastAPI

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ["BENCH_THREADS"])
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(os.environ["BENCH_MODEL"], opts,
                                providers=["CPUExecutionProvider"])
    app = FastAPI()


    @app.get("/ping")
    def ping():
        return {"status": "ready"}


    @app.post("/predict")
    def predict(rows: list[list[float]]):
        label, proba = sess.run(None, {"X": np.asarray(rows, dtype=np.float32)})
        return {"predictions": label.tolist(), "probabilities": proba.tolist()}


    if __name__ == "__main__":
        # uvicorn's own multi-worker mode, given a listening socket created with
        # IPPROTO_TCP: `uvicorn --workers N` binds one without it, so asyncio never sets
        # TCP_NODELAY and every response waits ~40 ms for a delayed ACK. The baseline
        # should not lose on that artefact.
        import socket
        import sys

        import uvicorn
        from uvicorn.supervisors import Multiprocess

        port, workers = int(sys.argv[1]), int(sys.argv[2])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.set_inheritable(True)
        config = uvicorn.Config("plain_fastapi:app", workers=workers, http="httptools",
                                log_level="warning", access_log=False)
        if workers == 1:
            uvicorn.Server(config).run(sockets=[sock])
        else:
            Multiprocess(config, sockets=[sock]).run()
    '''
)


# ---- models ---------------------------------------------------------------------------------
def build_models(out: Path) -> dict[str, Path]:
    """The two reference models, each with the signature ``modelship convert`` writes."""
    import warnings

    from skl2onnx import to_onnx
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from app.serving.signature import ColumnSpec, Signature, TensorSpec

    rng = np.random.default_rng(0)
    paths = {}
    specs = {
        "rf100": (
            20,
            make_pipeline(StandardScaler(), RandomForestClassifier(100, random_state=0)),
        ),
        "mlp256": (
            20,
            make_pipeline(
                StandardScaler(),
                MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=30, random_state=0),
            ),
        ),
    }
    for name, (n_features, model) in specs.items():
        x = rng.normal(size=(2000, n_features)).astype(np.float32)
        y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(x, y)
        onx = to_onnx(model, x[:1], options={"zipmap": False}, target_opset=17)
        path = out / f"{name}.onnx"
        path.write_bytes(onx.SerializeToString())
        Signature(
            inputs=[TensorSpec("X", "float32", [None, n_features])],
            outputs=[
                TensorSpec("label", "int64", [None]),
                TensorSpec("probabilities", "float32", [None, 2]),
            ],
            columns=[ColumnSpec(f"f{i}", "float32", "X", i) for i in range(n_features)],
            task="classification",
            label_output="label",
            probability_output="probabilities",
            class_labels=[0, 1],
            framework="sklearn",
            model_name=name,
        ).save(out / f"{name}.signature.json")
        paths[name] = path
    return paths


# ---- measurement --------------------------------------------------------------------------------
def in_process(path: Path, threads: int, seconds: float) -> dict[str, float]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    n_features = sess.get_inputs()[0].shape[1]
    row = np.random.default_rng(1).normal(size=(1, n_features)).astype(np.float32)
    batch = np.repeat(row, 64, axis=0)
    for _ in range(50):
        sess.run(None, {"X": row})
    lat = []
    end = time.perf_counter() + seconds / 2
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        sess.run(None, {"X": row})
        lat.append(time.perf_counter() - t0)
    n64, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 2:
        sess.run(None, {"X": batch})
        n64 += 1
    elapsed64 = time.perf_counter() - t0
    lat_ms = np.array(lat) * 1000
    return {
        "rows_per_s_1": round(len(lat) / (sum(lat) or 1), 1),
        "p50_ms_1": round(float(np.percentile(lat_ms, 50)), 4),
        "p99_ms_1": round(float(np.percentile(lat_ms, 99)), 4),
        "rows_per_s_64": round(n64 * 64 / elapsed64, 1),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server not ready in time")


def start_server(
    kind: str,
    model: Path,
    workers: int,
    threads: int,
    tmp: Path,
    extra_env: dict[str, str] | None = None,
):
    port = free_port()
    env = {**os.environ, "MODELSHIP_THREADS": str(threads), "MODELSHIP_LOG_LEVEL": "warning"}
    env.update(extra_env or {})
    if kind == "modelship":
        cmd = [
            sys.executable,
            "-m",
            "app.serving",
            "serve",
            str(model),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
    else:
        (tmp / "plain_fastapi.py").write_text(FASTAPI_APP)
        env.update(BENCH_MODEL=str(model), BENCH_THREADS=str(threads))
        cmd = [sys.executable, "plain_fastapi.py", str(port), str(workers)]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO if kind == "modelship" else tmp,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
    except Exception:
        stop_server(proc)
        raise
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNIT[m.group(2)]


def run_wrk(url: str, body: str, concurrency: int, seconds: float, tmp: Path) -> dict[str, Any]:
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    threads = min(concurrency, 2)
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(script),
        url + "/predict",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "requests": int(total.group(1)) if total else 0,
        "requests_per_s": rps,
        "p50_ms": round(_ms(dist["50"]), 3),
        "p99_ms": round(_ms(dist["99"]), 3),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def check_answer(url: str, body: str) -> None:
    req = urllib.request.Request(
        url + "/predict", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        out = json.loads(r.read())
    assert len(out["predictions"]) == 1, out


def main(argv: list[str] | None = None) -> int:
    from app.serving.config import available_cpus

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=None, help="worker processes, both sides")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--capture",
        action="store_true",
        help="measure capture off vs capture_rate 0.1 instead (serving-capture.*)",
    )
    parser.add_argument("--rounds", type=int, default=7, help="--capture: turns per setting")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    cpus = available_cpus()
    workers = args.workers or cpus
    threads = max(1, cpus // workers)
    if args.capture:
        return capture_main(args, cpus, workers, threads)
    results: dict[str, Any] = {
        "machine": {
            "cpus": cpus,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "load generator (wrk) runs on the same CPUs as the servers",
            "load_average_at_start": round(os.getloadavg()[0], 2),
        },
        "workers": workers,
        "threads_per_worker": threads,
        "duration_s": args.duration,
        "models": {},
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelship-bench-") as tmpdir:
        tmp = Path(tmpdir)
        models = build_models(tmp)
        for name, path in models.items():
            print(f"== {name}", file=sys.stderr, flush=True)
            entry: dict[str, Any] = {"in_process": in_process(path, threads, args.duration)}
            row = np.random.default_rng(2).normal(size=(1, 20)).round(4).tolist()
            body = json.dumps(row)
            for kind in ("modelship", "fastapi"):
                proc, url = start_server(kind, path, workers, threads, tmp)
                try:
                    check_answer(url, body)
                    run_wrk(url, body, 8, 1, tmp)  # warm-up
                    entry[kind] = {}
                    for c in CONCURRENCY:
                        r = run_wrk(url, body, c, args.duration, tmp)
                        entry[kind][f"c{c}"] = r
                        print(
                            f"   {kind:9s} c={c:<3d} {r['requests_per_s']:9.0f} req/s  "
                            f"p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms",
                            file=sys.stderr,
                            flush=True,
                        )
                finally:
                    stop_server(proc)
            ms, fa = entry["modelship"]["c64"], entry["fastapi"]["c64"]
            entry["verdict"] = {
                "c64_speedup": round(ms["requests_per_s"] / fa["requests_per_s"], 2),
                "c64_p99_not_worse": ms["p99_ms"] <= fa["p99_ms"],
                "c1_p50_under_0_5ms": entry["modelship"]["c1"]["p50_ms"] < 0.5,
            }
            results["models"][name] = entry
    results["total_s"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "serving.md").write_text(render_md(results))
    print((args.out / "serving.md").read_text())
    return 0


CAPTURE_RATE = 0.1
CAPTURE_CONCURRENCY = (8, 64)


def _cpu_seconds(proc: subprocess.Popen) -> float:
    """User + system CPU time of the server and its worker processes so far."""
    import psutil

    top = psutil.Process(proc.pid)
    total = 0.0
    for p in [top, *top.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def _capture_records(url: str) -> int:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        int(float(v))
        for v in re.findall(r"^modelship_capture_records_total\{.*\} (\S+)$", text, re.M)
    )


def capture_main(args: argparse.Namespace, cpus: int, workers: int, threads: int) -> int:
    """Capture off vs capture at 10 %: the same model, both servers up, runs in turns."""
    results: dict[str, Any] = {
        "machine": {
            "cpus": cpus,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "load generator (wrk) runs on the same CPUs as the servers",
            "load_average_at_start": round(os.getloadavg()[0], 2),
        },
        "workers": workers,
        "threads_per_worker": threads,
        "duration_s": args.duration,
        "rounds": args.rounds,
        "capture_rate": CAPTURE_RATE,
        "models": {},
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelship-bench-") as tmpdir:
        tmp = Path(tmpdir)
        models = build_models(tmp)
        for name, path in models.items():
            print(f"== {name} (capture off vs {CAPTURE_RATE:g})", file=sys.stderr, flush=True)
            row = np.random.default_rng(2).normal(size=(1, 20)).round(4).tolist()
            body = json.dumps(row)
            folder = tmp / f"capture-{name}"
            on_env = {
                "MODELSHIP_CAPTURE_RATE": str(CAPTURE_RATE),
                "MODELSHIP_CAPTURE_MAX_MB": "50",
                "MODELSHIP_CAPTURE_DIR": str(folder),
            }
            off_proc, off_url = start_server("modelship", path, workers, threads, tmp)
            on_proc, on_url = start_server("modelship", path, workers, threads, tmp, on_env)
            procs = {"off": off_proc, "on": on_proc}
            entry: dict[str, Any] = {}
            try:
                for url in (off_url, on_url):
                    check_answer(url, body)
                    run_wrk(url, body, 8, 1, tmp)  # warm-up
                for c in CAPTURE_CONCURRENCY:
                    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
                    for i in range(args.rounds):
                        # alternate which goes first, so a drift in load hits both alike
                        order = [("off", off_url), ("on", on_url)]
                        for label, url in order if i % 2 == 0 else order[::-1]:
                            cpu0 = _cpu_seconds(procs[label])
                            r = run_wrk(url, body, c, args.duration, tmp)
                            cpu = _cpu_seconds(procs[label]) - cpu0
                            # the server's own CPU per request: what bounds its throughput
                            # once its CPUs are busy, and far less moved by other load on a
                            # shared machine than requests/s is
                            r["cpu_us_per_request"] = round(cpu / max(1, r["requests"]) * 1e6, 2)
                            runs[label].append(r)
                            print(
                                f"   capture {label:3s} c={c:<3d} {r['requests_per_s']:9.0f} "
                                f"req/s  p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  "
                                f"{r['cpu_us_per_request']:.1f} us CPU/request",
                                file=sys.stderr,
                                flush=True,
                            )
                    off = [x["requests_per_s"] for x in runs["off"]]
                    on = [x["requests_per_s"] for x in runs["on"]]
                    # each turn's pair ran back to back: the median of their ratios cancels
                    # the load that others put on a shared machine better than two medians
                    pairs = sorted(b / a for a, b in zip(off, on, strict=True))
                    ratio = pairs[len(pairs) // 2]
                    off_cpu = sorted(x["cpu_us_per_request"] for x in runs["off"])
                    on_cpu = sorted(x["cpu_us_per_request"] for x in runs["on"])
                    # throughput at saturation goes as 1 / CPU per request
                    cpu_ratio = off_cpu[len(off_cpu) // 2] / on_cpu[len(on_cpu) // 2]
                    entry[f"c{c}"] = {
                        "off_requests_per_s": off,
                        "on_requests_per_s": on,
                        "off_median": sorted(off)[len(off) // 2],
                        "on_median": sorted(on)[len(on) // 2],
                        "pair_ratios": [round(x, 3) for x in pairs],
                        "ratio": round(ratio, 3),
                        "cost_percent": round((1 - ratio) * 100, 1),
                        "off_cpu_us_per_request": off_cpu,
                        "on_cpu_us_per_request": on_cpu,
                        "cpu_ratio": round(cpu_ratio, 3),
                        "cpu_cost_percent": round((1 - cpu_ratio) * 100, 1),
                        "on_p99_ms": [x["p99_ms"] for x in runs["on"]],
                        "off_p99_ms": [x["p99_ms"] for x in runs["off"]],
                        "non_2xx": sum(x["non_2xx"] for x in runs["on"] + runs["off"]),
                    }
                entry["captured_records"] = _capture_records(on_url)
            finally:
                stop_server(off_proc)
                stop_server(on_proc)
            files = list(folder.glob("capture-*.jsonl"))
            entry["captured_lines_on_disk"] = sum(len(p.read_bytes().splitlines()) for p in files)
            entry["capture_bytes_on_disk"] = sum(p.stat().st_size for p in files)
            results["models"][name] = entry
    results["total_s"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    cells = [e[f"c{c}"] for e in results["models"].values() for c in CAPTURE_CONCURRENCY]
    worst = min(x["ratio"] for x in cells)
    worst_cpu = min(x["cpu_ratio"] for x in cells)
    results["verdict"] = {
        "worst_ratio": worst,
        "worst_cpu_ratio": worst_cpu,
        "under_5_percent_cost": worst_cpu >= 0.95,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving-capture.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "serving-capture.md").write_text(render_capture_md(results))
    print((args.out / "serving-capture.md").read_text())
    return 0


def render_capture_md(r: dict[str, Any]) -> str:
    lines = [
        "# Serving benchmark: captured requests",
        "",
        f"{r['machine']['cpus']} CPUs (shared; wrk runs on the same CPUs), "
        f"{r['workers']} worker process(es) x {r['threads_per_worker']} onnxruntime thread(s), "
        f"{r['duration_s']:g} s per run, {r['rounds']} runs per setting taken in turns, one row "
        "per request, Python " + r["machine"]["python"] + ". Generated by "
        "`python -m bench.serving --capture`.",
        "",
        f"Two ModelShip servers on the same model, both up: capture off, and capture at "
        f"{r['capture_rate']:g} (MODELSHIP_CAPTURE_RATE), measured back to back in each turn; "
        "the ratio is the median of the turns' ratios (req/s: medians of the runs). Load average "
        f"{r['machine']['load_average_at_start']} at the start and "
        f"{r['machine']['load_average_at_end']} at the end.",
        "",
        "Target: capture at 10 % costs under 5 % of the throughput. Two measures: the "
        "requests/s ratio (on / off), and the server's own CPU time per request (its "
        "processes' user + system time over the requests wrk counted): a busy server's "
        "throughput goes as 1 / CPU per request, and that figure is far less moved by other "
        "work on a shared machine. The verdict uses the CPU ratio.",
        "",
        "| model | concurrency | off req/s | on req/s | req/s ratio | off CPU µs/req | "
        "on CPU µs/req | CPU ratio | captured lines |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, e in r["models"].items():
        for c in CAPTURE_CONCURRENCY:
            x = e[f"c{c}"]
            off_cpu = x["off_cpu_us_per_request"][len(x["off_cpu_us_per_request"]) // 2]
            on_cpu = x["on_cpu_us_per_request"][len(x["on_cpu_us_per_request"]) // 2]
            lines.append(
                f"| {name} | {c} | {x['off_median']:.0f} | {x['on_median']:.0f} | "
                f"{x['ratio']:.3f} | {off_cpu:.1f} | {on_cpu:.1f} | {x['cpu_ratio']:.3f} | "
                f"{e['captured_lines_on_disk']} |"
            )
    v = r["verdict"]
    lines += [
        "",
        f"Worst CPU ratio {v['worst_cpu_ratio']:.3f} (worst requests/s ratio "
        f"{v['worst_ratio']:.3f}): capture at 10 % "
        f"{'costs under' if v['under_5_percent_cost'] else 'costs MORE than'} 5 % throughput.",
        "",
    ]
    return "\n".join(lines)


def render_md(r: dict[str, Any]) -> str:
    lines = [
        "# Serving benchmark",
        "",
        f"{r['machine']['cpus']} CPUs (shared; wrk runs on the same CPUs), "
        f"{r['workers']} worker process(es) x {r['threads_per_worker']} onnxruntime thread(s) "
        f"on both servers, {r['duration_s']:g} s per run, one row per request, "
        "Python " + r["machine"]["python"] + ". Generated by `python -m bench.serving`.",
        "",
        f"Load average (1 min) {r['machine']['load_average_at_start']} at the start and "
        f"{r['machine']['load_average_at_end']} at the end: other work shared the machine, "
        "so p99 figures are noisy. Baseline: the FastAPI app under uvicorn's own "
        "multi-worker supervisor, given a TCP_NODELAY-capable socket (plain "
        "`uvicorn --workers N` binds one without, and then every response waits ~40 ms "
        "for a delayed ACK; that artefact is kept out of the comparison).",
        "",
        "Targets: at c=64 at least 1.5x the plain FastAPI endpoint's requests/s with a p99 no "
        "worse; at c=1 a p50 under 0.5 ms.",
        "",
    ]
    for name, e in r["models"].items():
        ip = e["in_process"]
        v = e["verdict"]
        lines += [
            f"## {name}",
            "",
            f"In-process `session.run`: {ip['rows_per_s_1']:.0f} rows/s one row at a time "
            f"(p50 {ip['p50_ms_1']:.3f} ms), {ip['rows_per_s_64']:.0f} rows/s in batches of 64.",
            "",
            "| server | concurrency | requests/s (= rows/s) | p50 ms | p99 ms | non-2xx |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for kind in ("modelship", "fastapi"):
            for c in CONCURRENCY:
                x = e[kind][f"c{c}"]
                lines.append(
                    f"| {kind} | {c} | {x['requests_per_s']:.0f} | {x['p50_ms']:.3f} | "
                    f"{x['p99_ms']:.3f} | {x['non_2xx']} |"
                )
        lines += [
            "",
            f"c=64: {v['c64_speedup']}x the plain endpoint's requests/s; p99 "
            f"{'no worse' if v['c64_p99_not_worse'] else 'WORSE'}. c=1 p50 "
            f"{'under' if v['c1_p50_under_0_5ms'] else 'NOT under'} 0.5 ms.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
