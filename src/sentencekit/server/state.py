"""What one server holds: the models, their engines and batchers, the optional index, the metrics.

:class:`ServerState` is built by :func:`~sentencekit.server.create_app` before the app serves anything, so
that a model that cannot be loaded fails at start-up, not on the first request.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np

from sentencekit.errors import InvalidInputError, ModelNotFoundError
from sentencekit.server.batcher import MicroBatcher
from sentencekit.server.config import ServerConfig
from sentencekit.server.engines import EmbeddingEngine, EmbedJob, RerankEngine, RerankJob
from sentencekit.server.errors import FeatureNotLoadedError
from sentencekit.server.memory import MemoryReleaser
from sentencekit.server.metrics import ServerMetrics

__all__ = ["LoadedIndex", "ServerState"]

logger = logging.getLogger(__name__)

# Corpus files that --index builds an in-memory index from (a folder is a saved index).
CORPUS_SUFFIXES = (".txt", ".jsonl")


@dataclass
class LoadedIndex:
    """A vector index, and the document texts when it was built from a corpus file."""

    index: Any
    source: str
    texts: dict[Any, str] | None = None

    def hits(self, vectors: np.ndarray, k: int, filter: dict[str, Any] | None) -> list[list[dict[str, Any]]]:
        """Search with query vectors; each hit gets ``text`` when the texts are known."""
        results: list[list[dict[str, Any]]] = self.index.search(vectors, k=k, filter=filter)
        if self.texts is not None:
            for hits in results:
                for hit in hits:
                    hit["text"] = self.texts.get(hit["id"])
        return results


def _name_of(spec: Any, explicit: str | None) -> str:
    if explicit:
        return explicit
    if isinstance(spec, (str, Path)):
        return str(spec)
    model_id = getattr(spec, "model_id", None)
    return str(model_id) if model_id else type(spec).__name__


def _loaded(spec: Any, module: str, cls: str) -> Any:
    """``spec`` itself, or ``module.cls(spec)`` when ``spec`` is a name or folder to load."""
    if not isinstance(spec, (str, Path)):
        return spec
    return getattr(importlib.import_module(module), cls)(str(spec))


def _aliases(name: str) -> set[str]:
    """A model answers to its name and, for a path, to its folder's name."""
    return {name, Path(name).name}


def load_index(spec: Any, model: Any) -> LoadedIndex:
    """An :class:`~sentencekit.index.Index` object, a saved index folder, or a .txt/.jsonl corpus to embed."""
    from sentencekit.index import Index

    if isinstance(spec, Index):
        return LoadedIndex(spec, source="in-memory")
    path = Path(spec).expanduser()
    if path.is_dir():
        return LoadedIndex(Index.load(path), source=str(path))
    if path.suffix in CORPUS_SUFFIXES and path.is_file():
        from sentencekit.corpus_files import read_corpus

        texts, ids, metadata = read_corpus(path)
        logger.info("Embedding %d documents of %s for the index", len(texts), path)
        index = Index(model, backend="exact", metric="cosine")
        index.add(texts, ids=ids, metadata=metadata)
        return LoadedIndex(index, source=str(path), texts=dict(zip(ids, texts, strict=True)))
    raise FileNotFoundError(
        f"No index at {path}: pass a folder saved by `sentencekit index build`, or a .txt/.jsonl corpus "
        "to embed at start-up."
    )


class ServerState:
    """Models, engines, batchers and index of one app.

    Args:
        model: A :class:`~sentencekit.SentenceTransformer` or a name / folder to load one from.
        reranker: A :class:`~sentencekit.cross_encoder.CrossEncoder`, a name / folder, or ``None``.
        index: An :class:`~sentencekit.index.Index`, a saved index folder, a .txt/.jsonl corpus, or ``None``.
        config: Batching, limits and names.
    """

    def __init__(self, model: Any, reranker: Any, index: Any, config: ServerConfig) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        model_obj = _loaded(model, "sentencekit.sentence_transformer", "SentenceTransformer")
        self.model_name = _name_of(model, config.model_name)
        self.embedder = EmbeddingEngine(model_obj, batch_size=config.batch_size)
        self.embed_batcher: MicroBatcher[EmbedJob, np.ndarray] = self._batcher(
            self.embedder.run_batch, self.model_name
        )
        self.reranker_name: str | None = None
        self.reranker: RerankEngine | None = None
        self.rerank_batcher: MicroBatcher[RerankJob, np.ndarray] | None = None
        if reranker is not None:
            ce = _loaded(reranker, "sentencekit.cross_encoder", "CrossEncoder")
            self.reranker_name = _name_of(reranker, config.reranker_name)
            self.reranker = RerankEngine(ce, batch_size=config.batch_size)
            self.rerank_batcher = self._batcher(self.reranker.run_batch, self.reranker_name)
        self.index = load_index(index, model_obj) if index is not None else None
        if self.index is not None and self.index.index.config.dim != self.embedder.dimension:
            raise InvalidInputError(
                f"The index {self.index.source} holds {self.index.index.config.dim}-dimensional vectors but "
                f"{self.model_name} makes {self.embedder.dimension}-dimensional ones; serve the model the "
                f"index was built with ({self.index.index.model_name or 'not recorded'})."
            )

    def _batcher(self, run_batch: Any, name: str) -> MicroBatcher[Any, Any]:
        batcher: MicroBatcher[Any, Any] = MicroBatcher(
            run_batch,
            name=name,
            max_batch_tokens=self.config.max_batch_tokens,
            max_wait_s=self.config.max_wait_ms / 1000,
            max_queue=self.config.max_queue,
            on_batch=self.metrics.batch_observer(name),
            on_idle=MemoryReleaser(large_step_tokens=self.config.max_batch_tokens // 4),
        )
        self.metrics.watch_queue(name, lambda: batcher.depth)
        return batcher

    @property
    def batchers(self) -> list[MicroBatcher[Any, Any]]:
        """Every batcher of this server."""
        return [b for b in (self.embed_batcher, self.rerank_batcher) if b is not None]

    @property
    def stopping(self) -> bool:
        """Whether the server is shutting down."""
        return self.embed_batcher.closing

    def start(self) -> None:
        """Start the worker threads."""
        for batcher in self.batchers:
            batcher.start()

    def close(self) -> None:
        """Finish admitted work and stop the worker threads."""
        for batcher in self.batchers:
            batcher.close()

    # ------------------------------------------------------------------------------------------ checks

    def check_model(self, requested: str | None) -> None:
        """Raise :class:`ModelNotFoundError` unless ``requested`` is None or names the embedding model."""
        if requested is not None and requested not in _aliases(self.model_name):
            raise ModelNotFoundError(
                f"The model {requested!r} is not served here; this server embeds with {self.model_name!r}"
                + (f" and reranks with {self.reranker_name!r}" if self.reranker_name else "")
                + " (GET /v1/models lists them)."
            )

    def require_reranker(
        self, requested: str | None
    ) -> tuple[RerankEngine, MicroBatcher[RerankJob, np.ndarray]]:
        """The rerank engine and batcher, checking that ``requested`` names the reranker."""
        if self.reranker is None or self.rerank_batcher is None:
            raise FeatureNotLoadedError(
                "This server has no reranker; start it with `sentencekit serve MODEL --reranker NAME`."
            )
        if requested is not None and requested not in _aliases(self.reranker_name or ""):
            raise ModelNotFoundError(
                f"The model {requested!r} is not served here; this server reranks with "
                f"{self.reranker_name!r}."
            )
        return self.reranker, self.rerank_batcher

    def require_index(self) -> LoadedIndex:
        """The loaded index, or :class:`FeatureNotLoadedError`."""
        if self.index is None:
            raise FeatureNotLoadedError(
                "This server has no index; start it with `sentencekit serve MODEL --index PATH` (a saved "
                "index folder or a .txt/.jsonl corpus)."
            )
        return self.index

    # ------------------------------------------------------------------------------------------ work

    async def embed(self, texts: list[str], prompt_name: str | None = None) -> tuple[np.ndarray, int]:
        """Embeddings of ``texts`` through the batcher, and the number of tokens they took."""
        self.embedder.check_prompt(prompt_name)
        self.embed_batcher.check_room()  # a full queue answers 429 before any tokenizing
        tokens = await anyio.to_thread.run_sync(self.embedder.count_tokens, texts)
        vectors = await self.embed_batcher.submit(EmbedJob(texts, prompt_name), tokens)
        return vectors, tokens

    async def rerank(
        self, requested: str | None, query: str, documents: list[str], raw_scores: bool
    ) -> tuple[np.ndarray, int]:
        """Scores of ``documents`` for ``query`` through the batcher, and the tokens they took."""
        engine, batcher = self.require_reranker(requested)
        batcher.check_room()
        tokens = await anyio.to_thread.run_sync(engine.count_tokens, query, documents)
        scores = await batcher.submit(RerankJob(query, documents, raw_scores), tokens)
        return scores, tokens

    def describe(self) -> dict[str, Any]:
        """What ``/health`` reports."""
        return {
            "status": "shutting_down" if self.stopping else "ok",
            "model": self.model_name,
            "dimensions": self.embedder.dimension,
            "max_seq_length": self.embedder.max_seq_length,
            "reranker": self.reranker_name,
            "index": None
            if self.index is None
            else {
                "source": self.index.source,
                "size": len(self.index.index),
                "has_texts": self.index.texts is not None,
            },
            "queue": {b.name: {"waiting": b.depth, "running": b.in_flight} for b in self.batchers},
        }
