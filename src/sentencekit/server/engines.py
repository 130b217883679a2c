"""What the worker threads run: one embedding engine and one rerank engine, each over a loaded model.

An engine counts tokens (on the request's side, so the batcher can budget them), checks inputs that
depend on the model (token ids, prompt names, dimensions), and runs one step of many requests with the
public :meth:`SentenceTransformer.encode` / :meth:`CrossEncoder.predict`, splitting the result back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from sentencekit.errors import InvalidInputError

__all__ = ["EmbedJob", "EmbeddingEngine", "RerankEngine", "RerankJob", "matryoshka"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedJob:
    """The texts of one request, with the prompt they are encoded with."""

    texts: list[str]
    prompt_name: str | None = None


@dataclass(frozen=True)
class RerankJob:
    """One query and its documents; ``raw_scores`` skips the model's activation (logits)."""

    query: str
    documents: list[str]
    raw_scores: bool = False


def matryoshka(embeddings: np.ndarray, dimensions: int) -> np.ndarray:
    """Keep the first ``dimensions`` columns and scale each row back to unit length (zero rows stay zero)."""
    cut = np.ascontiguousarray(embeddings[:, :dimensions], dtype=np.float32)
    norms = np.linalg.norm(cut, axis=1, keepdims=True)
    return cut / np.where(norms == 0, 1, norms)


class EmbeddingEngine:
    """Encodes the texts of many requests in one :meth:`~sentencekit.SentenceTransformer.encode` call.

    Args:
        model: A loaded :class:`~sentencekit.SentenceTransformer`.
        batch_size: Rows per forward pass.
    """

    def __init__(self, model: Any, *, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size
        dimension = model.get_sentence_embedding_dimension()
        if dimension is None:
            raise InvalidInputError("The embedding model does not report its dimension; it cannot be served.")
        self.dimension = int(dimension)
        self.max_seq_length = int(model.max_seq_length)

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer."""
        return self.model.tokenizer

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model reads for ``texts`` (special tokens included, truncated at its limit)."""
        return sum(self.model.input_module.tokenize_unpadded(texts).lengths())

    def decode(self, token_lists: list[list[int]]) -> list[str]:
        """Turn lists of this model's token ids back into texts (special tokens dropped).

        Raises:
            InvalidInputError: For an id outside the tokenizer's vocabulary, naming its position.
        """
        size = len(self.tokenizer)
        for i, ids in enumerate(token_lists):
            for j, token in enumerate(ids):
                if not 0 <= token < size:
                    raise InvalidInputError(
                        f"input[{i}][{j}] = {token} is not a token id of this model's tokenizer "
                        f"(ids are 0..{size - 1}); send text, or ids made by this model's tokenizer."
                    )
        texts: list[str] = self.tokenizer.batch_decode(token_lists, skip_special_tokens=True)
        return texts

    def check_prompt(self, prompt_name: str | None) -> None:
        """Raise :class:`InvalidInputError` unless ``prompt_name`` is one of the model's prompts."""
        if prompt_name is not None and prompt_name not in self.model.prompts:
            known = sorted(self.model.prompts) or "none"
            raise InvalidInputError(
                f"prompt_name {prompt_name!r} is not a prompt of this model (it has: {known})."
            )

    def check_dimensions(self, dimensions: int | None) -> None:
        """Raise :class:`InvalidInputError` unless ``dimensions`` is None or in ``1..dimension``."""
        if dimensions is not None and not 1 <= dimensions <= self.dimension:
            raise InvalidInputError(
                f"dimensions={dimensions} is out of range: this model's embeddings have {self.dimension} "
                f"dimensions; ask for 1..{self.dimension}."
            )

    def run_batch(self, jobs: list[EmbedJob]) -> list[np.ndarray]:
        """Encode every job's texts, one ``encode`` call per prompt; returns one float32 array per job."""
        groups: dict[str | None, list[int]] = {}
        for position, job in enumerate(jobs):
            groups.setdefault(job.prompt_name, []).append(position)
        results: list[np.ndarray] = [np.empty(0)] * len(jobs)
        for prompt_name, positions in groups.items():
            texts = [text for p in positions for text in jobs[p].texts]
            embeddings = self.model.encode(
                texts,
                prompt_name=prompt_name,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            start = 0
            for p in positions:
                end = start + len(jobs[p].texts)
                results[p] = embeddings[start:end]
                start = end
        return results


class RerankEngine:
    """Scores the (query, document) pairs of many requests in one ``CrossEncoder.predict`` call.

    Args:
        cross_encoder: A loaded :class:`~sentencekit.cross_encoder.CrossEncoder` with one label.
        batch_size: Pairs per forward pass.

    Raises:
        InvalidInputError: If the cross-encoder has more than one label (it classifies, it does not rank).
    """

    def __init__(self, cross_encoder: Any, *, batch_size: int) -> None:
        if cross_encoder.num_labels != 1:
            raise InvalidInputError(
                f"A reranker needs a cross-encoder with one score per pair; this one has "
                f"{cross_encoder.num_labels} labels."
            )
        self.model = cross_encoder
        self.batch_size = batch_size

    def count_tokens(self, query: str, documents: list[str]) -> int:
        """Tokens of all (query, document) pairs, truncated as the model truncates them."""
        enc = self.model.tokenizer(
            [query] * len(documents),
            documents,
            truncation="longest_first",
            max_length=self.model.max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return sum(len(ids) for ids in enc["input_ids"])

    def run_batch(self, jobs: list[RerankJob]) -> list[np.ndarray]:
        """Score every job's pairs; returns one float32 array of scores per job, in document order."""
        import torch

        pairs = [(job.query, doc) for job in jobs for doc in job.documents]
        logits = self.model.predict(
            pairs,
            batch_size=self.batch_size,
            show_progress_bar=False,
            activation_fn=torch.nn.Identity(),
            convert_to_tensor=True,
        )
        activation = self.model.activation_fn
        results: list[np.ndarray] = []
        start = 0
        for job in jobs:
            scores = logits[start : start + len(job.documents)]
            start += len(job.documents)
            if not job.raw_scores and activation is not None:
                with torch.inference_mode():
                    scores = activation(scores)
            results.append(scores.float().cpu().numpy().astype(np.float32, copy=False))
        return results
