"""Crash-safe saving and checksum-verified loading of an index folder.

A saved index is a folder holding a ``CURRENT`` file and one version folder::

    my-index/
      CURRENT                 "v-<id> <sha256 of the manifest>"
      v-<id>/
        manifest.json         format, settings, and the sha256 and size of every other file
        vectors.npy           the float vectors (row order)
        items.sqlite          ids and metadata, one row per vector
        faiss.index, ...      the backend's structure, if it has one

Saving writes a new version folder beside the current one, fsyncs every file and the folder, then replaces
``CURRENT`` with :func:`os.replace` (atomic on POSIX and Windows) and fsyncs the index folder, and only then
deletes the older versions. A process killed at any instant therefore leaves ``CURRENT`` naming a complete
version: the previous one until the replace, the new one after it. Version folders left by a killed save are
removed by the next save.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sentencekit.errors import IndexCorruptedError, InvalidInputError

__all__ = ["FORMAT_VERSION", "read_items", "read_version", "write_items", "write_version"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_CURRENT = "CURRENT"
_MANIFEST = "manifest.json"
_HASH_BLOCK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # pragma: no cover - Windows cannot open folders; its renames are durable
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_version(path: Path, manifest: dict[str, Any], write_files: Callable[[Path], list[str]]) -> None:
    """Save a new version of the index at ``path`` atomically (see the module docstring).

    Args:
        path: The index folder; created if missing. An existing folder must be empty or an index.
        manifest: Settings to record; ``files`` and ``format_version`` are added here.
        write_files: Writes the index's files into the folder it is given and returns their names.

    Raises:
        InvalidInputError: If ``path`` is a file, or a non-empty folder that is not an index.

    """
    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"Cannot save an index to {path}: it is a file. Pass a folder path.")
    if not path.exists():
        path.mkdir(parents=True)
        _fsync_dir(path.parent)
    if not (path / _CURRENT).exists() and any(p for p in path.iterdir() if not p.name.startswith("v-")):
        raise InvalidInputError(
            f"Cannot save an index to {path}: the folder holds other files. Pass a new or empty folder."
        )
    version = f"v-{uuid.uuid4().hex[:12]}"
    folder = path / version
    folder.mkdir()
    names = write_files(folder)
    files = {}
    for name in names:
        _fsync_file(folder / name)
        files[name] = {"sha256": _sha256(folder / name), "bytes": (folder / name).stat().st_size}
    body = json.dumps({"format_version": FORMAT_VERSION, **manifest, "files": files}, indent=2).encode()
    (folder / _MANIFEST).write_bytes(body)
    _fsync_file(folder / _MANIFEST)
    _fsync_dir(folder)

    pointer = path / f"{_CURRENT}.tmp-{version}"
    with pointer.open("w") as f:
        f.write(f"{version} {hashlib.sha256(body).hexdigest()}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(pointer, path / _CURRENT)
    _fsync_dir(path)
    logger.info("Saved index version %s to %s", version, path)
    for stale in path.iterdir():  # older versions and leftovers of killed saves
        if stale.name != version and stale.name != _CURRENT:
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


def _corrupted(path: Path, what: str) -> IndexCorruptedError:
    return IndexCorruptedError(
        f"The index at {path} is damaged: {what}. Restore the folder from a backup or rebuild the index "
        "(e.g. `sentencekit index build`)."
    )


def read_version(path: Path) -> tuple[Path, dict[str, Any]]:
    """Find the current version of the index at ``path`` and verify every file's checksum.

    Returns:
        ``(version folder, manifest)``.

    Raises:
        FileNotFoundError: If ``path`` does not exist or holds no saved index.
        IndexCorruptedError: If the pointer, the manifest or any file is missing or fails its checksum.

    """
    if not path.is_dir():
        raise FileNotFoundError(f"No index at {path}: the folder does not exist. Save one with Index.save().")
    pointer = path / _CURRENT
    if not pointer.exists():
        raise FileNotFoundError(f"No index at {path}: it has no {_CURRENT} file. Save one with Index.save().")
    parts = pointer.read_text(errors="replace").split()
    if len(parts) != 2 or not parts[0].startswith("v-") or "/" in parts[0] or "\\" in parts[0]:
        raise _corrupted(path, f"{pointer} does not name a version")
    folder, expected = path / parts[0], parts[1]
    manifest_path = folder / _MANIFEST
    if not manifest_path.exists():
        raise _corrupted(path, f"{manifest_path} is missing")
    body = manifest_path.read_bytes()
    if hashlib.sha256(body).hexdigest() != expected:
        raise _corrupted(path, f"{manifest_path} failed its checksum")
    manifest = json.loads(body)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise _corrupted(path, f"format version {manifest.get('format_version')!r} is not {FORMAT_VERSION}")
    for name, entry in manifest["files"].items():
        file = folder / name
        if not file.exists():
            raise _corrupted(path, f"{file} is missing")
        if file.stat().st_size != entry["bytes"] or _sha256(file) != entry["sha256"]:
            raise _corrupted(path, f"{file} failed its sha256 checksum")
    return folder, manifest


# ------------------------------------------------------------------------------------------- ids, metadata

_ITEMS = "items.sqlite"


def write_items(folder: Path, ids: Sequence[int | str], metadata: Sequence[dict[str, Any] | None]) -> str:
    """Write ids and metadata (JSON) to ``items.sqlite`` in ``folder``, row order kept; return its name."""
    connection = sqlite3.connect(folder / _ITEMS)
    try:
        connection.execute(
            "CREATE TABLE items (row INTEGER PRIMARY KEY, id_int INTEGER, id_str TEXT, metadata TEXT)"
        )
        connection.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            (
                (
                    row,
                    item_id if isinstance(item_id, int) else None,
                    item_id if isinstance(item_id, str) else None,
                    None if meta is None else json.dumps(meta),
                )
                for row, (item_id, meta) in enumerate(zip(ids, metadata, strict=True))
            ),
        )
        connection.commit()
    finally:
        connection.close()
    return _ITEMS


def read_items(folder: Path) -> tuple[list[int | str], list[dict[str, Any] | None]]:
    """Read back what :func:`write_items` wrote: ``(ids, metadata)`` in row order."""
    connection = sqlite3.connect(f"file:{folder / _ITEMS}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT id_int, id_str, metadata FROM items ORDER BY row").fetchall()
    finally:
        connection.close()
    ids: list[int | str] = [i if s is None else s for i, s, _ in rows]
    return ids, [None if m is None else json.loads(m) for _, _, m in rows]
