"""``sentencekit serve`` as a real process: it answers on loopback and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi", reason="the server extra is not installed: pip install 'sentencekit[server]'")


def test_serve_command_answers_and_stops_on_sigterm(tiny_hf_folder, tmp_path):
    corpus = tmp_path / "docs.txt"
    corpus.write_text("a man is eating food\nthe cat plays guitar\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "SENTENCEKIT_API_KEY": "k"}
    argv = [sys.executable, "-m", "sentencekit.cli.main", "serve", str(tiny_hf_folder), "--port", "0"]
    argv += ["--index", str(corpus), "--served-model-name", "tiny", "--threads", "1", "--max-queue", "8"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        match = re.search(r"serving tiny on (http://127\.0\.0\.1:\d+)", line)
        assert match, line + process.stderr.read() if process.poll() is not None else line
        url = match.group(1)
        headers = {"Authorization": "Bearer k"}  # the key came from $SENTENCEKIT_API_KEY
        for _ in range(200):  # the socket is bound before the models load
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        response = httpx.post(
            f"{url}/v1/embeddings", json={"input": ["a", "b"], "model": "tiny"}, headers=headers
        )
        assert response.status_code == 200
        assert np.array([d["embedding"] for d in response.json()["data"]]).shape == (2, 32)
        assert httpx.post(f"{url}/v1/embeddings", json={"input": "a"}).status_code == 401
        hits = httpx.post(f"{url}/v1/search", json={"query": "cat guitar", "k": 2}, headers=headers).json()
        assert {h["text"] for h in hits["results"][0]} == {"a man is eating food", "the cat plays guitar"}
        process.send_signal(signal.SIGTERM)
        # uvicorn finishes in-flight work, then re-raises the signal so the exit status says how it ended
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_command_reports_a_busy_port(tiny_hf_folder):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "sentencekit.cli.main", "serve", str(tiny_hf_folder), "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr and "pass another --port" in result.stderr
