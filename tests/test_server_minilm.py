"""The official openai client against a server of the real all-MiniLM-L6-v2: the embeddings of encode()."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from conftest import SHORT_TEXTS
from sentencekit import SentenceTransformer
from sentencekit.server import BackgroundServer, create_app

openai = pytest.importorskip("openai", reason="the openai package is not installed (it is in the dev extra)")
pytest.importorskip("fastapi", reason="the server extra is not installed: pip install 'sentencekit[server]'")

TEXTS = [t for t in SHORT_TEXTS if t] + ["A much longer sentence, " * 20]


@pytest.fixture(scope="module")
def model(minilm_path, one_torch_thread):
    return SentenceTransformer(str(minilm_path), device="cpu")


@pytest.fixture(scope="module")
def client(model):
    with BackgroundServer(create_app(model)) as server:
        yield openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.mark.parametrize("dimensions", [None, 128])
@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_openai_embeddings_equal_encode(client, model, encoding_format, dimensions):
    expected = model.encode(TEXTS, truncate_dim=dimensions, normalize_embeddings=dimensions is not None)
    extra = {} if dimensions is None else {"dimensions": dimensions}
    got = client.embeddings.create(
        model=model.model_id, input=TEXTS, encoding_format=encoding_format, **extra
    )
    if encoding_format == "base64":
        rows = np.stack([np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in got.data])
    else:
        rows = np.array([d.embedding for d in got.data])
    assert rows.shape == (len(TEXTS), dimensions or 384)
    np.testing.assert_allclose(rows, expected, atol=1e-6, rtol=0)
    assert got.model == model.model_id and got.usage.prompt_tokens > len(TEXTS)
