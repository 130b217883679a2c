"""Stale ONNX exports in the sentencekit cache: find them and remove them.

Exports that cannot go into a model's own folder are written to ``$SENTENCEKIT_HOME/onnx/<fingerprint>/``
(see :func:`~sentencekit.backends.onnx_export.onnx_cache_dir`). The fingerprint covers the weights and the
export layout, so after a fine-tune, or after an upgrade that changes the layout, new files go to a new
folder and the old one is never read again. This module finds such folders: every ONNX file in them was
recorded by a layout other than the current one, or was not recorded at all. Model folders are never
touched.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sentencekit.backends.onnx_export import EXPORT_LAYOUT, onnx_cache_root, recorded_field

__all__ = ["StaleExport", "remove_stale_exports", "stale_exports"]


@dataclass(frozen=True)
class StaleExport:
    """A cache folder whose files the current sentencekit no longer uses."""

    path: Path
    size_bytes: int
    layouts: tuple[str, ...]  # the layouts its sidecars record ("none" for a file without one)


def stale_exports(root: Path | None = None) -> list[StaleExport]:
    """Cache folders none of whose ONNX files was written with the current export layout.

    Args:
        root: The ONNX cache (default: the one sentencekit writes to).
    """
    root = root if root is not None else onnx_cache_root()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        layouts = sorted({recorded_field(f, "layout") or "none" for f in folder.glob("*.onnx")})
        if EXPORT_LAYOUT in layouts:
            continue
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        found.append(StaleExport(folder, size, tuple(layouts)))
    return found


def remove_stale_exports(root: Path | None = None) -> list[StaleExport]:
    """Delete the folders :func:`stale_exports` finds and return what was deleted."""
    removed = stale_exports(root)
    for stale in removed:
        shutil.rmtree(stale.path)
    return removed
