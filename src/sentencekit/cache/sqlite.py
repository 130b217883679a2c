"""The default embedding cache: one SQLite file, shared safely by threads and processes.

Layout (format version 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)          format_version, created_at
    entries(key TEXT PRIMARY KEY, dtype TEXT, vector BLOB)

``entries`` is a rowid table on purpose: with ~1.5 KB vectors per row, a WITHOUT ROWID table measured twice
the file size and 3-4x slower reads and writes.

The file is in WAL mode, so readers never wait for writers; each ``put_many`` is one ``BEGIN IMMEDIATE``
transaction of ``INSERT OR REPLACE`` statements, and a writer that finds the file locked waits
(``busy_timeout``) and then retries with backoff. A file that is not a database, or fails ``PRAGMA
quick_check`` when opened, or reports itself malformed later, is renamed to ``<name>.corrupt-<timestamp>`` and
replaced by an empty cache, with a warning: a cache can always be rebuilt, so it never stops ``encode``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sentencekit.cache import EmbeddingCache
from sentencekit.errors import CacheError

__all__ = ["FORMAT_VERSION", "SQLiteCache"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}
# SQLite before 3.32 allows 999 bound parameters per statement; stay below on every version
_LOOKUP_CHUNK = 900
_CORRUPTION_MARKERS = ("file is not a database", "malformed", "file is encrypted", "disk image")
# the write-ahead log is cut back to this size after each checkpoint instead of keeping its largest size
_WAL_LIMIT_BYTES = 64 * 1024 * 1024
_BUSY_MARKERS = ("database is locked", "database is busy", "database table is locked")

T = TypeVar("T")


def _is_corruption(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and any(m in str(exc).lower() for m in _CORRUPTION_MARKERS)


def _is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(m in str(exc).lower() for m in _BUSY_MARKERS)


class SQLiteCache(EmbeddingCache):
    """Embedding cache in one SQLite file.

    Args:
        path: The database file; created (with its folder) when missing.
        dtype: ``"float32"`` (default) stores vectors exactly, so cached results are bit-identical to computed
            ones. ``"float16"`` halves the file but is approximate (about 3 significant digits).
        busy_timeout_s: How long one statement waits for another process's write lock.
        max_retries: Further attempts of a write transaction that still found the file locked.
        verify_on_open: Run ``PRAGMA quick_check`` when opening (reads the whole file once; turn off for very
            large caches opened often).

    Raises:
        CacheError: When the file cannot be created or opened, or was written by a newer sentencekit.

    Example:
        >>> cache = SQLiteCache("embeddings.sqlite")  # doctest: +SKIP
        >>> model.encode(texts, cache=cache)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        dtype: str = "float32",
        busy_timeout_s: float = 30.0,
        max_retries: int = 8,
        verify_on_open: bool = True,
    ) -> None:
        super().__init__()
        if dtype not in _STORAGE_DTYPES:
            raise ValueError(f"dtype={dtype!r} is not supported; use one of {sorted(_STORAGE_DTYPES)}.")
        self.path = Path(path)
        self.dtype = dtype
        self.busy_timeout_s = busy_timeout_s
        self.max_retries = max_retries
        self.verify_on_open = verify_on_open
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._connection()  # open now: a bad path or a corrupted file shows up here, not mid-encode

    # --- connection ---------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """The open connection, (re)opened after :meth:`close` or in a forked child."""
        if self._conn is None or self._pid != os.getpid():
            self._conn = self._open_with_recovery()
            self._pid = os.getpid()
        return self._conn

    def _open_with_recovery(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"Cannot create the folder of the embedding cache {self.path}: {exc}. "
                "Pass a cache path in a writable folder."
            ) from exc
        set_aside = False
        for attempt in range(self.max_retries + 1):
            try:
                return self._open()
            except sqlite3.DatabaseError as exc:
                if _is_corruption(exc) and not set_aside:
                    self._set_aside(exc)
                    set_aside = True
                    continue
                if _is_busy(exc) and attempt < self.max_retries:
                    self._backoff(attempt)
                    continue
                raise CacheError(
                    f"Cannot open the embedding cache {self.path}: {exc}. Check that the file is writable, "
                    "or pass another cache path."
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(self.path), timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            if self.verify_on_open:
                problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
                if problems != ["ok"]:
                    raise sqlite3.DatabaseError(f"database disk image is malformed: {'; '.join(problems)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; a lost tail is recomputed
            conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._ensure_schema(conn)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except BaseException:
            conn.close()
            raise
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise CacheError(
                f"{self.path} is a SQLite database but not a sentencekit embedding cache (tables: "
                f"{sorted(tables)}). Pass another cache path."
            )
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS entries "
            "(key TEXT PRIMARY KEY, dtype TEXT NOT NULL, vector BLOB NOT NULL)"
        )
        row = conn.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        if row is None:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("format_version", str(FORMAT_VERSION)), ("created_at", time.strftime("%Y-%m-%dT%H:%M:%S"))],
            )
        elif int(row[0]) != FORMAT_VERSION:
            raise CacheError(
                f"The embedding cache {self.path} has format version {row[0]}; this sentencekit reads "
                f"version {FORMAT_VERSION}. Upgrade sentencekit, or pass another cache path (or delete the "
                "file)."
            )

    def _set_aside(self, exc: BaseException) -> None:
        """Rename a damaged file to ``<name>.corrupt-<timestamp>`` so an empty cache can take its place."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"  # the pid keeps two processes apart
        target: Path | None = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.corrupt-{stamp}"))
        except FileNotFoundError:  # another process set it aside first
            target = None
        except OSError as move_error:
            raise CacheError(
                f"The embedding cache {self.path} is damaged ({exc}) and could not be moved aside "
                f"({move_error}). Delete it; it is rebuilt on the next run."
            ) from exc
        for suffix in ("-wal", "-shm"):
            companion = self.path.with_name(self.path.name + suffix)
            if companion.exists():
                if target is not None and suffix == "-wal":
                    os.replace(companion, target.with_name(target.name + suffix))
                else:
                    companion.unlink(missing_ok=True)
        logger.warning(
            "The embedding cache %s is damaged (%s); moved it to %s and started an empty cache. Vectors are "
            "computed again as needed; delete the moved file when you no longer need it.",
            self.path,
            exc,
            target or "(already moved by another process)",
        )

    def _backoff(self, attempt: int) -> None:
        time.sleep(min(2.0, 0.02 * 2**attempt) * (0.5 + random.random()))

    def _run(self, operation: Callable[[sqlite3.Connection], T], *, what: str) -> T:
        """Run ``operation`` with retries on a locked file and recovery from a damaged one."""
        recovered = False
        with self._lock:
            for attempt in range(self.max_retries + 1):
                conn = self._connection()
                try:
                    return operation(conn)
                except sqlite3.DatabaseError as exc:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    if _is_corruption(exc) and not recovered:
                        self._set_aside(exc)
                        recovered = True
                        continue
                    if _is_busy(exc) and attempt < self.max_retries:
                        logger.debug("Embedding cache %s is locked; retry %d", self.path, attempt + 1)
                        self._backoff(attempt)
                        continue
                    raise CacheError(
                        f"Could not {what} the embedding cache {self.path}: {exc}. If other processes hold "
                        "it for long, raise busy_timeout_s; otherwise pass another cache path."
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # --- EmbeddingCache -----------------------------------------------------------------------------------

    def _get(self, keys: list[str]) -> dict[str, np.ndarray]:
        def lookup(conn: sqlite3.Connection) -> dict[str, np.ndarray]:
            found: dict[str, np.ndarray] = {}
            for start in range(0, len(keys), _LOOKUP_CHUNK):
                chunk = keys[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, dtype, vector FROM entries WHERE key IN ({marks})"
                for key, dtype, blob in conn.execute(query, chunk):
                    found[key] = np.frombuffer(blob, dtype=_STORAGE_DTYPES[dtype])
            return found

        return self._run(lookup, what="read")

    def _put(self, items: list[tuple[str, np.ndarray]]) -> None:
        storage = _STORAGE_DTYPES[self.dtype]
        rows = [
            (key, self.dtype, np.ascontiguousarray(vector, dtype=storage).tobytes()) for key, vector in items
        ]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO entries (key, dtype, vector) VALUES (?, ?, ?)", rows)
            conn.execute("COMMIT")

        self._run(write, what="write")

    def _count(self) -> int:
        return int(self._run(lambda c: c.execute("SELECT COUNT(*) FROM entries").fetchone()[0], what="read"))

    def clear(self) -> None:
        """Delete every entry and shrink the write-ahead log (the file keeps its pages for reuse)."""

        def wipe(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM entries")
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        self._run(wipe, what="clear")

    def close(self) -> None:
        """Close the connection (checkpointing the log); using the cache again reopens it."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def describe(self) -> dict[str, Any]:
        """What ``sentencekit cache stats`` shows: path, format, sizes and entry counts per storage dtype."""

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            by_dtype = dict(conn.execute("SELECT dtype, COUNT(*) FROM entries GROUP BY dtype").fetchall())
            return {"meta": meta, "by_dtype": by_dtype}

        info = self._run(read, what="read")
        sizes = {s: self.path.with_name(self.path.name + s) for s in ("", "-wal")}
        return {
            "backend": "sqlite",
            "path": str(self.path),
            "format_version": int(info["meta"].get("format_version", FORMAT_VERSION)),
            "created_at": info["meta"].get("created_at"),
            "entries": sum(info["by_dtype"].values()),
            "entries_by_dtype": info["by_dtype"],
            "file_bytes": sum(p.stat().st_size for p in sizes.values() if p.exists()),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(_conn=None, _pid=None)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SQLiteCache({str(self.path)!r}, dtype={self.dtype!r})"
