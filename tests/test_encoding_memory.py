"""Compact token storage and output gathering: same results as before, less held in memory."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from sentencekit import SentenceTransformer
from sentencekit.encoding import parallel
from sentencekit.encoding.batching import pad_token_ids
from sentencekit.encoding.tokens import RaggedIds, tokenize_in_chunks


@pytest.fixture(scope="module")
def tokenizer(tiny_hf_folder: Path):
    return AutoTokenizer.from_pretrained(str(tiny_hf_folder))


@pytest.mark.parametrize("with_types", [True, False])
def test_chunked_tokenization_equals_one_call(tokenizer, sample_texts: list[str], with_types: bool) -> None:
    texts = sample_texts * 3

    def call(start: int, stop: int):
        return tokenizer(texts[start:stop], truncation=True, max_length=16, return_token_type_ids=with_types)

    whole = call(0, len(texts))
    chunked = tokenize_in_chunks(call, len(texts), with_types, chunk=4)
    assert [row.tolist() for row in chunked.input_ids] == whole["input_ids"]
    assert chunked.lengths() == [len(ids) for ids in whole["input_ids"]]
    if with_types:
        assert chunked.token_type_ids is not None
        assert [row.tolist() for row in chunked.token_type_ids] == whole["token_type_ids"]
    else:
        assert chunked.token_type_ids is None
    expected_truncated = sum(1 for e in whole.encodings if e.overflowing)
    assert expected_truncated > 0  # the long sample text, three times
    assert chunked.num_truncated == expected_truncated


def test_ragged_rows_index_like_a_list() -> None:
    rows = [[5, 6, 7], [], [8], [9, 10]]
    packed = RaggedIds.concat([RaggedIds.from_lists(rows[:2]), RaggedIds.from_lists(rows[2:])])
    assert len(packed) == 4
    assert [r.tolist() for r in packed] == rows
    assert packed[-1].tolist() == [9, 10]
    assert [r.tolist() for r in packed[1:3]] == [[], [8]]
    assert packed.lengths().tolist() == [3, 0, 1, 2]
    assert packed.flat.dtype == np.int32
    with pytest.raises(IndexError, match="out of range"):
        packed[4]
    empty = tokenize_in_chunks(lambda a, b: None, 0, True)
    assert len(empty.input_ids) == 0 and empty.lengths() == []


@pytest.mark.parametrize("left", [False, True])
def test_padding_arrays_and_lists_gives_the_same_tensors(left: bool) -> None:
    rows = [[2, 7, 3], [2, 3], [2, 9, 9, 3]]
    types = [[0, 0, 1], [0, 0], [0, 0, 1, 1]]
    from_lists = pad_token_ids(rows, types, 0, left)
    packed, packed_types = RaggedIds.from_lists(rows), RaggedIds.from_lists(types)
    from_arrays = pad_token_ids(list(packed), list(packed_types), 0, left)
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        assert from_arrays[name].dtype == torch.long
        assert torch.equal(from_lists[name], from_arrays[name])
    expected_first = [2, 7, 3, 0] if not left else [0, 2, 7, 3]
    assert from_lists["input_ids"][0].tolist() == expected_first
    assert from_lists["attention_mask"][1].tolist() == ([1, 1, 0, 0] if not left else [0, 0, 1, 1])


def test_run_batches_lets_go_of_results_once_handed_on() -> None:
    class Result:
        pass

    made: list[weakref.ref[Result]] = []

    def work(batch: np.ndarray) -> Result:
        result = Result()
        made.append(weakref.ref(result))
        return result

    batches = [np.array([i]) for i in range(6)]
    seen = 0
    for _, result in parallel.run_batches(batches, work, workers=2):
        del result
        seen += 1
        if seen == 4:
            gc.collect()
            # every result already handed on is gone; the old code kept all of them until the end
            assert all(ref() is None for ref in made[:3])
    assert seen == 6


def test_encode_returns_an_ordinary_tensor_in_input_order(
    tiny_hf_folder: Path, sample_texts: list[str]
) -> None:
    model = SentenceTransformer(str(tiny_hf_folder), device="cpu", backend="torch")
    texts = [*sample_texts, sample_texts[0], sample_texts[2]]  # repeats map back to their first copy
    emb = model.encode(texts, convert_to_tensor=True, batch_size=2)
    assert emb.shape[0] == len(texts)
    assert not emb.is_inference()
    one_by_one = torch.stack([model.encode(t, convert_to_tensor=True) for t in texts])
    torch.testing.assert_close(emb, one_by_one, atol=1e-5, rtol=0)
    emb.mul_(2)  # callers may change the result in place
    truncated = model.encode(texts, convert_to_tensor=True, truncate_dim=8, normalize_embeddings=True)
    assert truncated.shape == (len(texts), 8)
    torch.testing.assert_close(truncated.norm(dim=1), torch.ones(len(texts)))
