"""What :meth:`Index.save <sentencekit.index.Index.save>` writes and :meth:`Index.load` reads back.

A saved version holds the float vectors (``vectors.npy``), the ids and metadata (``items.sqlite``), the
backend's files, and a manifest with the settings, the item count, the model name and the backend's state.
Deleted rows are compacted away before saving. The folder layout, atomic replacement and checksums are
:mod:`sentencekit.index.storage`'s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentencekit.errors import InvalidInputError
from sentencekit.index.config import IndexConfig
from sentencekit.index.storage import read_items, read_version, write_items, write_version

if TYPE_CHECKING:  # pragma: no cover - the index module imports this one
    from sentencekit.index.index import Index, _Encoder

__all__ = ["compact", "load_index", "save_index"]

# the index's logger, as before this code moved out of index.py
logger = logging.getLogger("sentencekit.index.index")


def compact(index: Index) -> None:
    """Drop ``index``'s deleted rows in place and reset its backend (it is rebuilt at the next sync)."""
    if index._alive.all():
        return
    keep = np.flatnonzero(index._alive)
    logger.info("Compacting the index: dropping %d deleted rows", len(index._alive) - len(keep))
    index._vectors = np.ascontiguousarray(index._vectors[keep])
    index._ids = [index._ids[r] for r in keep]
    index._metadata = [index._metadata[r] for r in keep]
    index._rows = {item_id: row for row, item_id in enumerate(index._ids)}
    index._alive = np.ones(len(keep), dtype=bool)
    index._backend.reset()


def save_index(index: Index, path: str | Path) -> None:
    """Compact ``index`` and save it to the folder ``path`` (see :meth:`Index.save`)."""
    compact(index)
    if len(index._vectors):
        index._backend.sync(index._vectors)

    def write_files(folder: Path) -> list[str]:
        np.save(folder / "vectors.npy", index._vectors)
        return [
            "vectors.npy",
            write_items(folder, index._ids, index._metadata),
            *index._backend.save(folder),
        ]

    manifest = {
        "config": index.config.to_dict(),
        "count": len(index),
        "model_name": index.model_name,
        "backend_state": index._backend.state(),
    }
    write_version(Path(path), manifest, write_files)


def load_index(cls: type[Index], path: str | Path, model: _Encoder | None = None) -> Index:
    """Load the index saved at ``path`` as a ``cls`` (see :meth:`Index.load`)."""
    folder, manifest = read_version(Path(path))
    config = IndexConfig(**manifest["config"])
    settings = config.to_dict()
    del settings["dim"]
    index = cls(config.dim, **settings, model_name=manifest.get("model_name"))  # type: ignore[arg-type]
    if model is not None:
        if model.get_sentence_embedding_dimension() not in (None, config.dim):
            raise InvalidInputError(
                f"The model's dimension {model.get_sentence_embedding_dimension()} does not match the "
                f"index's {config.dim}; load it with the model it was built with."
            )
        index.model = model
    index._vectors = np.ascontiguousarray(np.load(folder / "vectors.npy"), dtype=np.float32)
    index._ids, index._metadata = read_items(folder)
    index._rows = {item_id: row for row, item_id in enumerate(index._ids)}
    index._alive = np.ones(len(index._ids), dtype=bool)
    index._next_id = max((i + 1 for i in index._ids if isinstance(i, int)), default=0)
    index._backend.load(folder, manifest["backend_state"])
    return index
