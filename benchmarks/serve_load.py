"""Load test of ``sentencekit serve`` against a naive server and infinity-emb, on loopback only.

Usage:
    python benchmarks/serve_load.py --duration 60 --clients 64 --json results/serve_load.json
    python benchmarks/serve_load.py --duration 10 --servers sentencekit,naive       # a short check
    python benchmarks/serve_load.py --overload --requests 500 --max-queue 64 --json results/overload.json

Load mode: every server (each its own process, all with the same model folder and torch thread count) is
started first and warmed up; then, for each round, each server in turn gets ``--clients`` concurrent
clients (asyncio + httpx) that each send requests of 1-32 random STSb sentences, one after another, for
``--duration`` seconds. Rounds rotate the order of the servers, so that load from other jobs on the machine
spreads over all of them. Per server: errors (any status but 200, a wrong number or width of embeddings,
or a transport error), latency p50/p90/p99, requests/s and sentences/s (requests finished within the
window), RSS before and after, and a parity check of one probe request against in-process ``encode``.

The servers:

* ``sentencekit``: ``sentencekit serve`` (dynamic micro-batching across requests);
* ``naive``: this script with ``--naive-server``: FastAPI, one ``model.encode`` per request, no batching
  across requests (``--naive-mode serial``: one request at a time, behind a lock; ``threads``: FastAPI's
  thread pool runs encodes concurrently);
* ``infinity``: ``infinity_emb v2`` from a separate virtual environment (``--infinity-bin``), when present.

Overload mode: ``sentencekit serve --max-queue N`` gets ``--requests`` requests at once, ``--bursts``
times: how many got 429 and how fast, whether every admitted request succeeded, whether the server still
answers, and its RSS before, after each burst and after a pause.

Every request goes to 127.0.0.1; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
STSB = DATA / "stsb" / "stsb-en-train.csv"
INFINITY_BIN = Path("/work/infinity-venv/bin/infinity_emb")
PROBE = ["A man is playing a flute.", "The stock market fell sharply after the central bank raised rates."]


# ------------------------------------------------------------------------------------------ naive server


def naive_server(model_name: str, port: int, mode: str) -> None:
    """A plain FastAPI app that encodes each request on its own (the baseline)."""
    import threading

    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from sentencekit import SentenceTransformer

    model = SentenceTransformer(model_name)
    lock = threading.Lock() if mode == "serial" else None
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/embeddings")
    def embeddings(body: dict[str, Any]) -> JSONResponse:
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        if lock is not None:
            with lock:
                emb = model.encode(texts, show_progress_bar=False)
        else:
            emb = model.encode(texts, show_progress_bar=False)
        b64 = body.get("encoding_format") == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(row.astype("<f4").tobytes()).decode() if b64 else row.tolist(),
            }
            for i, row in enumerate(emb)
        ]
        return JSONResponse({"object": "list", "data": data, "model": model_name})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ------------------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (robust to other load, unlike wall-clock throughput)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    model: str  # the name clients send as "model"
    port: int
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path) -> None:
        self.log = log_dir / f"{self.name}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rss(self) -> float | None:
        return rss_mb(self.process.pid) if self.process is not None else None

    def cpu(self) -> float:
        return (cpu_seconds(self.process.pid) if self.process is not None else None) or 0.0


def make_servers(args: argparse.Namespace, folder: str) -> list[Server]:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    servers = []
    for name in args.servers.split(","):
        port = free_port()
        if name == "sentencekit":
            command = [
                sys.executable,
                "-m",
                "sentencekit.cli.main",
                "-q",
                "serve",
                folder,
                "--port",
                str(port),
            ]
            command += ["--threads", str(args.threads), "--served-model-name", "model"]
            if args.max_queue is not None:
                command += ["--max-queue", str(args.max_queue)]
            servers.append(Server(name, command, env, "model", port))
        elif name == "naive":
            command = [sys.executable, __file__, "--naive-server", "--model", folder, "--port", str(port)]
            command += ["--naive-mode", args.naive_mode]
            servers.append(Server(name, command, env, folder, port, notes={"mode": args.naive_mode}))
        elif name == "infinity":
            if not args.infinity_bin.exists():
                print(f"skipping infinity: {args.infinity_bin} does not exist", file=sys.stderr)
                continue
            command = [str(args.infinity_bin), "v2", "--model-id", folder, "--served-model-name", "model"]
            command += ["--port", str(port), "--host", "127.0.0.1", "--device", "cpu", "--engine", "torch"]
            command += ["--url-prefix", "/v1", "--log-level", "warning"]
            servers.append(Server(name, command, env, "model", port))
        else:
            raise SystemExit(f"unknown server {name!r}: use sentencekit, naive, infinity")
    return servers


# ------------------------------------------------------------------------------------------ load


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # sentences of every answered request
    sentences: int = 0
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def decode_rows(body: dict[str, Any], fmt: str) -> np.ndarray:
    rows = [d["embedding"] for d in sorted(body["data"], key=lambda d: d["index"])]
    if fmt == "base64":
        return np.stack([np.frombuffer(base64.b64decode(r), dtype="<f4") for r in rows])
    return np.asarray(rows, dtype=np.float32)


async def post(client: Any, server: Server, texts: list[str], fmt: str) -> tuple[int, Any]:
    body = {"input": texts, "model": server.model, "encoding_format": fmt}
    response = await client.post("/v1/embeddings", json=body)
    return response.status_code, response.json() if response.status_code == 200 else response.text


async def wait_ready(server: Server, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        while time.monotonic() < deadline:
            if server.process is not None and server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.process.returncode}; see {server.log}")
            try:
                status, _ = await post(client, server, ["ready?"], "float")
                if status == 200:
                    return
            except (httpx.TransportError, ValueError):
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError(f"{server.name} did not answer within {timeout} s; see {server.log}")


async def run_load(
    server: Server, sentences: list[str], args: argparse.Namespace, seconds: float, dim: int
) -> Outcome:
    import httpx

    outcome = Outcome()
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    start = time.monotonic()
    deadline = start + seconds

    async def one_client(seed: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            texts = rng.sample(sentences, rng.randint(1, 32))
            sent = time.monotonic()
            try:
                status, body = await post(client, server, texts, args.encoding_format)
            except (httpx.HTTPError, ValueError) as exc:
                outcome.error(type(exc).__name__)
                continue
            done = time.monotonic()
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
            if status != 200:
                outcome.error(f"http {status}")
                continue
            rows = decode_rows(body, args.encoding_format)
            if rows.shape != (len(texts), dim):
                outcome.error("wrong shape")
                continue
            outcome.latencies.append(done - sent)
            outcome.sizes.append(len(texts))
            if done <= deadline:
                outcome.requests += 1
                outcome.sentences += len(texts)

    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
        await asyncio.gather(*(one_client(args.seed + i, client) for i in range(args.clients)))
    return outcome


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize(outcome: Outcome, seconds: float) -> dict[str, Any]:
    lat = outcome.latencies
    return {
        "requests_per_s": outcome.requests / seconds,
        "sentences_per_s": outcome.sentences / seconds,
        "p50_ms": None if not lat else 1000 * percentile(lat, 50),
        "p90_ms": None if not lat else 1000 * percentile(lat, 90),
        "p99_ms": None if not lat else 1000 * percentile(lat, 99),
        "requests": outcome.requests,
        "errors": outcome.errors,
        "error_count": sum(outcome.errors.values()),
        "statuses": {str(k): v for k, v in outcome.statuses.items()},
    }


async def probe_parity(server: Server, reference: np.ndarray, fmt: str) -> float:
    import httpx

    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        status, body = await post(client, server, PROBE, fmt)
    if status != 200:
        return float("inf")
    return float(np.abs(decode_rows(body, fmt) - reference).max())


# ------------------------------------------------------------------------------------------ modes


def load_sentences() -> list[str]:
    if not STSB.is_file():
        raise SystemExit(f"{STSB} is missing: the STSb data of ../shared/data is needed")
    with STSB.open(encoding="utf-8", newline="") as f:
        return list(dict.fromkeys(s for row in csv.reader(f) for s in row[:2]))


def machine() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "commit": commit.stdout.strip(),
        "loadavg_start": os.getloadavg(),
    }


def load_mode(args: argparse.Namespace, folder: str, reference: np.ndarray) -> dict[str, Any]:
    sentences = load_sentences()
    dim = reference.shape[1]
    servers = make_servers(args, folder)
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "settings": vars(args) | {"infinity_bin": str(args.infinity_bin)},
        "machine": machine(),
    }
    per_server: dict[str, dict[str, Any]] = {s.name: {"rounds": [], **s.notes} for s in servers}
    try:
        for server in servers:
            server.start(log_dir)
        for server in servers:
            asyncio.run(wait_ready(server, args.start_timeout))
            print(f"{server.name}: ready, warming up {args.warmup} s", flush=True)
            asyncio.run(run_load(server, sentences, args, args.warmup, dim))
            per_server[server.name]["rss_mb_before"] = server.rss()
            per_server[server.name]["probe_max_abs_diff_before"] = asyncio.run(
                probe_parity(server, reference, args.encoding_format)
            )
        for round_no in range(args.rounds):
            shift = round_no % len(servers)
            for server in servers[shift:] + servers[:shift]:
                load, cpu = os.getloadavg()[0], server.cpu()
                outcome = asyncio.run(run_load(server, sentences, args, args.duration, dim))
                used = server.cpu() - cpu
                summary = summarize(outcome, args.duration) | {
                    "loadavg_1m_before": load,
                    "server_cpu_s": used,
                    "server_cpu_ms_per_sentence": 1000 * used / max(sum(outcome.sizes), 1),
                }
                per_server[server.name]["rounds"].append(summary)
                print(
                    f"round {round_no + 1} {server.name:>11}: {summary['sentences_per_s']:8.1f} sentences/s "
                    f"{summary['requests_per_s']:6.1f} req/s  p50 {summary['p50_ms'] or 0:7.0f} ms  "
                    f"p99 {summary['p99_ms'] or 0:7.0f} ms  errors {summary['error_count']}  "
                    f"server CPU {summary['server_cpu_ms_per_sentence']:.2f} ms/sentence",
                    flush=True,
                )
        for server in servers:
            info = per_server[server.name]
            info["rss_mb_after"] = server.rss()
            info["probe_max_abs_diff_after"] = asyncio.run(
                probe_parity(server, reference, args.encoding_format)
            )
            best = max(info["rounds"], key=lambda r: r["sentences_per_s"])
            info["best"] = best
            info["median_sentences_per_s"] = statistics.median(r["sentences_per_s"] for r in info["rounds"])
            info["total_errors"] = sum(r["error_count"] for r in info["rounds"])
    finally:
        for server in servers:
            server.stop()
    results["servers"] = per_server
    if "sentencekit" in per_server:
        ours = per_server["sentencekit"]["median_sentences_per_s"]
        results["ratios"] = {
            f"sentencekit/{name}": ours / info["median_sentences_per_s"]
            for name, info in per_server.items()
            if name != "sentencekit" and info["median_sentences_per_s"]
        }
    results["zero_errors"] = all(info["total_errors"] == 0 for info in per_server.values())
    results["machine"]["loadavg_end"] = os.getloadavg()
    return results


def overload_mode(args: argparse.Namespace, folder: str, reference: np.ndarray) -> dict[str, Any]:
    import httpx

    sentences = load_sentences()
    args.servers = "sentencekit"
    (server,) = make_servers(args, folder)
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "settings": vars(args) | {"infinity_bin": str(args.infinity_bin)},
        "machine": machine(),
    }
    bursts = []

    async def burst(seed: int) -> dict[str, Any]:
        rng = random.Random(seed)
        limits = httpx.Limits(max_connections=args.requests, max_keepalive_connections=0)
        outcome_429: list[float] = []
        outcome_200: list[float] = []
        other: dict[str, int] = {}

        async def one(client: httpx.AsyncClient) -> None:
            texts = rng.sample(sentences, rng.randint(1, 32))
            sent = time.monotonic()
            try:
                status, body = await post(client, server, texts, args.encoding_format)
            except httpx.HTTPError as exc:
                other[type(exc).__name__] = other.get(type(exc).__name__, 0) + 1
                return
            elapsed = time.monotonic() - sent
            if status == 429:
                outcome_429.append(elapsed)
            elif status == 200 and decode_rows(body, args.encoding_format).shape[0] == len(texts):
                outcome_200.append(elapsed)
            else:
                other[f"http {status}"] = other.get(f"http {status}", 0) + 1

        started = time.monotonic()
        async with httpx.AsyncClient(base_url=server.url, timeout=300, limits=limits) as client:
            await asyncio.gather(*(one(client) for _ in range(args.requests)))
        return {
            "seconds": time.monotonic() - started,
            "ok": len(outcome_200),
            "rejected_429": len(outcome_429),
            "other": other,
            "p50_429_ms": None if not outcome_429 else 1000 * percentile(outcome_429, 50),
            "p99_429_ms": None if not outcome_429 else 1000 * percentile(outcome_429, 99),
            "max_429_ms": None if not outcome_429 else 1000 * max(outcome_429),
            "p50_ok_ms": None if not outcome_200 else 1000 * percentile(outcome_200, 50),
            "max_ok_ms": None if not outcome_200 else 1000 * max(outcome_200),
        }

    async def health_burst() -> float | None:
        """p50 latency of as many GET /health at once: what connecting and answering alone cost here."""
        limits = httpx.Limits(max_connections=args.requests, max_keepalive_connections=0)
        latencies: list[float] = []

        async def one(client: httpx.AsyncClient) -> None:
            sent = time.monotonic()
            if (await client.get("/health")).status_code == 200:
                latencies.append(time.monotonic() - sent)

        async with httpx.AsyncClient(base_url=server.url, timeout=300, limits=limits) as client:
            await asyncio.gather(*(one(client) for _ in range(args.requests)))
        return None if not latencies else 1000 * percentile(latencies, 50)

    try:
        server.start(log_dir)
        asyncio.run(wait_ready(server, args.start_timeout))
        asyncio.run(run_load(server, sentences, args, args.warmup, reference.shape[1]))
        results["rss_mb_before"] = server.rss()
        for i in range(args.bursts):
            floor = asyncio.run(health_burst())
            outcome = asyncio.run(burst(args.seed + i))
            outcome["health_burst_p50_ms"] = floor
            outcome["rss_mb_after"] = server.rss()
            bursts.append(outcome)
            print(
                f"burst {i + 1}: {outcome['ok']} ok, {outcome['rejected_429']} x 429 "
                f"(p50 {outcome['p50_429_ms'] or 0:.0f} ms, max {outcome['max_429_ms'] or 0:.0f} ms), "
                f"other {outcome['other']}, RSS {outcome['rss_mb_after']:.0f} MB; "
                f"{args.requests} x GET /health at once: p50 {floor or 0:.0f} ms",
                flush=True,
            )
        time.sleep(args.settle)
        results["rss_mb_settled"] = server.rss()
        results["probe_max_abs_diff_after"] = asyncio.run(
            probe_parity(server, reference, args.encoding_format)
        )
        results["alive_after"] = results["probe_max_abs_diff_after"] < 1e-4 and server.process.poll() is None
    finally:
        server.stop()
    results["bursts"] = bursts
    results["admitted_all_ok"] = all(not b["other"] for b in bursts)
    results["machine"]["loadavg_end"] = os.getloadavg()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="all-MiniLM-L6-v2", help="model name or folder (default: all-MiniLM-L6-v2)"
    )
    parser.add_argument("--servers", default="sentencekit,naive,infinity", help="comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per server and round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (the order of servers rotates)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="torch threads of each server"
    )
    parser.add_argument("--encoding-format", choices=("float", "base64"), default="base64")
    parser.add_argument("--naive-mode", choices=("serial", "threads"), default="serial")
    parser.add_argument("--infinity-bin", type=Path, default=INFINITY_BIN)
    parser.add_argument(
        "--max-queue", type=int, help="sentencekit's --max-queue (default: 256; overload: 64)"
    )
    parser.add_argument("--overload", action="store_true", help="run the overload test instead")
    parser.add_argument("--requests", type=int, default=500, help="overload: requests per burst")
    parser.add_argument("--bursts", type=int, default=3, help="overload: bursts")
    parser.add_argument(
        "--settle", type=float, default=5.0, help="overload: pause before the last RSS reading"
    )
    parser.add_argument("--start-timeout", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-dir", default="results/serve_load_logs", help="server logs")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--naive-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_server:
        naive_server(args.model, args.port, args.naive_mode)
        return

    import torch

    from sentencekit import SentenceTransformer
    from sentencekit.hub import resolve_model_path

    folder = str(resolve_model_path(args.model))
    torch.set_num_threads(1)
    reference = SentenceTransformer(folder, device="cpu").encode(PROBE)
    if args.overload:
        args.max_queue = args.max_queue or 64
        results = overload_mode(args, folder, reference)
    else:
        results = load_mode(args, folder, reference)
    text = json.dumps(results, indent=2, default=str)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
        print(f"wrote {args.json}")
    else:
        print(text)


if __name__ == "__main__":
    main()
