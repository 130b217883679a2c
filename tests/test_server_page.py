"""The page at ``/`` in headless Chromium: type a query, press Enter, see ranked results; compare two texts.

Chromium (Debian's ``chromium`` package) is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages ending in NUL on file descriptors 3 and 4), so no browser
driver or websocket package is needed. Skipped, saying why, when Chromium is not installed.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sentencekit import SentenceTransformer
from sentencekit.server import BackgroundServer, create_app

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi", reason="the server extra is not installed: pip install 'sentencekit[server]'")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")

DOCS = [
    "A man is eating food.",
    "A monkey is playing drums.",
    "The stock market fell sharply after the central bank raised interest rates.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
]


# Put the pipe ends on descriptors 3 and 4, where Chromium expects them, then become Chromium.
_ON_3_AND_4 = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


def _above_4(fd: int) -> int:
    """The same pipe end on a descriptor above 4, so that moving it to 3 or 4 clobbers nothing."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


class Browser:
    """A headless Chromium and one page, spoken to over the DevTools pipe."""

    def __init__(self, profile: Path) -> None:
        self._to_chrome_r, self._to_chrome_w = (_above_4(fd) for fd in os.pipe())
        self._from_chrome_r, self._from_chrome_w = (_above_4(fd) for fd in os.pipe())
        fds = [str(self._to_chrome_r), str(self._from_chrome_w)]
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-pipe"]
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ON_3_AND_4, *fds, CHROMIUM, *flags, f"--user-data-dir={profile}"],
            pass_fds=(self._to_chrome_r, self._from_chrome_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(self._to_chrome_r)
        os.close(self._from_chrome_w)
        self._buffer = b""
        self._id = 0
        self.session: str | None = None

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session is not None and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_chrome_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                assert time.monotonic() < deadline, f"no answer to {method}"
                chunk = os.read(self._from_chrome_r, 1 << 16)
                assert chunk, "chromium closed the pipe"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply["error"]
                return reply.get("result", {})

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", url=url)["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")

    def type_into(self, selector: str, text: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def press_enter(self) -> None:
        key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}
        self.call("Input.dispatchKeyEvent", type="keyDown", text="\r", **key)
        self.call("Input.dispatchKeyEvent", type="keyUp", **key)

    def click(self, selector: str) -> None:
        box = self.js(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chrome_w)
        os.close(self._from_chrome_r)


@pytest.fixture(scope="module")
def server(minilm_path, tmp_path_factory, one_torch_thread):
    corpus = tmp_path_factory.mktemp("page") / "docs.txt"
    corpus.write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    model = SentenceTransformer(str(minilm_path), device="cpu")
    with BackgroundServer(create_app(model, index=corpus)) as running:
        yield running


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "profile")
    yield b
    b.close()


def test_typing_a_query_shows_ranked_documents(server, browser):
    browser.open(server.url + "/")
    browser.wait_for("document.body.dataset.ready === 'true'")
    assert "index of 5 items" in browser.js("document.getElementById('about').textContent")
    browser.js("document.getElementById('k').value = '3'")
    browser.type_into("#query", "Someone is having lunch")
    browser.press_enter()
    browser.wait_for("document.getElementById('results').dataset.query === 'Someone is having lunch'")
    shown = browser.js(
        "[...document.querySelectorAll('#results li')]"
        ".map(li => [li.querySelector('.text').textContent, Number(li.querySelector('.score').textContent)])"
    )
    assert len(shown) == 3
    assert shown[0][0] == "A man is eating food."  # the one document about eating
    scores = [score for _, score in shown]
    assert scores == sorted(scores, reverse=True)
    api = httpx.post(f"{server.url}/v1/search", json={"query": "Someone is having lunch", "k": 3}).json()
    assert [text for text, _ in shown] == [hit["text"] for hit in api["results"][0]]
    assert scores == [round(hit["score"], 4) for hit in api["results"][0]]
    assert browser.js("document.getElementById('error').textContent") == ""


def test_comparing_two_texts_shows_their_similarity(server, browser):
    browser.open(server.url + "/")
    browser.wait_for("document.body.dataset.ready === 'true'")
    browser.type_into("#text-a", "A man is eating food.")
    browser.type_into("#text-b", "A man is eating a piece of bread.")
    browser.click("#compare-form button")
    shown = browser.wait_for("Number(document.getElementById('similarity-score').textContent) || 0")
    api = httpx.post(
        f"{server.url}/v1/similarity",
        json={"sentences1": "A man is eating food.", "sentences2": "A man is eating a piece of bread."},
    ).json()
    assert shown == round(api["scores"][0][0], 4)
    assert 0.5 < shown < 1.0
