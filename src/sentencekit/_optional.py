"""Lazy imports of optional dependencies, with errors that name the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from sentencekit.errors import MissingDependencyError

__all__ = ["installed", "require"]


def installed(*modules: str) -> bool:
    """Whether every one of ``modules`` can be imported, checked without importing them."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(module) is not None for module in modules)
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules (blocked)
        return False


def require(module: str, *, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pip install sentencekit[extra]``.

    Args:
        module: Dotted module name, e.g. ``"onnxruntime"``.
        extra: The sentencekit extra that installs it.
        purpose: What the caller wanted it for, used in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"The optional dependency {module!r} is needed{why} but is not installed. "
            f"Install it with: pip install 'sentencekit[{extra}]'"
        ) from exc
