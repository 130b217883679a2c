"""Embed anchors and corpus (cached on disk when asked), retrieve each anchor's best candidates, rescore them.

Rescoring is optional: a ``cross_encoder`` (anything shaped like :class:`_Reranker`) replaces the embedding
scores of the candidates and of the (anchor, positive) rows.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from sentencekit._optional import require
from sentencekit.search import semantic_search

# the package's one logger, named as it was before the package was split into modules
logger = logging.getLogger("sentencekit.hard_negatives")


class _Reranker(Protocol):
    """What ``cross_encoder`` must offer: one score per (query, text) pair, like ``CrossEncoder.predict``."""

    def predict(self, sentences: list[tuple[str, str]], batch_size: int = ...) -> Any: ...


def _embed(
    texts: list[str],
    role: str,
    prompt_name: str | None,
    prompt: str | None,
    *,
    model: Any,
    batch_size: int,
    verbose: bool,
    cache_folder: str | None,
) -> Tensor:
    """Unit-length embeddings from ``encode_query`` / ``encode_document``, cached on disk when asked."""
    path = None
    if cache_folder is not None:
        card = getattr(model, "model_card_data", None)
        name = getattr(card, "base_model", None) or getattr(model, "model_id", None)
        key = repr((name, role, prompt_name, prompt, texts)).encode()
        path = Path(cache_folder) / f"{role}_embeddings_{hashlib.sha256(key).hexdigest()}.npy"
        if path.is_file():
            logger.info("Loaded the %s embeddings from %s.", role, path)
            return torch.from_numpy(np.load(path))
    kwargs: dict[str, Any] = {
        "batch_size": batch_size,
        "normalize_embeddings": True,
        "show_progress_bar": verbose,
    }
    # only what is set is passed, so that encode_query/encode_document can fall back to the model's prompts
    optional = {"prompt_name": prompt_name, "prompt": prompt}
    kwargs |= {key: value for key, value in optional.items() if value is not None}
    encode = getattr(model, f"encode_{role}", None) or model.encode
    embeddings = np.asarray(encode(texts, convert_to_numpy=True, **kwargs))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, embeddings)
    return torch.from_numpy(embeddings)


def _retrieve(
    model: Any, queries: Tensor, corpus: Tensor, k: int, faiss: bool, chunk: int
) -> tuple[Tensor, Tensor]:
    """The ``k`` best corpus ids per query with their scores, best first: two ``(queries, k)`` tensors."""
    if faiss:
        index = require("faiss", extra="faiss", purpose="use_faiss=True").IndexFlatIP(corpus.shape[1])
        index.add(corpus.float().numpy())
    ids, scores = [], []
    # chunks of queries bound the memory that the hits take before they are packed into tensors
    for start in range(0, len(queries), chunk):
        block = queries[start : start + chunk]
        if faiss:
            block_scores, block_ids = (torch.from_numpy(a) for a in index.search(block.float().numpy(), k))
        else:
            hits = semantic_search(block, corpus, top_k=k, score_function=model.similarity)
            block_ids = torch.tensor([[hit["corpus_id"] for hit in row] for row in hits])
            block_scores = torch.tensor([[hit["score"] for hit in row] for row in hits], dtype=torch.float32)
        ids.append(block_ids.long())
        scores.append(block_scores)
    return torch.cat(ids), torch.cat(scores)


def _rescore(
    reranker: _Reranker,
    queries: list[str],
    texts: list[str],
    ids: Tensor,
    rows: list[tuple[int, int]],
    batch: int,
) -> tuple[Tensor, Tensor]:
    """Cross-encoder scores of every candidate (shaped like ``ids``) and of every (anchor, positive) row."""
    pairs = [(queries[qi], texts[c]) for qi, row in enumerate(ids.tolist()) for c in row]
    pairs += [(queries[qi], texts[pid]) for qi, pid in rows]
    scores = torch.as_tensor(np.asarray(reranker.predict(pairs, batch_size=batch), dtype=np.float32))
    if scores.shape != (len(pairs),):
        raise ValueError(
            f"cross_encoder.predict returned shape {tuple(scores.shape)} for {len(pairs)} pairs; it must "
            "return one score per pair (a CrossEncoder with num_labels=1)."
        )
    return scores[: ids.numel()].reshape(ids.shape), scores[ids.numel() :]
