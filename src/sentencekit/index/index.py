"""The :class:`Index`: vectors with ids and metadata, searched exactly or through FAISS / quantized codes."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sentencekit.errors import InvalidInputError
from sentencekit.index.backends import make_backend
from sentencekit.index.config import Backend, IndexConfig, Metric
from sentencekit.index.filters import MetadataFilter, matches
from sentencekit.index.inputs import as_matrix, check_metadata
from sentencekit.index.persistence import load_index, save_index

__all__ = ["Hit", "Index", "MetadataFilter"]

logger = logging.getLogger(__name__)

Hit = dict[str, Any]
ItemId = int | str

# An approximate backend is asked for k / (fraction of rows that may match) * this many candidates ...
_OVERFETCH = 2
# ... and when fewer than this fraction of the rows may match, the matching rows are searched exactly.
_EXACT_BELOW_FRACTION = 0.02
# lossy backends' candidates are rescored this many queries at a time (a (queries, candidates, dim) block)
_RESCORE_QUERIES = 64


class _Encoder(Protocol):
    def encode(self, sentences: list[str], **kwargs: Any) -> Any: ...

    def get_sentence_embedding_dimension(self) -> int | None: ...


class Index:
    """A searchable collection of vectors, each with an id and optional metadata.

    Args:
        model: Anything with ``encode(texts)`` and ``get_sentence_embedding_dimension()`` (e.g. a
            :class:`~sentencekit.SentenceTransformer`), used to encode texts; or the vector dimension, for
            an index that takes only vectors.
        backend: ``"exact"``, ``"faiss-flat"``, ``"faiss-ivf"``, ``"faiss-hnsw"``, ``"faiss-ivfpq"``,
            ``"binary"`` or ``"int8"`` (see :mod:`sentencekit.index.config`).
        metric: ``"cosine"`` (vectors are normalized when added) or ``"dot"``.
        nlist: IVF clusters (None: ``4 * sqrt(n)``).
        nprobe: IVF clusters searched per query (None: ``max(32, nlist // 16)``).
        hnsw_m: HNSW graph degree.
        ef_construction: HNSW build-time candidate list.
        ef_search: HNSW search-time candidate list.
        pq_m: IVF-PQ sub-quantizers (None: about ``dim / 8``).
        rescore_multiplier: Candidates per result that lossy backends rescore with the float vectors.
        model_name: Recorded in the saved index so that ``sentencekit index search`` can reload the model.

    Example:
        >>> index = Index(model, backend="faiss-hnsw")  # doctest: +SKIP
        >>> index.add(["A man is eating food.", "A cat sleeps."], metadata=[{"lang": "en"}, {"lang": "en"}])
        >>> index.search("Someone eats", k=1, filter={"lang": "en"})
        [[{'id': 0, 'score': 0.71, 'metadata': {'lang': 'en'}}]]

    """

    def __init__(
        self,
        model: _Encoder | int,
        backend: str | Backend = Backend.EXACT,
        metric: str | Metric = Metric.COSINE,
        *,
        nlist: int | None = None,
        nprobe: int | None = None,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        pq_m: int | None = None,
        rescore_multiplier: int = 4,
        model_name: str | None = None,
    ) -> None:
        if isinstance(model, bool) or not (isinstance(model, int) or hasattr(model, "encode")):
            raise InvalidInputError(
                f"Index needs a model with .encode() or a vector dimension (int), got {type(model).__name__}."
            )
        self.model = None if isinstance(model, int) else model
        dim = model if isinstance(model, int) else model.get_sentence_embedding_dimension()
        if dim is None:
            raise InvalidInputError("The model does not report its embedding dimension; pass the dimension.")
        self.config = IndexConfig(
            dim=dim,
            backend=backend,  # type: ignore[arg-type]  # parsed in __post_init__
            metric=metric,  # type: ignore[arg-type]
            nlist=nlist,
            nprobe=nprobe,
            hnsw_m=hnsw_m,
            ef_construction=ef_construction,
            ef_search=ef_search,
            pq_m=pq_m,
            rescore_multiplier=rescore_multiplier,
        )
        self.model_name = model_name
        self._backend = make_backend(self.config)
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._ids: list[ItemId] = []
        self._metadata: list[dict[str, Any] | None] = []
        self._rows: dict[ItemId, int] = {}  # live id -> row
        self._alive = np.zeros(0, dtype=bool)
        self._next_id = 0

    # ---------------------------------------------------------------------------------------- adding

    def _embed(self, items: Any, name: str) -> np.ndarray:
        if isinstance(items, str):
            items = [items]
        if isinstance(items, (list, tuple)) and items and all(isinstance(t, str) for t in items):
            if self.model is None:
                raise InvalidInputError(
                    f"{name} are texts but this index has no model; create it with Index(model) or pass "
                    "vectors."
                )
            vectors = as_matrix(self.model.encode(list(items)), name)
        else:
            vectors = as_matrix(items, name)
        if vectors.shape[1] != self.config.dim:
            raise InvalidInputError(
                f"{name} have dimension {vectors.shape[1]} but the index holds {self.config.dim}-dim "
                "vectors; "
                "use the model the index was built with."
            )
        if self.config.metric == Metric.COSINE:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms == 0, 1, norms)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def add(
        self,
        items: Sequence[str] | Any,
        ids: Sequence[ItemId] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[ItemId]:
        """Add texts (encoded with the model) or vectors.

        Args:
            items: Texts, or a ``(n, dim)`` array / tensor (or one ``(dim,)`` vector).
            ids: One int or str id per item, unique in the index; None numbers them on from the largest
                integer id so far.
            metadata: One JSON-serializable dict (or None) per item, returned with hits and filterable.

        Returns:
            The ids of the added items.

        Raises:
            InvalidInputError: On a dimension mismatch, NaN values, lengths that differ, bad or duplicate ids,
                or metadata that is not JSON-serializable. Nothing is added then.

        """
        vectors = self._embed(items, "items")
        n = len(vectors)
        new_ids = self._check_ids(ids, n)
        meta = check_metadata(metadata, n)
        start = len(self._ids)
        self._vectors = np.concatenate([self._vectors, vectors]) if start else vectors
        self._alive = np.concatenate([self._alive, np.ones(n, dtype=bool)])
        self._ids.extend(new_ids)
        self._metadata.extend(meta)
        for offset, item_id in enumerate(new_ids):
            self._rows[item_id] = start + offset
            if isinstance(item_id, int):
                self._next_id = max(self._next_id, item_id + 1)
        return new_ids

    def _check_ids(self, ids: Sequence[ItemId] | None, n: int) -> list[ItemId]:
        if ids is None:
            return list(range(self._next_id, self._next_id + n))
        ids = list(ids)
        if len(ids) != n:
            raise InvalidInputError(f"Got {len(ids)} ids for {n} items; pass one id per item (or none).")
        bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, (int, str))]
        if bad:
            raise InvalidInputError(f"Ids must be int or str, got {bad[:5]!r}.")
        seen: set[ItemId] = set()
        duplicates = [i for i in ids if i in self._rows or i in seen or seen.add(i)]  # type: ignore[func-returns-value]
        if duplicates:
            raise InvalidInputError(
                f"Duplicate ids {duplicates[:10]!r}: ids must be unique. Delete the old items first to "
                "replace them."
            )
        return ids

    def delete(self, ids: Iterable[ItemId]) -> int:
        """Delete items by id; they stop matching at once and are dropped from disk on the next save.

        Raises:
            InvalidInputError: If an id is not in the index (nothing is deleted then).

        """
        ids = list(ids)
        missing = [i for i in ids if i not in self._rows]
        if missing:
            raise InvalidInputError(f"Ids {missing[:10]!r} are not in the index; nothing was deleted.")
        for item_id in ids:
            self._alive[self._rows.pop(item_id)] = False
        return len(ids)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    # ---------------------------------------------------------------------------------------- search

    def search(
        self, queries: str | Sequence[str] | Any, k: int = 10, filter: MetadataFilter | None = None
    ) -> list[list[Hit]]:
        """Return the ``k`` best items per query, best first.

        Args:
            queries: A text, texts, a ``(dim,)`` vector or a ``(n, dim)`` array.
            k: Results per query (fewer when fewer items exist or match).
            filter: Keep only items whose metadata satisfies this: a callable taking the metadata dict
                (``{}`` for items without metadata) or a dict of fields that must be equal.

        Returns:
            One list per query of ``{"id", "score", "metadata"}`` dicts sorted by score, best first.

        Raises:
            InvalidInputError: On an empty index, ``k <= 0``, wrong dimensions or a bad filter.

        """
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}.")
        if not self._rows:
            raise InvalidInputError("The index is empty; add() items before searching.")
        q = self._embed(queries, "queries")
        allowed = self._alive
        if filter is not None:
            match = matches(filter)
            allowed = self._alive.copy()
            allowed[allowed] = [match(self._metadata[r]) for r in np.flatnonzero(allowed)]
        n_allowed = int(allowed.sum())
        if n_allowed == 0:
            return [[] for _ in q]
        k_eff = min(k, n_allowed)
        fraction = n_allowed / len(self._vectors)
        if fraction < _EXACT_BELOW_FRACTION:
            scores, rows = self._exact_subset(q, allowed, k_eff)
        else:
            scores, rows = self._search_backend(q, allowed, k_eff, fraction)
        return [
            [
                {"id": self._ids[r], "score": float(s), "metadata": self._metadata[r]}
                for s, r in zip(row_scores, row_rows, strict=True)
                if r >= 0
            ]
            for row_scores, row_rows in zip(scores, rows, strict=True)
        ]

    def _search_backend(
        self, q: np.ndarray, allowed: np.ndarray, k: int, fraction: float
    ) -> tuple[np.ndarray, np.ndarray]:
        self._backend.sync(self._vectors)
        n = len(self._vectors)
        fetch = k if fraction == 1.0 else min(n, math.ceil(k / fraction * _OVERFETCH))
        if self.config.backend.rescores:
            fetch = min(n, fetch * self.config.rescore_multiplier)
        scores, rows = self._backend.search(self._vectors, q, fetch)
        safe = np.where(rows >= 0, rows, 0)
        usable = (rows >= 0) & allowed[safe]
        if self.config.backend.rescores:  # rank the candidates by their float scores
            scores = np.empty(rows.shape, dtype=np.float32)
            for start in range(0, len(q), _RESCORE_QUERIES):
                block = slice(start, start + _RESCORE_QUERIES)
                scores[block] = np.einsum("qfd,qd->qf", self._vectors[safe[block]], q[block])
        scores = np.where(usable, scores, -np.inf).astype(np.float32)
        order = np.lexsort((safe, -scores))[:, :k]  # best score first; equal scores: lower row first
        out_scores = np.take_along_axis(scores, order, axis=1)
        out_rows = np.where(np.isfinite(out_scores), np.take_along_axis(rows, order, axis=1), -1)
        short = np.flatnonzero(usable.sum(axis=1) < k).tolist()
        if short:  # the approximate search found too few matching rows: search those exactly
            logger.debug("%d queries fell back to exact search over the matching rows", len(short))
            exact_scores, exact_rows = self._exact_subset(q[short], allowed, k)
            out_scores[short], out_rows[short] = exact_scores, exact_rows
        return out_scores, out_rows

    def _exact_subset(self, q: np.ndarray, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from sentencekit.search import semantic_search
        from sentencekit.similarity import dot_score

        subset = np.flatnonzero(allowed)
        hits = semantic_search(
            torch.from_numpy(q), torch.from_numpy(self._vectors[subset]), top_k=k, score_function=dot_score
        )
        scores = np.array([[h["score"] for h in row] for row in hits], dtype=np.float32)
        rows = np.array([[subset[int(h["corpus_id"])] for h in row] for row in hits], dtype=np.int64)
        return scores, rows

    # ---------------------------------------------------------------------------------- persistence

    def save(self, path: str | Path) -> None:
        """Save the index to the folder ``path`` atomically, replacing any index saved there before.

        Deleted items are dropped first (an approximate structure is then rebuilt). A process killed during
        the save leaves the previous index intact and loadable (see :mod:`sentencekit.index.storage`).
        """
        save_index(self, path)

    @classmethod
    def load(cls, path: str | Path, model: _Encoder | None = None) -> Index:
        """Load an index saved with :meth:`save`, verifying every file's checksum.

        Args:
            path: The index folder.
            model: The model to encode text queries with (the one the index was built with).

        Raises:
            FileNotFoundError: If there is no index at ``path``.
            IndexCorruptedError: If a file is missing or damaged; the message names it.

        """
        return load_index(cls, path, model)

    def info(self) -> dict[str, Any]:
        """Backend, metric, dimension, counts, memory in bytes and the effective parameters."""
        if len(self._vectors):
            self._backend.sync(self._vectors)  # builds a lazily trained structure, so its size counts
        vector_bytes = self._vectors.nbytes
        structure_bytes = self._backend.nbytes()
        return {
            "backend": self.config.backend.value,
            "metric": self.config.metric.value,
            "dim": self.config.dim,
            "count": len(self),
            "deleted": int((~self._alive).sum()),
            "memory_bytes": vector_bytes + structure_bytes,
            "vector_bytes": vector_bytes,
            "structure_bytes": structure_bytes,
            "params": {**self.config.to_dict(), **self._backend.params()},
            "model_name": self.model_name,
        }

    def __repr__(self) -> str:
        return f"Index(backend={self.config.backend.value!r}, dim={self.config.dim}, count={len(self)})"
