"""What an :class:`~sentencekit.index.Index` is built with: its backend, metric and tuning knobs.

==================  ======================================================  ===============  ============
backend             structure                                               recall           extra
==================  ======================================================  ===============  ============
``exact``           the float vectors; chunked matrix product (torch)       1.0              none
``faiss-flat``      ``IndexFlatIP``: brute force inside FAISS               1.0              ``faiss``
``faiss-ivf``       ``IndexIVFFlat``: ``nlist`` clusters, ``nprobe`` read   high (nprobe)    ``faiss``
``faiss-hnsw``      ``IndexHNSWFlat``: a graph of degree ``hnsw_m``         high (ef)        ``faiss``
``faiss-ivfpq``     ``IndexIVFPQ`` candidates, rescored with the floats     good             ``faiss``
``binary``          packed sign bits, Hamming candidates, float rescoring   good             none
``int8``            int8 buckets, inner-product candidates, float rescore   high             none
==================  ======================================================  ===============  ============
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from sentencekit.errors import InvalidInputError

__all__ = ["Backend", "IndexConfig", "Metric"]


class Backend(str, Enum):
    """How the vectors are searched (see the module docstring)."""

    EXACT = "exact"
    FAISS_FLAT = "faiss-flat"
    FAISS_IVF = "faiss-ivf"
    FAISS_HNSW = "faiss-hnsw"
    FAISS_IVFPQ = "faiss-ivfpq"
    BINARY = "binary"
    INT8 = "int8"

    @classmethod
    def parse(cls, value: str | Backend) -> Backend:
        """Return the member for ``value`` or raise a ValueError listing the valid names."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(repr(b.value) for b in cls)
            raise InvalidInputError(f"Unknown index backend {value!r}; choose one of {valid}.") from None

    @property
    def uses_faiss(self) -> bool:
        """Whether the backend needs the ``faiss`` extra."""
        return self.value.startswith("faiss-")

    @property
    def rescores(self) -> bool:
        """Whether candidates are re-ranked with the float vectors (lossy stored vectors)."""
        return self in (Backend.FAISS_IVFPQ, Backend.BINARY, Backend.INT8)


class Metric(str, Enum):
    """The score of a hit: cosine similarity (vectors normalized when added) or the raw inner product."""

    COSINE = "cosine"
    DOT = "dot"

    @classmethod
    def parse(cls, value: str | Metric) -> Metric:
        """Return the member for ``value`` or raise a ValueError listing the valid names."""
        try:
            return cls(value)
        except ValueError:
            raise InvalidInputError(f"Unknown metric {value!r}; choose 'cosine' or 'dot'.") from None


def _positive(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise InvalidInputError(f"{name} must be a positive integer or None, got {value!r}.")


@dataclass(frozen=True)
class IndexConfig:
    """The settings of an index; saved with it, so a loaded index searches exactly as the saved one did.

    Args:
        dim: Dimension of the vectors.
        backend: See :class:`Backend`.
        metric: See :class:`Metric`.
        nlist: IVF clusters; None picks ``4 * sqrt(n)`` when the structure is built.
        nprobe: IVF clusters read per query; None picks ``max(32, nlist // 16)``.
        hnsw_m: HNSW graph degree.
        ef_construction: HNSW candidate list while building.
        ef_search: HNSW candidate list while searching (raised to ``k`` when smaller).
        pq_m: IVF-PQ sub-quantizers (must divide ``dim``); None picks ``dim / 8`` or the closest divisor.
        rescore_multiplier: Lossy backends fetch ``k * rescore_multiplier`` candidates to rescore.

    """

    dim: int
    backend: Backend = Backend.EXACT
    metric: Metric = Metric.COSINE
    nlist: int | None = None
    # None: max(32, nlist / 16); on SciFact/MiniLM (132 lists) 32 gives recall@10 0.97, 16 only 0.91
    nprobe: int | None = None
    # M=32 / efSearch=64 gives recall@10 > 0.98 on MiniLM embeddings at a modest memory cost (M*8 bytes/row)
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    pq_m: int | None = None
    # 4x candidates recovers almost all of the float ranking for binary/int8/PQ (the reference uses 2-4)
    rescore_multiplier: int = 4

    def __post_init__(self) -> None:
        _positive("dim", self.dim)
        for name in (
            "nlist",
            "nprobe",
            "hnsw_m",
            "ef_construction",
            "ef_search",
            "pq_m",
            "rescore_multiplier",
        ):
            _positive(name, getattr(self, name))
        object.__setattr__(self, "backend", Backend.parse(self.backend))
        object.__setattr__(self, "metric", Metric.parse(self.metric))
        if self.pq_m is not None and self.dim % self.pq_m:
            raise InvalidInputError(f"pq_m={self.pq_m} must divide the dimension {self.dim}.")

    def nlist_for(self, n: int) -> int:
        """The IVF cluster count for ``n`` vectors: ``nlist`` or ``4 * sqrt(n)``, at most ``n / 39``.

        FAISS's k-means wants 39 training rows per cluster; fewer clusters suit small indexes better.
        """
        wanted = self.nlist if self.nlist is not None else round(4 * math.sqrt(n))
        return max(1, min(wanted, n // 39))

    def nprobe_for(self, nlist: int) -> int:
        """The IVF clusters read per query for ``nlist`` clusters."""
        if self.nprobe is not None:
            return min(self.nprobe, nlist)
        return min(nlist, max(32, nlist // 16))

    def pq_m_for(self) -> int:
        """The IVF-PQ sub-quantizer count: ``pq_m`` or the divisor of ``dim`` closest to ``dim / 8``."""
        if self.pq_m is not None:
            return self.pq_m
        divisors = [m for m in range(1, self.dim + 1) if self.dim % m == 0]
        return min(divisors, key=lambda m: (abs(m - self.dim / 8), m))

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (enums as their values)."""
        return {
            "dim": self.dim,
            "backend": self.backend.value,
            "metric": self.metric.value,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "pq_m": self.pq_m,
            "rescore_multiplier": self.rescore_multiplier,
        }
