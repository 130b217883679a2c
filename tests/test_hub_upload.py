"""push_to_hub without a reachable Hub: a clear HubError, quickly, for both model classes.

The Hub cannot be reached from here, so only the failures are tested for real: a Hub endpoint on a closed
loopback port (connection refused) and huggingface_hub's offline mode. Each runs in a fresh interpreter,
because huggingface_hub reads HF_ENDPOINT and HF_HUB_OFFLINE when it is imported.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

SCRIPT = """
import json, sys
from sentencekit import CrossEncoder, HubError, SentenceTransformer
from sentencekit.models import Pooling, Transformer

folder = sys.argv[1]
models = {
    "SentenceTransformer": SentenceTransformer(modules=[Transformer(folder), Pooling(32)], device="cpu"),
    "CrossEncoder": CrossEncoder(folder, num_labels=1, device="cpu", backend="torch"),
}
out = {}
for name, model in models.items():
    try:
        model.push_to_hub("acme/tiny-model", exist_ok=True)
    except HubError as exc:
        out[name] = [type(exc).__name__, isinstance(exc, OSError), str(exc)]
    else:
        out[name] = ["no error"]
print(json.dumps(out))
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # free once closed: nothing listens there


@pytest.mark.parametrize("setting", ["unreachable", "offline"])
def test_push_to_hub_fails_clearly_without_the_hub(tiny_hf_folder, tmp_path, setting):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    if setting == "unreachable":
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
        env.pop("HF_HUB_OFFLINE", None)
    else:
        env["HF_HUB_OFFLINE"] = "1"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_hf_folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("SentenceTransformer", "CrossEncoder"):
        kind, is_os_error, message = results[name]
        assert kind == "HubError" and is_os_error, results[name]
        assert "'acme/tiny-model'" in message and "HF_TOKEN" in message
        assert ("offline" if setting == "offline" else "unreachable") in message, message
    assert time.monotonic() - start < 90
