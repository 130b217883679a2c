"""Prompts: named prompts, defaults, and the registry's prompts for known model families."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from sentencekit import SentenceTransformer
from sentencekit.models import Pooling, Transformer


@pytest.fixture(scope="module")
def bge_named_folder(tiny_hf_folder, tmp_path_factory):
    """The tiny model saved under a folder named like a BGE v1.5 model (a family that needs query prompts)."""
    folder = tmp_path_factory.mktemp("m") / "bge-small-en-v1.5"
    shutil.copytree(tiny_hf_folder, folder)
    return folder


def test_encode_query_uses_registry_prompt_when_config_has_none(bge_named_folder, caplog):
    model = SentenceTransformer(str(bge_named_folder), device="cpu")
    query_prompt = "Represent this sentence for searching relevant passages: "
    texts = ["a man is eating food", "a dog plays"]
    with caplog.at_level(logging.WARNING, logger="sentencekit"):
        q = model.encode_query(texts)
        d = model.encode_document(texts)
    np.testing.assert_allclose(q, model.encode(texts, prompt=query_prompt), atol=1e-6)
    np.testing.assert_allclose(d, model.encode(texts, prompt=""), atol=1e-6)
    assert not [r for r in caplog.records if "expects prompts" in r.message]


def test_plain_encode_of_prompted_family_warns_once(bge_named_folder, caplog):
    model = SentenceTransformer(str(bge_named_folder), device="cpu")
    with caplog.at_level(logging.WARNING, logger="sentencekit"):
        model.encode(["one text"])
        model.encode(["another text"])
    warnings = [r for r in caplog.records if "expects prompts" in r.message]
    assert len(warnings) == 1 and "encode_query" in warnings[0].message


def test_model_config_prompts_win_over_registry(bge_named_folder, tmp_path):
    model = SentenceTransformer(
        str(bge_named_folder), device="cpu", prompts={"query": "q: ", "document": "d: "}
    )
    texts = ["a quick brown fox"]
    np.testing.assert_allclose(model.encode_query(texts), model.encode(texts, prompt="q: "), atol=1e-6)
    np.testing.assert_allclose(model.encode_document(texts), model.encode(texts, prompt="d: "), atol=1e-6)


def test_default_prompt_name_and_errors(tiny_hf_folder, tmp_path):
    model = SentenceTransformer(
        modules=[Transformer(tiny_hf_folder), Pooling(32)],
        device="cpu",
        prompts={"query": "query: "},
        default_prompt_name="query",
    )
    texts = ["hello world"]
    np.testing.assert_allclose(model.encode(texts), model.encode(texts, prompt="query: "), atol=1e-6)
    with pytest.raises(ValueError, match="Prompt name 'nope' not found"):
        model.encode(texts, prompt_name="nope")
    with pytest.raises(ValueError, match="default_prompt_name"):
        SentenceTransformer(
            modules=[Transformer(tiny_hf_folder), Pooling(32)], prompts={}, default_prompt_name="x"
        )
    model.save(tmp_path / "saved")
    again = SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert again.prompts == {"query": "query: "} and again.default_prompt_name == "query"


def test_unknown_model_family_gets_no_prompt(tiny_hf_folder):
    model = SentenceTransformer(str(tiny_hf_folder), device="cpu")
    texts = ["hello world"]
    np.testing.assert_allclose(model.encode_query(texts), model.encode(texts), atol=1e-6)
