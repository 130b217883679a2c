"""Router against the reference's: the same route per task, the same vectors, folders that load both ways.

Two typical models: an inference-free SPLADE model (SparseStaticEmbedding for queries, MLMTransformer +
SpladePooling for documents) and an asymmetric dense model (a different tiny BERT and pooling per route).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import _write_tiny_bert
from sentencekit import SentenceTransformer, SparseEncoder
from sentencekit.errors import ModelFormatError
from sentencekit.models import Asym, Normalize, Pooling, Router, Transformer
from sentencekit.sparse_encoder.models import MLMTransformer, SparseStaticEmbedding, SpladePooling

st = pytest.importorskip("sentence_transformers")
from sentence_transformers.base.modules import Router as RefRouter  # noqa: E402
from sentence_transformers.base.modules import Transformer as RefTransformer  # noqa: E402
from sentence_transformers.sentence_transformer.modules import Normalize as RefNormalize  # noqa: E402
from sentence_transformers.sentence_transformer.modules import Pooling as RefPooling  # noqa: E402
from sentence_transformers.sparse_encoder.modules import (  # noqa: E402
    SparseStaticEmbedding as RefSparseStaticEmbedding,
)
from sentence_transformers.sparse_encoder.modules import SpladePooling as RefSpladePooling  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _dense(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    return x.to_dense() if x.is_sparse else x


def _max_diff(a, b) -> float:
    return float((_dense(a).cpu() - _dense(b).cpu()).abs().max())


# --- inference-free SPLADE --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def query_weights() -> torch.Tensor:
    return torch.rand(193, generator=torch.Generator().manual_seed(4)) * 3


@pytest.fixture(scope="module")
def splade_pair(tiny_mlm_folder: Path, query_weights, tmp_path_factory):
    """The reference's inference-free SPLADE model, and ours loaded from the folder it saved."""
    document = RefTransformer(str(tiny_mlm_folder), transformer_task="fill-mask")
    query = RefSparseStaticEmbedding(document.tokenizer, weight=query_weights.clone(), frozen=True)
    router = RefRouter.for_query_document([query], [document, RefSpladePooling("max")])
    theirs = st.SparseEncoder(modules=[router], device="cpu")
    folder = tmp_path_factory.mktemp("splade_router_ref")
    theirs.save(str(folder))
    return SparseEncoder(str(folder), device="cpu"), theirs


def test_inference_free_splade_routes_like_the_reference(splade_pair, sample_texts):
    ours, theirs = splade_pair
    router = ours[0]
    assert isinstance(router, Router) and router.default_route == "document"
    assert [type(m) for m in router.route("query")] == [SparseStaticEmbedding]
    assert [type(m) for m in router.route("document")] == [MLMTransformer, SpladePooling]
    queries, documents = ours.encode_query(sample_texts), ours.encode_document(sample_texts)
    assert queries.shape == documents.shape == (len(sample_texts), 193)
    assert _max_diff(queries, theirs.encode_query(sample_texts)) <= 1e-6
    assert _max_diff(documents, theirs.encode_document(sample_texts)) <= 1e-5
    assert _max_diff(queries, documents) > 0.1, "the two routes encode differently"
    # no task: the default route; task=: any route, as in the reference
    assert _max_diff(ours.encode(sample_texts), theirs.encode(sample_texts)) <= 1e-5
    assert (
        _max_diff(ours.encode(sample_texts, task="query"), theirs.encode(sample_texts, task="query")) <= 1e-6
    )
    assert ours.get_sentence_embedding_dimension() == 193
    # the query route reads the text itself: each vector holds the query's token weights only
    ids = router.route("query")[0].tokenizer("a man eating food", add_special_tokens=False)["input_ids"]
    assert set(torch.nonzero(_dense(ours.encode_query("a man eating food"))).flatten().tolist()) == set(ids)


def test_inference_free_splade_built_from_our_modules(
    tiny_mlm_folder, query_weights, splade_pair, sample_texts
):
    _, theirs = splade_pair
    document = MLMTransformer(str(tiny_mlm_folder))
    router = Router.for_query_document(
        [SparseStaticEmbedding(document.tokenizer, weight=query_weights.clone(), frozen=True)],
        [document, SpladePooling("max")],
    )
    ours = SparseEncoder(modules=[router], device="cpu")
    assert _max_diff(ours.encode_query(sample_texts), theirs.encode_query(sample_texts)) <= 1e-6
    assert _max_diff(ours.encode_document(sample_texts), theirs.encode_document(sample_texts)) <= 1e-5
    # training-style: tokenize for a task, then run the model; the features carry the task to the Router
    features = ours.tokenize(["a red car"], task="query")
    assert features["task"] == "query"
    with torch.no_grad():
        out = ours(features)["sentence_embedding"]
    assert _max_diff(out[0], ours.encode_query("a red car")) <= 1e-6


def test_inference_free_splade_saves_the_references_layout(splade_pair, tmp_path, sample_texts):
    ours, theirs = splade_pair
    ours.save(str(tmp_path))
    assert json.loads((tmp_path / "modules.json").read_text())[0]["path"] == ""
    config = json.loads((tmp_path / "router_config.json").read_text())
    assert config["structure"] == {
        "query": ["query_0_SparseStaticEmbedding"],
        "document": ["document_0_MLMTransformer", "document_1_SpladePooling"],
    }
    assert config["parameters"] == {
        "default_route": "document",
        "allow_empty_key": True,
        "route_mappings": {},
    }
    assert (tmp_path / "query_0_SparseStaticEmbedding" / "model.safetensors").is_file()
    reloaded = st.SparseEncoder(str(tmp_path), device="cpu")
    assert _max_diff(reloaded.encode_query(sample_texts), theirs.encode_query(sample_texts)) <= 1e-6
    assert _max_diff(reloaded.encode_document(sample_texts), theirs.encode_document(sample_texts)) <= 1e-5
    again = SparseEncoder(str(tmp_path), device="cpu")
    assert _max_diff(again.encode_document(sample_texts), ours.encode_document(sample_texts)) == 0


# --- asymmetric dense model ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dense_folders(tmp_path_factory) -> tuple[Path, Path]:
    return (
        _write_tiny_bert(tmp_path_factory.mktemp("query_bert"), seed=11),
        _write_tiny_bert(tmp_path_factory.mktemp("document_bert"), seed=12, hidden=32, layers=1),
    )


@pytest.fixture(scope="module")
def dense_pair(dense_folders, tmp_path_factory):
    query_folder, document_folder = dense_folders
    router = RefRouter.for_query_document(
        [RefTransformer(str(query_folder)), RefPooling(32, "mean")],
        [RefTransformer(str(document_folder)), RefPooling(32, "cls")],
    )
    theirs = st.SentenceTransformer(modules=[router, RefNormalize()], device="cpu")
    folder = tmp_path_factory.mktemp("dense_router_ref")
    theirs.save(str(folder))
    return SentenceTransformer(str(folder), device="cpu"), theirs


def test_asymmetric_dense_model_matches_the_reference(dense_pair, dense_folders, sample_texts):
    ours, theirs = dense_pair
    assert isinstance(ours[0], Router) and isinstance(ours[1], Normalize)
    for method in ("encode_query", "encode_document", "encode"):
        a, b = getattr(ours, method)(sample_texts), getattr(theirs, method)(sample_texts)
        assert a.shape == b.shape == (len(sample_texts), 32)
        assert _max_diff(a, b) <= 1e-5, method
    assert _max_diff(ours.encode_query(sample_texts), ours.encode_document(sample_texts)) > 0.1
    assert ours.get_sentence_embedding_dimension() == 32 and ours.max_seq_length == 64
    # a model without a Router takes and ignores task=, as the reference does
    plain = SentenceTransformer(
        modules=[Transformer(str(dense_folders[0])), Pooling(32, "mean")], device="cpu"
    )
    assert _max_diff(plain.encode(sample_texts, task="query"), plain.encode(sample_texts)) == 0


def test_asymmetric_dense_model_save_load_both_ways(dense_pair, dense_folders, tmp_path, sample_texts):
    ours, theirs = dense_pair
    ours.save(str(tmp_path))
    assert (tmp_path / "router_config.json").is_file() and (tmp_path / "1_Normalize").is_dir()
    reloaded = st.SentenceTransformer(str(tmp_path), device="cpu")
    for method in ("encode_query", "encode_document"):
        assert (
            _max_diff(getattr(reloaded, method)(sample_texts), getattr(theirs, method)(sample_texts)) <= 1e-5
        )
    # built from our own modules, the same model
    query_folder, document_folder = dense_folders
    built = SentenceTransformer(
        modules=[
            Router.for_query_document(
                [Transformer(str(query_folder)), Pooling(32, "mean")],
                [Transformer(str(document_folder)), Pooling(32, "cls")],
            ),
            Normalize(),
        ],
        device="cpu",
    )
    assert _max_diff(built.encode_query(sample_texts), theirs.encode_query(sample_texts)) <= 1e-5
    built.max_seq_length = 16  # set on every route, as the reference does
    assert built.max_seq_length == 16
    assert [route[0].max_seq_length for route in built[0].routes().values()] == [16, 16]


def test_route_mappings_and_shared_modules_round_trip(dense_folders, tmp_path, sample_texts):
    query_folder, _ = dense_folders
    shared = Transformer(str(query_folder))
    router = Router(
        {"short": [shared, Pooling(32, "cls")], "long": [shared, Pooling(32, "mean")]},
        default_route="long",
        route_mappings={("query", "text"): "short", ("question", None): "short"},
    )
    ours = SentenceTransformer(modules=[router], device="cpu")
    assert router.route_name("query") == router.route_name("question") == "short"
    assert router.route_name(None) == "long" and router.route_name("long") == "long"
    ours.save(str(tmp_path))
    config = json.loads((tmp_path / "router_config.json").read_text())
    assert config["structure"] == {
        "short": ["short_0_Transformer", "short_1_Pooling"],
        "long": [
            "short_0_Transformer",
            "long_1_Pooling",
        ],
    }, "a module two routes share is saved once"
    assert config["parameters"]["route_mappings"] == {
        "('query', 'text')": "short",
        "('question', None)": "short",
    }
    theirs = st.SentenceTransformer(str(tmp_path), device="cpu")
    again = SentenceTransformer(str(tmp_path), device="cpu")
    assert again[0].route_mappings == router.route_mappings
    assert again[0].route("short")[0] is again[0].route("long")[0]
    for task in ("query", "question", "long", None):
        a, b = again.encode(sample_texts, task=task), theirs.encode(sample_texts, task=task)
        assert _max_diff(a, b) <= 1e-5, task
        assert _max_diff(a, ours.encode(sample_texts, task=task)) <= 1e-6


def test_legacy_asym_folder_loads(dense_folders, tmp_path, sample_texts):
    query_folder, _ = dense_folders
    model = SentenceTransformer(
        modules=[Asym({"QRY": [Transformer(str(query_folder)), Pooling(32, "mean")]}, allow_empty_key=False)],
        device="cpu",
    )
    model.save(str(tmp_path))
    # the layout of sentence-transformers < 5: the Asym class in modules.json, its config in config.json
    (tmp_path / "router_config.json").rename(tmp_path / "config.json")
    entries = json.loads((tmp_path / "modules.json").read_text())
    entries[0]["type"] = "sentence_transformers.models.Asym"
    (tmp_path / "modules.json").write_text(json.dumps(entries))
    loaded = SentenceTransformer(str(tmp_path), device="cpu")
    assert isinstance(loaded[0], Router) and loaded[0].default_route is None
    assert _max_diff(loaded.encode(sample_texts, task="QRY"), model.encode(sample_texts, task="QRY")) == 0


# --- errors and plumbing ------------------------------------------------------------------------------------


def test_bad_routes_are_clear_errors(dense_pair, dense_folders, tmp_path):
    ours, _ = dense_pair
    with pytest.raises(
        ValueError, match=r"No route for task 'passage': this Router's routes are \['query', "
    ):
        ours.encode(["a text"], task="passage")
    with pytest.raises(ValueError, match="No route for task"):
        ours.encode([], task="passage")  # checked before any work, even for no texts
    query_folder, _ = dense_folders
    modules = [Transformer(str(query_folder)), Pooling(32, "mean")]
    strict = SentenceTransformer(
        modules=[Router({"query": modules, "document": modules}, allow_empty_key=False)], device="cpu"
    )
    with pytest.raises(ValueError, match="no default route, so each call needs a task"):
        strict.encode(["a text"])
    assert strict.encode_query(["a text"]).shape == (1, 32)
    with pytest.raises(ValueError, match="at least one route"):
        Router({})
    with pytest.raises(ValueError, match=r"Routes \['document'\] have no modules"):
        Router({"query": modules, "document": []})
    with pytest.raises(ValueError, match="default_route 'passage' is not one of the routes"):
        Router({"query": modules}, default_route="passage")
    with pytest.raises(ValueError, match=r"route_mappings point to \['passage'\]"):
        Router({"query": modules}, route_mappings={("document", None): "passage"})
    with pytest.raises(ModelFormatError, match=r"holds no router_config\.json"):
        Router.load(tmp_path)
    (tmp_path / "router_config.json").write_text(
        json.dumps({"types": {"q": "sentence_transformers.models.CNN"}, "structure": {"query": ["q"]}})
    )
    with pytest.raises(
        ModelFormatError, match=r"'sentence_transformers\.models\.CNN', which sentencekit does not"
    ):
        Router.load(tmp_path)
    (tmp_path / "router_config.json").write_text(
        json.dumps(
            {"types": {"../q": "sentence_transformers.models.Pooling"}, "structure": {"query": ["../q"]}}
        )
    )
    with pytest.raises(ModelFormatError, match="outside"):
        Router.load(tmp_path)


def test_cache_keys_tell_routes_apart(splade_pair):
    ours, _ = splade_pair
    dense = SentenceTransformer(modules=[ours[0]], device="cpu", cache=":memory:")
    texts = ["a man is eating food", "the dog plays"]
    query, document = dense.encode_query(texts), dense.encode_document(texts)
    assert _max_diff(query, ours.encode_query(texts)) <= 1e-6
    assert _max_diff(document, ours.encode_document(texts)) <= 1e-5
    assert _max_diff(dense.encode_query(texts), query) == 0, "the second call reads the cached query vectors"
