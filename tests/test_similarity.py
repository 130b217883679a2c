"""sentencekit.similarity against sentence_transformers.util, plus bad-input behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sentencekit import similarity as sk
from sentencekit.errors import InvalidInputError
from sentencekit.types import SimilarityFunction

st_util = pytest.importorskip("sentence_transformers.util")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


MATRIX_FNS = ["cos_sim", "dot_score", "euclidean_sim", "manhattan_sim"]
PAIRWISE_FNS = [
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "pairwise_angle_sim",
]


def _sparse_friendly(n: int, dim: int, seed: int) -> torch.Tensor:
    """Random embeddings with about half of the entries exactly zero."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    return torch.where(torch.rand(n, dim, generator=g) < 0.5, torch.zeros(()), x)


def _close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    assert ours.layout == torch.strided
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours.double(), ref.double(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", MATRIX_FNS)
@pytest.mark.parametrize(("n", "m", "dim"), [(1, 1, 1), (3, 5, 8), (7, 2, 33), (16, 16, 64)])
def test_matrix_functions_match_reference_on_tensors(name, n, m, dim):
    a, b = _sparse_friendly(n, dim, 1), _sparse_friendly(m, dim, 2)
    ours = getattr(sk, name)(a, b)
    _close(ours, getattr(st_util, name)(a, b))
    assert ours.dtype == torch.float32


@pytest.mark.parametrize("name", MATRIX_FNS)
def test_matrix_functions_accept_numpy_lists_and_single_vectors(name):
    a, b = _sparse_friendly(4, 6, 3), _sparse_friendly(5, 6, 4)
    ref = getattr(st_util, name)(a.numpy(), b.numpy())
    _close(getattr(sk, name)(a.numpy(), b.numpy()), ref)
    _close(getattr(sk, name)(a.tolist(), list(b.numpy())), ref)
    _close(getattr(sk, name)(list(a), b), ref)
    one = getattr(sk, name)(a[0], b)  # 1-D is a batch of one
    assert one.shape == (1, 5)
    _close(one, getattr(st_util, name)(a[0], b))


@pytest.mark.parametrize("name", MATRIX_FNS)
@pytest.mark.parametrize("which", ["a", "b", "both"])
def test_matrix_functions_match_reference_on_sparse_inputs(name, which):
    a, b = _sparse_friendly(6, 20, 5), _sparse_friendly(9, 20, 6)
    sa = a.to_sparse() if which in ("a", "both") else a
    sb = b.to_sparse() if which in ("b", "both") else b
    ours = getattr(sk, name)(sa, sb)
    _close(ours, getattr(st_util, name)(sa, sb))
    _close(ours, getattr(sk, name)(a, b))  # sparse and dense agree


def test_sparse_manhattan_is_exact_across_blocks(monkeypatch):
    # force one row of a per block, so the blocked computation is exercised
    monkeypatch.setattr(sk, "_SPARSE_BLOCK_ELEMENTS", 1)
    a, b = _sparse_friendly(5, 12, 7), _sparse_friendly(4, 12, 8)
    _close(sk.manhattan_sim(a.to_sparse(), b.to_sparse()), -torch.cdist(a, b, p=1.0))


def test_sparse_rows_that_are_all_zero():
    a = _sparse_friendly(4, 10, 9)
    a[1] = 0
    b = _sparse_friendly(3, 10, 10)
    for name in MATRIX_FNS:
        _close(getattr(sk, name)(a.to_sparse(), b.to_sparse()), getattr(sk, name)(a, b))
    assert torch.all(sk.cos_sim(a.to_sparse(), b)[1] == 0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes_follow_reference(dtype):
    a, b = torch.randn(3, 8).to(dtype), torch.randn(4, 8).to(dtype)
    for name in MATRIX_FNS:
        ours, ref = getattr(sk, name)(a, b), getattr(st_util, name)(a, b)
        assert ours.dtype == ref.dtype
        _close(ours, ref)


def test_integer_inputs():
    a, b = [[1, 2, 3]], [[4, 5, 6], [0, 0, 1]]
    dot = sk.dot_score(a, b)
    assert dot.dtype == torch.int64  # as the reference: integer in, integer out
    assert dot.tolist() == [[32, 3]]
    # the reference cannot normalize integers; we compute in float32 instead of raising
    _close(sk.cos_sim(a, b), sk.cos_sim(torch.tensor(a, dtype=torch.float32), torch.tensor(b).float()))


def test_mixed_dtypes_are_promoted():
    a, b = torch.randn(2, 4, dtype=torch.float64), torch.randn(3, 4)
    ours = sk.dot_score(a, b)
    assert ours.dtype == torch.float64
    _close(ours, a @ b.double().T)


@pytest.mark.parametrize("name", PAIRWISE_FNS)
@pytest.mark.parametrize(("n", "dim"), [(1, 1), (5, 7), (9, 64)])
def test_pairwise_functions_match_reference(name, n, dim):
    a, b = _sparse_friendly(n, dim, 11), _sparse_friendly(n, dim, 12)
    ours = getattr(sk, name)(a, b)
    assert ours.shape == (n,)
    _close(ours, getattr(st_util, name)(a, b))
    _close(getattr(sk, name)(a.numpy(), b.tolist()), ours)


@pytest.mark.parametrize("name", PAIRWISE_FNS)
@pytest.mark.parametrize("which", ["a", "b", "both"])
def test_pairwise_functions_match_reference_on_sparse_inputs(name, which):
    a, b = _sparse_friendly(6, 10, 13), _sparse_friendly(6, 10, 14)
    sa = a.to_sparse() if which in ("a", "both") else a
    sb = b.to_sparse() if which in ("b", "both") else b
    ours = getattr(sk, name)(sa, sb)
    _close(ours, getattr(st_util, name)(sa, sb))
    _close(ours, getattr(sk, name)(a, b))


def test_pairwise_values_by_hand():
    a = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert sk.pairwise_euclidean_sim(a, b).tolist() == pytest.approx([-5.0, -(2**0.5)])
    assert sk.pairwise_manhattan_sim(a, b).tolist() == [-7.0, -2.0]
    assert sk.pairwise_dot_score(a, b).tolist() == [0.0, 0.0]
    assert sk.pairwise_cos_sim(a, b).tolist() == [0.0, 0.0]


def test_matrix_values_by_hand():
    a = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    b = torch.tensor([[0.0, 2.0]])
    assert sk.cos_sim(a, b).tolist() == [[0.0], [0.800000011920929]]
    assert sk.dot_score(a, b).tolist() == [[0.0], [8.0]]
    assert sk.euclidean_sim(a, b).flatten().tolist() == pytest.approx([-(5**0.5), -(13**0.5)])
    assert sk.manhattan_sim(a, b).tolist() == [[-3.0], [-5.0]]


def test_normalize_embeddings_dense_and_sparse():
    x = _sparse_friendly(6, 9, 15)
    x[2] = 0
    dense = sk.normalize_embeddings(x)
    _close(dense, st_util.normalize_embeddings(x))
    assert torch.allclose(dense.norm(dim=1)[[0, 1, 3, 4, 5]], torch.ones(5))
    assert torch.all(dense[2] == 0)
    sparse = sk.normalize_embeddings(x.to_sparse())
    assert sparse.is_sparse
    _close(sparse.to_dense(), dense)
    single = sk.normalize_embeddings(x[0].to_sparse())
    _close(single.to_dense(), dense[0])
    _close(sk.normalize_embeddings(x.numpy()), dense)


@given(
    n=st.integers(1, 12),
    m=st.integers(1, 12),
    dim=st.integers(1, 24),
    seed=st.integers(0, 2**16),
    name=st.sampled_from(MATRIX_FNS),
)
@settings(max_examples=25, deadline=None)
def test_matrix_functions_match_reference_property(n, m, dim, seed, name):
    a, b = _sparse_friendly(n, dim, seed), _sparse_friendly(m, dim, seed + 1)
    ours = getattr(sk, name)(a, b)
    _close(ours, getattr(st_util, name)(a, b))
    sparse = getattr(sk, name)(a.to_sparse(), b.to_sparse())
    if name == "euclidean_sim":
        # The sparse path expands |a|^2 - 2 a.b + |b|^2, which loses digits when two rows nearly coincide
        # (a distance of 0.008 came out 2.4e-6 off): compare squared distances, within float rounding of
        # the expansion's terms.
        scale = float(a.norm(dim=1).max() ** 2 + b.norm(dim=1).max() ** 2)
        torch.testing.assert_close(
            sparse.double() ** 2, ours.double() ** 2, rtol=1e-6, atol=1e-6 * max(scale, 1)
        )
    else:
        _close(sparse, ours)


@pytest.mark.parametrize("value", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_fn_lookup(value):
    a, b = torch.randn(3, 5), torch.randn(3, 5)
    matrix = sk.similarity_fn(value, pairwise=False)
    pairwise = sk.similarity_fn(SimilarityFunction(value), pairwise=True)
    ref = st_util.SimilarityFunction.to_similarity_fn(value)(a, b)
    _close(matrix(a, b), ref)
    _close(pairwise(a, b), torch.diagonal(ref))


def test_similarity_fn_rejects_unknown_names():
    with pytest.raises(ValueError, match="cosine"):
        sk.similarity_fn("cosinus", pairwise=False)


# ----------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", MATRIX_FNS)
def test_dimension_mismatch_is_a_clear_error(name):
    with pytest.raises(InvalidInputError, match=r"dimension 4 .* dimension 3"):
        getattr(sk, name)(torch.randn(2, 4), torch.randn(2, 3))


@pytest.mark.parametrize("name", PAIRWISE_FNS)
def test_pairwise_shape_mismatch_is_a_clear_error(name):
    with pytest.raises(InvalidInputError, match="dimension"):
        getattr(sk, name)(torch.randn(2, 4), torch.randn(2, 3))
    with pytest.raises(InvalidInputError, match="same number of rows"):
        getattr(sk, name)(torch.randn(2, 4), torch.randn(3, 4))


def test_three_dimensional_input_is_rejected():
    with pytest.raises(InvalidInputError, match=r"\(batch, dim\)"):
        sk.cos_sim(torch.randn(2, 3, 4), torch.randn(2, 4))


def test_ragged_lists_are_rejected():
    with pytest.raises(InvalidInputError, match="could not be converted"):
        sk.dot_score([[1.0, 2.0], [3.0]], [[1.0, 2.0]])
    with pytest.raises(InvalidInputError, match="could not be converted"):
        sk.cos_sim([np.zeros(3), np.zeros(4)], [[1.0, 2.0, 3.0]])
