"""STSb test Spearman of all-MiniLM-L6-v2 through sentencekit equals the reference's 0.8203 (to 1e-4)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import read_sts
from sentencekit import SentenceTransformer

scipy_stats = pytest.importorskip("scipy.stats")
REFERENCE_SPEARMAN = 0.8203  # sentence-transformers 6.2 on this data, measured here


def test_stsb_test_spearman(minilm_path):
    rows = read_sts("test")
    model = SentenceTransformer(str(minilm_path), device="cpu")
    s1 = model.encode([r[0] for r in rows], batch_size=64)
    s2 = model.encode([r[1] for r in rows], batch_size=64)
    cos = model.similarity_pairwise(s1, s2).numpy()
    spearman = scipy_stats.spearmanr(cos, np.array([r[2] for r in rows])).statistic
    assert abs(spearman - REFERENCE_SPEARMAN) < 1e-4, spearman
