"""The search structures behind an :class:`~sentencekit.index.Index`, one class per family.

Every backend searches the index's float vectors (row ``i`` is the ``i``-th vector ever added, deleted or
not; the index filters deleted rows) and answers ``(scores, rows)`` arrays padded with row ``-1``. Structures
that need training (IVF, PQ, int8 ranges) are built lazily, at the first search or save after vectors were
added, and rebuilt when the index has grown four-fold since they were trained, so that clusters and ranges
keep fitting the data. Vectors added to a trained structure are appended to it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from sentencekit._optional import require
from sentencekit.index.config import Backend, IndexConfig

__all__ = ["VectorBackend", "make_backend"]

logger = logging.getLogger(__name__)

# Rebuild a trained structure when the index has grown this many times past the rows it was trained on.
_RETRAIN_GROWTH = 4
# IVF k-means is trained on at most this many rows per cluster (FAISS asks for at least 39).
_TRAIN_ROWS_PER_LIST = 40
# faiss.write_index's file inside a saved index folder
_FAISS_FILE = "faiss.index"
# binary/int8 codes are widened to float32 this many rows at a time (100 MB at 384 dims)
_DECODE_BLOCK_ROWS = 1 << 16


class VectorBackend:
    """The protocol every backend follows: ``sync`` to the vectors, ``search``, ``save``/``load``.

    Args:
        config: The index settings.

    """

    _trains = False  # whether part of the structure is fitted to the data (and refitted as it grows)

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self.rows = 0  # vectors the structure holds (a prefix of the index's rows)
        self.trained_on = 0  # rows the trained part (clusters, ranges) was fitted on; 0 if not trained

    def sync(self, vectors: np.ndarray) -> None:
        """Bring the structure up to date with ``vectors`` (all rows, float32, C-contiguous)."""
        if self.rows == len(vectors):
            return
        needs_training = self.trained_on == 0 or len(vectors) > _RETRAIN_GROWTH * self.trained_on
        if self.rows == 0 or (self._trains and needs_training):
            self._build(vectors)
            self.rows, self.trained_on = len(vectors), len(vectors)
        else:
            self._append(vectors[self.rows :])
            self.rows = len(vectors)

    def reset(self) -> None:
        """Forget the structure (after rows were compacted away); the next ``sync`` rebuilds it."""
        self.rows = 0
        self.trained_on = 0

    def _build(self, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def _append(self, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def search(self, vectors: np.ndarray, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``fetch`` best rows per query: ``(scores, rows)``, both ``(queries, fetch)``, -1 padded."""
        raise NotImplementedError

    def nbytes(self) -> int:
        """Bytes held by the structure beyond the float vectors (estimated for FAISS)."""
        return 0

    def params(self) -> dict[str, Any]:
        """The effective parameters (e.g. the ``nlist`` actually chosen)."""
        return {}

    def save(self, folder: Path) -> list[str]:
        """Write the structure into ``folder``; return the file names written."""
        return []

    def load(self, folder: Path, state: dict[str, Any]) -> None:
        """Read back what :meth:`save` wrote; ``state`` is :meth:`state` as saved."""
        self.rows, self.trained_on = int(state["rows"]), int(state["trained_on"])

    def state(self) -> dict[str, Any]:
        """Small JSON state saved in the manifest."""
        return {"rows": self.rows, "trained_on": self.trained_on}


def _pad(hits: list[list[dict[str, int | float]]], fetch: int) -> tuple[np.ndarray, np.ndarray]:
    scores = np.full((len(hits), fetch), -np.inf, dtype=np.float32)
    rows = np.full((len(hits), fetch), -1, dtype=np.int64)
    for q, query_hits in enumerate(hits):
        for j, hit in enumerate(query_hits[:fetch]):
            scores[q, j], rows[q, j] = hit["score"], hit["corpus_id"]
    return scores, rows


class ExactBackend(VectorBackend):
    """Brute force over the float vectors with :func:`sentencekit.search.semantic_search`."""

    def sync(self, vectors: np.ndarray) -> None:
        self.rows = len(vectors)

    def search(self, vectors: np.ndarray, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from sentencekit.search import semantic_search
        from sentencekit.similarity import dot_score

        hits = semantic_search(
            torch.from_numpy(queries), torch.from_numpy(vectors), top_k=fetch, score_function=dot_score
        )
        return _pad(hits, fetch)


class FaissBackend(VectorBackend):
    """``IndexFlatIP``, ``IndexIVFFlat``, ``IndexHNSWFlat`` or ``IndexIVFPQ`` (inner product)."""

    def __init__(self, config: IndexConfig) -> None:
        super().__init__(config)
        self.faiss = require("faiss", extra="faiss", purpose=f"the {config.backend.value!r} index backend")
        self.index: Any = None
        self._trains = config.backend in (Backend.FAISS_IVF, Backend.FAISS_IVFPQ)

    def _new_index(self, n: int) -> Any:
        faiss, cfg, dim = self.faiss, self.config, self.config.dim
        if cfg.backend == Backend.FAISS_FLAT:
            return faiss.IndexFlatIP(dim)
        if cfg.backend == Backend.FAISS_HNSW:
            index = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.ef_construction
            return index
        nlist = cfg.nlist_for(n)
        quantizer = faiss.IndexFlatIP(dim)
        if cfg.backend == Backend.FAISS_IVF:
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            # 8 bits per code needs 256 centroids per sub-quantizer; fewer rows get fewer bits
            nbits = max(1, min(8, int(math.log2(max(2, n // 39)))))
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, cfg.pq_m_for(), nbits, faiss.METRIC_INNER_PRODUCT)
        index.own_fields = True
        quantizer.this.disown()  # the IVF index frees its quantizer
        return index

    def _build(self, vectors: np.ndarray) -> None:
        self.index = self._new_index(len(vectors))
        if not self.index.is_trained:
            rng = np.random.default_rng(0)
            limit = _TRAIN_ROWS_PER_LIST * self.index.nlist
            if self.config.backend == Backend.FAISS_IVFPQ:
                limit = max(limit, 256 * 39)
            sample = vectors
            if len(vectors) > limit:
                sample = vectors[np.sort(rng.choice(len(vectors), limit, replace=False))]
            logger.info(
                "Training %s on %d of %d vectors", self.config.backend.value, len(sample), len(vectors)
            )
            self.index.train(sample)
        self.index.add(vectors)

    def _append(self, vectors: np.ndarray) -> None:
        self.index.add(vectors)

    def search(self, vectors: np.ndarray, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        self._tune(fetch)
        scores, rows = self.index.search(queries, fetch)
        return scores, rows.astype(np.int64)

    def _tune(self, fetch: int) -> None:
        if self.config.backend == Backend.FAISS_HNSW:
            self.index.hnsw.efSearch = max(self.config.ef_search, fetch)
        elif self.config.backend in (Backend.FAISS_IVF, Backend.FAISS_IVFPQ):
            self.index.nprobe = self.config.nprobe_for(self.index.nlist)

    def nbytes(self) -> int:
        if self.index is None:
            return 0
        n, dim, cfg = self.index.ntotal, self.config.dim, self.config
        if cfg.backend == Backend.FAISS_FLAT:
            return n * dim * 4
        if cfg.backend == Backend.FAISS_HNSW:
            return n * dim * 4 + n * cfg.hnsw_m * 2 * 4 * 21 // 20  # level 0 has 2M links; upper levels ~5%
        centroids = self.index.nlist * dim * 4
        if cfg.backend == Backend.FAISS_IVF:
            return centroids + n * (dim * 4 + 8)
        return centroids + n * (self.index.code_size + 8) + dim * (1 << self.index.pq.nbits) * 4

    def params(self) -> dict[str, Any]:
        if self.index is None or self.config.backend in (Backend.FAISS_FLAT, Backend.FAISS_HNSW):
            return {}
        out = {"nlist": self.index.nlist, "nprobe": self.config.nprobe_for(self.index.nlist)}
        if self.config.backend == Backend.FAISS_IVFPQ:
            out.update(pq_m=self.index.pq.M, pq_nbits=self.index.pq.nbits)
        return out

    def save(self, folder: Path) -> list[str]:
        if self.index is None:
            return []
        self.faiss.write_index(self.index, str(folder / _FAISS_FILE))
        return [_FAISS_FILE]

    def load(self, folder: Path, state: dict[str, Any]) -> None:
        super().load(folder, state)
        if (folder / _FAISS_FILE).exists():
            self.index = self.faiss.read_index(str(folder / _FAISS_FILE))


class QuantizedBackend(VectorBackend):
    """Binary (packed sign bits, Hamming) or int8 (per-dimension buckets) codes, searched brute force."""

    def __init__(self, config: IndexConfig) -> None:
        super().__init__(config)
        self.precision = "ubinary" if config.backend == Backend.BINARY else "int8"
        self._trains = config.backend == Backend.INT8  # the int8 ranges are fitted to the data
        self.codes: np.ndarray | None = None
        self.ranges: np.ndarray | None = None

    def _build(self, vectors: np.ndarray) -> None:
        from sentencekit.quantization import quantization_ranges

        if self.precision == "int8":
            # two rows at least: with a single one, every dimension's range would be empty
            self.ranges = quantization_ranges(vectors if len(vectors) > 1 else np.vstack([vectors, -vectors]))
        self.codes = self._quantize(vectors)

    def _append(self, vectors: np.ndarray) -> None:
        assert self.codes is not None
        self.codes = np.concatenate([self.codes, self._quantize(vectors)])

    def _quantize(self, vectors: np.ndarray) -> np.ndarray:
        from sentencekit.quantization import quantize_embeddings

        return np.asarray(quantize_embeddings(vectors, self.precision, ranges=self.ranges))

    def search(self, vectors: np.ndarray, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """Score the float queries against the decoded codes (asymmetric: only the corpus is quantized).

        Binary codes decode to +-1 per dimension, int8 codes to their bucket centres. Quantizing the queries
        too would lose recall (Hamming distance ignores the query's magnitudes; int8 products weight each
        dimension by its bucket width). The codes are widened to float32 a block at a time.
        """
        import torch

        assert self.codes is not None
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if self.precision == "int8":
            assert self.ranges is not None
            low, high = self.ranges.astype(np.float32)
            width = (high - low) / 255
            width = np.where(width == 0, 1, width)
            # value ~ (code + 128.5) * width + low, so q . value = (q * width) . (code + 128.5) + q . low
            weights = torch.from_numpy(np.ascontiguousarray(q * width))
            offset = torch.from_numpy(q @ low + 128.5 * (q * width).sum(axis=1))

            def decode(block: np.ndarray) -> torch.Tensor:
                return torch.from_numpy(block).to(torch.float32)

        else:
            weights, offset = torch.from_numpy(q), torch.zeros(len(q))

            def decode(block: np.ndarray) -> torch.Tensor:
                bits = np.unpackbits(block, axis=1, count=self.config.dim)
                return torch.from_numpy(bits).to(torch.float32) * 2 - 1

        best: tuple[torch.Tensor, torch.Tensor] | None = None
        for start in range(0, len(self.codes), _DECODE_BLOCK_ROWS):
            block = decode(self.codes[start : start + _DECODE_BLOCK_ROWS])
            top, pos = torch.topk(weights @ block.T + offset[:, None], min(fetch, len(block)), dim=1)
            pos = pos + start
            if best is not None:
                top, pos = torch.cat([best[0], top], 1), torch.cat([best[1], pos], 1)
                top, order = torch.topk(top, min(fetch, top.shape[1]), dim=1)
                pos = pos.gather(1, order)
            best = (top, pos)
        assert best is not None
        scores = np.full((len(q), fetch), -np.inf, dtype=np.float32)
        rows = np.full((len(q), fetch), -1, dtype=np.int64)
        scores[:, : best[0].shape[1]], rows[:, : best[1].shape[1]] = best[0].numpy(), best[1].numpy()
        return scores, rows

    def nbytes(self) -> int:
        return 0 if self.codes is None else self.codes.nbytes

    def save(self, folder: Path) -> list[str]:
        if self.codes is None:
            return []
        np.save(folder / "codes.npy", self.codes)
        names = ["codes.npy"]
        if self.ranges is not None:
            np.save(folder / "ranges.npy", self.ranges)
            names.append("ranges.npy")
        return names

    def load(self, folder: Path, state: dict[str, Any]) -> None:
        super().load(folder, state)
        if (folder / "codes.npy").exists():
            self.codes = np.load(folder / "codes.npy")
        if (folder / "ranges.npy").exists():
            self.ranges = np.load(folder / "ranges.npy")


def make_backend(config: IndexConfig) -> VectorBackend:
    """The backend object for ``config.backend`` (FAISS is imported here, and only for FAISS backends)."""
    if config.backend == Backend.EXACT:
        return ExactBackend(config)
    if config.backend.uses_faiss:
        return FaissBackend(config)
    return QuantizedBackend(config)
