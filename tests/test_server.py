"""The HTTP server on loopback, through real clients (openai, httpx), with tiny random models."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sentencekit import CrossEncoder, SentenceTransformer
from sentencekit.server import BackgroundServer, ServerConfig, create_app

pytest.importorskip("fastapi", reason="the server extra is not installed: pip install 'sentencekit[server]'")
openai = pytest.importorskip("openai", reason="the openai package is not installed (it is in the dev extra)")
httpx = pytest.importorskip("httpx")

TEXTS = ["a man is eating food", "the cat plays guitar", "red car on the street", "hello world", "a dog"]
DOCS = [
    "a man is eating pasta",
    "the quick brown fox jumps over the lazy dog",
    "a woman is playing guitar",
    "red car",
    "hello",
]


@pytest.fixture(scope="module")
def model(tiny_hf_folder, one_torch_thread):
    return SentenceTransformer(str(tiny_hf_folder), device="cpu")


@pytest.fixture(scope="module")
def cross_encoder(tiny_hf_folder, tmp_path_factory, one_torch_thread):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny_ce")
    torch.manual_seed(7)
    ce = BertForSequenceClassification.from_pretrained(str(tiny_hf_folder), num_labels=1)
    torch.nn.init.normal_(ce.classifier.weight, std=1.0)  # scores that differ from pair to pair
    ce.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(tiny_hf_folder)).save_pretrained(str(folder))
    return CrossEncoder(str(folder), device="cpu")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "docs.txt"
    path.write_text("\n".join(DOCS) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(model, cross_encoder, corpus):
    config = ServerConfig(max_wait_ms=20, model_name="tiny", reranker_name="tiny-reranker", max_inputs=64)
    app = create_app(model, reranker=cross_encoder, index=corpus, config=config)
    with BackgroundServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def openai_client(server, key="unused"):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=30)


def from_base64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


# ------------------------------------------------------------------------------------- embeddings


def test_openai_client_gets_the_embeddings_of_encode(server, model):
    expected = model.encode(TEXTS)
    client = openai_client(server)
    floats = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="float")
    np.testing.assert_allclose(np.array([d.embedding for d in floats.data]), expected, atol=1e-6, rtol=0)
    assert [d.index for d in floats.data] == list(range(len(TEXTS)))
    raw = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="base64")
    np.testing.assert_allclose(
        np.stack([from_base64(d.embedding) for d in raw.data]), expected, atol=1e-6, rtol=0
    )
    decoded = client.embeddings.create(model="tiny", input=TEXTS)  # the client asks for base64 and decodes it
    np.testing.assert_allclose(np.array([d.embedding for d in decoded.data]), expected, atol=1e-6, rtol=0)
    assert (
        floats.usage.prompt_tokens
        == floats.usage.total_tokens
        == sum(len(ids) for ids in model.tokenizer(TEXTS)["input_ids"])
    )


def test_dimensions_truncate_and_renormalize(server, model):
    expected = model.encode(TEXTS, truncate_dim=12, normalize_embeddings=True)
    client = openai_client(server)
    for fmt in ("float", "base64"):
        got = client.embeddings.create(model="tiny", input=TEXTS, encoding_format=fmt, dimensions=12)
        rows = [from_base64(d.embedding) if fmt == "base64" else np.array(d.embedding) for d in got.data]
        np.testing.assert_allclose(np.stack(rows), expected, atol=1e-6, rtol=0)
    single = client.embeddings.create(
        model="tiny", input="hello world", encoding_format="float", dimensions=5
    )
    assert len(single.data) == 1 and len(single.data[0].embedding) == 5
    assert np.linalg.norm(single.data[0].embedding) == pytest.approx(1.0, abs=1e-6)


def test_token_id_input_is_decoded_and_encoded(server, model):
    ids = model.tokenizer(TEXTS[:3])["input_ids"]
    client = openai_client(server)
    got = client.embeddings.create(model="tiny", input=ids, encoding_format="float")
    np.testing.assert_allclose(
        np.array([d.embedding for d in got.data]), model.encode(TEXTS[:3]), atol=1e-6, rtol=0
    )
    one = client.embeddings.create(model="tiny", input=ids[0], encoding_format="float")
    np.testing.assert_allclose(one.data[0].embedding, model.encode(TEXTS[0]), atol=1e-6, rtol=0)


def test_concurrent_requests_are_batched_together_and_each_gets_its_own_rows(server, model):
    requests = [[f"{w} {i}" for w in TEXTS[: 1 + i % 5]] for i in range(24)]

    async def send_all():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            return await asyncio.gather(
                *(c.post("/v1/embeddings", json={"input": texts}) for texts in requests)
            )

    before = _batch_histogram(server)
    responses = asyncio.run(send_all())
    after = _batch_histogram(server)
    for texts, response in zip(requests, responses, strict=True):
        assert response.status_code == 200
        got = np.array([d["embedding"] for d in response.json()["data"]])
        np.testing.assert_allclose(got, model.encode(texts), atol=1e-6, rtol=0)
    steps, requests_run = after[1] - before[1], after[0] - before[0]
    assert requests_run == len(requests)
    assert steps < len(requests)  # at least two requests shared one model call


def _batch_histogram(server) -> tuple[float, float]:
    """(sum, count) of the requests-per-step histogram of the embedding model."""
    text = httpx.get(f"{server.url}/metrics").text
    values = {}
    for line in text.splitlines():
        for key in ("sentencekit_batch_requests_sum", "sentencekit_batch_requests_count"):
            if line.startswith(key + '{model="tiny"}'):
                values[key] = float(line.split()[-1])
    return values.get("sentencekit_batch_requests_sum", 0.0), values.get(
        "sentencekit_batch_requests_count", 0.0
    )


# ------------------------------------------------------------------------------------- bad input

BAD_REQUESTS = [
    (b'{"input": ["a", ', 400, "not valid JSON"),
    (b"[1, 2", 400, "not valid JSON"),
    (b'{"input": 5}', 422, "input must be a string"),
    (b'{"input": ["a", 3]}', 422, "input[1] must be a string"),
    (b'{"input": [[1, 2], "a"]}', 422, "input[1] must be a non-empty list of token ids"),
    (b'{"input": [[1, 2.5]]}', 422, "input[0][1] must be an integer"),
    (b'{"input": [[1, 100000]]}', 422, "is not a token id"),
    (b'{"input": []}', 422, "empty list"),
    (b'{"input": ""}', 422, "empty string"),
    (b'{"input": ["a", ""]}', 422, "input[1] is an empty string"),
    (b"{}", 422, "input: Field required"),
    (b'{"input": "a", "dimensions": "5"}', 422, "dimensions"),
    (b'{"input": "a", "dimensions": 0}', 422, "dimensions=0 is out of range"),
    (b'{"input": "a", "dimensions": 33}', 422, "this model's embeddings have 32 dimensions"),
    (b'{"input": "a", "encoding_format": "hex"}', 422, "encoding_format"),
    (b'{"input": "a", "dimension": 3}', 422, "dimension: Extra inputs are not permitted"),
    (b'{"input": "a", "prompt_name": "query"}', 422, "not a prompt of this model"),
    (b'{"input": "a", "model": "gpt-4"}', 404, "'gpt-4' is not served here; this server embeds with 'tiny'"),
    (json.dumps({"input": ["a"] * 65}).encode(), 413, "at most 64 per request"),
    (b'{"input": "' + b"x" * (10 * 1024 * 1024) + b'"}', 413, "at most 8,388,608 bytes"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_REQUESTS, ids=[m for _, _, m in BAD_REQUESTS])
def test_bad_requests_get_a_clear_error_and_the_server_keeps_serving(client, body, status, message):
    response = client.post("/v1/embeddings", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"]
    assert set(error) == {"message", "type", "param", "code"}
    assert client.post("/v1/embeddings", json={"input": "still here"}).status_code == 200


def test_a_chunked_body_over_the_limit_gets_413(client):
    def chunks():
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    response = client.post("/v1/embeddings", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert client.get("/health").status_code == 200


def test_openai_client_raises_its_own_errors(server):
    client = openai_client(server)
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.embeddings.create(model="text-embedding-3-small", input="a")
    with pytest.raises(openai.UnprocessableEntityError, match="empty list"):
        client.embeddings.create(model="tiny", input=[])


def test_unknown_path_and_method_get_json_errors(client):
    assert client.get("/v2/nothing").json()["error"]["code"] == "http_404"
    assert client.get("/v1/embeddings").status_code == 405


# ------------------------------------------------------------------------------------- other endpoints


def test_rerank_orders_documents_like_the_cross_encoder(client, cross_encoder):
    query = "a man is eating"
    expected = cross_encoder.rank(query, DOCS)
    body = client.post(
        "/v1/rerank", json={"query": query, "documents": DOCS, "model": "tiny-reranker"}
    ).json()
    assert [r["index"] for r in body["results"]] == [h["corpus_id"] for h in expected]
    np.testing.assert_allclose(
        [r["relevance_score"] for r in body["results"]], [h["score"] for h in expected], atol=1e-5
    )
    assert "document" not in body["results"][0] and body["usage"]["total_tokens"] > 0
    top = client.post(
        "/v1/rerank",
        json={"query": query, "documents": [{"text": d} for d in DOCS], "top_n": 2, "return_documents": True},
    ).json()["results"]
    assert [(r["index"], r["document"]["text"]) for r in top] == [
        (h["corpus_id"], DOCS[h["corpus_id"]]) for h in expected[:2]
    ]
    raw = client.post("/v1/rerank", json={"query": query, "documents": DOCS, "raw_scores": True}).json()[
        "results"
    ]
    logits = cross_encoder.predict(
        [(query, d) for d in DOCS], activation_fn=__import__("torch").nn.Identity()
    )
    np.testing.assert_allclose(
        sorted((r["relevance_score"] for r in raw), reverse=True), sorted(logits, reverse=True), atol=1e-5
    )
    wrong = client.post("/v1/rerank", json={"query": query, "documents": DOCS, "model": "tiny"})
    assert wrong.status_code == 404 and "reranks with 'tiny-reranker'" in wrong.json()["error"]["message"]
    assert client.post("/v1/rerank", json={"query": query, "documents": "a"}).status_code == 422


def test_similarity_is_the_models_matrix(client, model):
    body = client.post("/v1/similarity", json={"sentences1": TEXTS[:2], "sentences2": TEXTS[2:]}).json()
    expected = model.similarity(model.encode(TEXTS[:2]), model.encode(TEXTS[2:])).numpy()
    np.testing.assert_allclose(body["scores"], expected, atol=1e-6)
    assert body["similarity_fn_name"] == "cosine"
    one = client.post("/v1/similarity", json={"sentences1": "a dog", "sentences2": "a dog"}).json()
    assert one["scores"][0][0] == pytest.approx(1.0, abs=1e-5)


def test_search_returns_the_nearest_documents_with_their_text(client, model):
    body = client.post("/v1/search", json={"query": ["a man eats", "guitar"], "k": 3}).json()
    scores = model.similarity(model.encode(["a man eats", "guitar"]), model.encode(DOCS)).numpy()
    for q, hits in enumerate(body["results"]):
        order = np.argsort(-scores[q], kind="stable")[:3]
        assert [h["id"] for h in hits] == order.tolist()
        assert [h["text"] for h in hits] == [DOCS[i] for i in order]
        np.testing.assert_allclose([h["score"] for h in hits], scores[q][order], atol=1e-5)
    assert client.post("/v1/search", json={"query": "a", "k": 0}).status_code == 422


def test_models_and_health(client):
    models = client.get("/v1/models").json()
    assert [(m["id"], m["type"]) for m in models["data"]] == [
        ("tiny", "embedding"),
        ("tiny-reranker", "rerank"),
    ]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["dimensions"] == 32
    assert health["index"]["size"] == len(DOCS)


def test_metrics_count_requests_latency_batches_tokens_and_queue(client):
    client.post("/v1/embeddings", json={"input": TEXTS})
    client.post("/v1/embeddings", json={"input": 5})
    text = client.get("/metrics").text
    for needle in (
        'sentencekit_requests_total{endpoint="/v1/embeddings",method="POST",status="200"}',
        'sentencekit_requests_total{endpoint="/v1/embeddings",method="POST",status="422"}',
        'sentencekit_request_duration_seconds_bucket{endpoint="/v1/embeddings",le="0.5"}',
        'sentencekit_batch_tokens_count{model="tiny"}',
        'sentencekit_batch_duration_seconds_count{model="tiny"}',
        'sentencekit_queue_depth{model="tiny"} 0.0',
        'sentencekit_queue_wait_seconds_count{model="tiny-reranker"}',
    ):
        assert needle in text, needle
    tokens = next(
        line for line in text.splitlines() if line.startswith('sentencekit_tokens_total{model="tiny"}')
    )
    assert float(tokens.split()[-1]) > 0


def test_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/v1/search" in page.text and "<script>" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # one file, nothing from a CDN


# ------------------------------------------------------------------------------------- API key


def test_api_key_is_required_on_v1_only(model, tiny_hf_folder):
    app = create_app(str(tiny_hf_folder), config=ServerConfig(api_key="s3cret"))  # loaded by name
    with BackgroundServer(app) as server:
        with httpx.Client(base_url=server.url) as c:
            missing = c.post("/v1/embeddings", json={"input": "a"})
            assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
            assert "No API key was sent" in missing.json()["error"]["message"]
            wrong = c.post("/v1/embeddings", json={"input": "a"}, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401 and "wrong" in wrong.json()["error"]["message"]
            assert c.get("/health").status_code == 200 and c.get("/metrics").status_code == 200
            no_rerank = c.post(
                "/v1/rerank",
                json={"query": "a", "documents": ["b"]},
                headers={"Authorization": "Bearer s3cret"},
            )
            assert no_rerank.status_code == 404 and "--reranker" in no_rerank.json()["error"]["message"]
            no_index = c.post("/v1/search", json={"query": "a"}, headers={"Authorization": "Bearer s3cret"})
            assert no_index.status_code == 404 and "--index" in no_index.json()["error"]["message"]
        with pytest.raises(openai.AuthenticationError, match="API key is wrong"):
            openai_client(server, key="nope").embeddings.create(model="tiny", input="a")
        client = openai_client(server, key="s3cret")
        name = tiny_hf_folder.name  # a folder answers to its full path and to its own name
        ok = client.embeddings.create(model=name, input="a", encoding_format="float")
        np.testing.assert_allclose(ok.data[0].embedding, model.encode("a"), atol=1e-6)
        assert client.embeddings.create(model=str(tiny_hf_folder), input="a").model == str(tiny_hf_folder)


# ------------------------------------------------------------------------------------- overload, shutdown


def gated_server(model, **config):
    """A server whose worker waits for ``gate`` before each step, so that overload is deterministic."""
    app = create_app(model, config=ServerConfig(model_name="tiny", **config))
    state = app.state.sentencekit
    gate = threading.Event()
    run = state.embed_batcher._run_batch

    def held(payloads):
        gate.wait(30)
        return run(payloads)

    state.embed_batcher._run_batch = held
    return BackgroundServer(app), state, gate


async def _wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_overload_gets_fast_429_and_admitted_requests_succeed(model):
    server, state, gate = gated_server(model, max_queue=4, max_wait_ms=0, max_batch_tokens=1)
    with server:

        async def main():
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
                first = asyncio.ensure_future(c.post("/v1/embeddings", json={"input": "held"}))
                await _wait_until(lambda: state.embed_batcher.in_flight == 1)
                timed = [asyncio.ensure_future(_timed(c, f"text {i}")) for i in range(20)]
                await _wait_until(lambda: sum(t.done() for t in timed) >= 16)
                gate.set()
                return await first, await asyncio.gather(*timed)

        first, timed = asyncio.run(main())
        statuses = [r.status_code for r, _ in timed]
        assert first.status_code == 200
        assert statuses.count(429) == 16 and statuses.count(200) == 4
        refused = [(r, s) for r, s in timed if r.status_code == 429]
        assert max(s for _, s in refused) < 2.0
        assert refused[0][0].headers["retry-after"] == "1"
        assert refused[0][1] >= 0 and "queue is full" in refused[0][0].json()["error"]["message"]
        assert httpx.post(f"{server.url}/v1/embeddings", json={"input": "after"}).status_code == 200


async def _timed(client, text):
    start = time.perf_counter()
    response = await client.post("/v1/embeddings", json={"input": text})
    return response, time.perf_counter() - start


def test_shutdown_finishes_in_flight_requests(model):
    server, state, gate = gated_server(model, max_wait_ms=0)
    server.start()
    result = {}

    def call():
        result["response"] = httpx.post(f"{server.url}/v1/embeddings", json={"input": ["a", "b"]}, timeout=30)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 10
    while state.embed_batcher.in_flight == 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    stopper = threading.Thread(target=server.stop)
    stopper.start()  # as SIGTERM: stop accepting, wait for the in-flight request
    time.sleep(0.2)
    assert stopper.is_alive()
    gate.set()
    caller.join(10)
    stopper.join(15)
    assert not stopper.is_alive()
    assert result["response"].status_code == 200
    np.testing.assert_allclose(
        [d["embedding"] for d in result["response"].json()["data"]], model.encode(["a", "b"]), atol=1e-6
    )
    assert state.embed_batcher.closing


def test_an_index_of_another_width_is_refused_at_start_up(model, tmp_path):
    from sentencekit.errors import InvalidInputError
    from sentencekit.index import Index

    index = Index(16, model_name="some-16-dim-model")
    index.add(np.ones((2, 16), dtype=np.float32))
    index.save(tmp_path / "idx")
    with pytest.raises(InvalidInputError, match="16-dimensional vectors but tiny makes 32-dimensional"):
        create_app(model, index=tmp_path / "idx", config=ServerConfig(model_name="tiny"))
