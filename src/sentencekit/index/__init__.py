"""A vector index with ids, metadata filters, deletion and crash-safe saving.

See :class:`Index`; the backends are described in :mod:`sentencekit.index.config` and the saved format in
:mod:`sentencekit.index.storage`. FAISS is imported only when a ``faiss-*`` backend is used.
"""

from __future__ import annotations

from sentencekit.index.config import Backend, IndexConfig, Metric
from sentencekit.index.index import Hit, Index, MetadataFilter

__all__ = ["Backend", "Hit", "Index", "IndexConfig", "MetadataFilter", "Metric"]
