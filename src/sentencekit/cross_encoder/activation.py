"""The activation a cross-encoder applies to its logits, and how it is named in saved folders.

A saved folder records the activation as a dotted class path (``"torch.nn.modules.activation.Sigmoid"``), so
that whoever loads it gets the same kind of score: probabilities in [0, 1] after a sigmoid, raw logits after
the identity. Paths under ``torch.`` are resolved freely; any other path runs code from the folder's config
and needs ``trust_remote_code=True``, as in the reference.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "activation_path",
    "apply_activation",
    "default_activation",
    "describe_scores",
    "resolve_activation",
]

logger = logging.getLogger(__name__)


def default_activation(num_labels: int) -> nn.Module:
    """Sigmoid for one label (a relevance probability), the identity (logits) for several."""
    return nn.Sigmoid() if num_labels == 1 else nn.Identity()


def activation_path(fn: Callable[..., Any]) -> str:
    """The dotted path of ``fn``'s class (for modules) or of ``fn`` itself (for functions)."""
    target = fn if isinstance(fn, type) or not isinstance(fn, nn.Module) else type(fn)
    return f"{target.__module__}.{getattr(target, '__qualname__', type(fn).__name__)}"


def resolve_activation(path: str, *, trust_remote_code: bool) -> nn.Module | None:
    """Instantiate the activation class at ``path``, or return ``None`` when it may not or cannot be loaded.

    Args:
        path: Dotted class path from a saved config.
        trust_remote_code: Allow paths outside ``torch.``, which import and run arbitrary code.
    """
    if not path.startswith("torch.") and not trust_remote_code:
        logger.warning(
            "The saved activation %r is outside torch; using the default activation instead. Load with "
            "trust_remote_code=True to use it.",
            path,
        )
        return None
    module_name, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)()
    except (ImportError, AttributeError, TypeError) as exc:
        logger.warning("Cannot build the saved activation %r (%s); using the default activation.", path, exc)
        return None


def describe_scores(fn: Callable[..., Any] | None, num_labels: int, apply_softmax: bool = False) -> str:
    """Say in words what kind of scores ``predict`` returns with activation ``fn``."""
    if apply_softmax and num_labels > 1:
        return "class probabilities (softmax)"
    if fn is None or isinstance(fn, nn.Identity):
        return "raw logits"
    if isinstance(fn, nn.Sigmoid):
        return "probabilities in [0, 1] (sigmoid of the logits)"
    if isinstance(fn, nn.Softmax):
        return "class probabilities (softmax)"
    if isinstance(fn, nn.Tanh):
        return "scores in [-1, 1] (tanh of the logits)"
    return f"logits passed through {activation_path(fn)}"


def apply_activation(
    logits: Tensor, fn: Callable[[Tensor], Tensor] | None, num_labels: int, softmax: bool
) -> Tensor:
    """Turn ``predict``'s logits into its scores: ``fn``, then a softmax over labels if asked.

    Half-precision logits are widened to fp32 first; with one label the scores have shape ``(n,)``.
    """
    with torch.inference_mode():
        if logits.is_floating_point() and torch.finfo(logits.dtype).bits < 32:
            logits = logits.float()
        scores = fn(logits) if fn is not None else logits
        if num_labels == 1 and scores.ndim > 1:
            scores = scores.squeeze(-1)
        if softmax and scores.ndim > 1:
            scores = torch.softmax(scores, dim=1)
        return scores.clone()  # a normal tensor, usable outside inference mode
