"""The progress bar shows by default only when stderr is a terminal (checked with a real pty)."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios

CODE = """
import sys
from sentencekit import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
model.encode(["hello world"] * 5, batch_size=2)
"""


def _stderr_of(folder, use_pty: bool) -> str:
    if not use_pty:
        return subprocess.run(
            [sys.executable, "-c", CODE, str(folder)], capture_output=True, text=True, check=True
        ).stderr
    master, slave = os.openpty()
    # a new pty is 0 columns wide, and tqdm draws nothing in zero width: give it a normal size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CODE, str(folder)], stderr=slave, stdout=subprocess.DEVNULL
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO once the writer side is closed and drained
                break
            if not data:
                break
            chunks.append(data)
        assert proc.returncode == 0
        return b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)


def test_progress_bar_on_terminal_only(tiny_hf_folder):
    assert "Batches" in _stderr_of(tiny_hf_folder, use_pty=True)
    assert "Batches" not in _stderr_of(tiny_hf_folder, use_pty=False)
