"""What every cross-encoder loss does first: turn text columns into pairs, tokenize them, and get logits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor

from sentencekit.cross_encoder.scoring import tokenize_pairs
from sentencekit.encoding.batching import pad_token_ids
from sentencekit.errors import InvalidInputError

if TYPE_CHECKING:
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = ["check_ce_labels", "check_ce_model", "pair_logits", "text_columns"]


def check_ce_model(loss: str, model: Any, num_labels: int | None = None) -> None:
    """Raise ``ValueError`` unless ``model`` is a CrossEncoder (with ``num_labels`` outputs, when given)."""
    from sentencekit.cross_encoder.model import CrossEncoder

    if not isinstance(model, CrossEncoder):
        raise ValueError(f"{loss} trains a sentencekit CrossEncoder, got {type(model).__name__}.")
    if num_labels is not None and model.num_labels != num_labels:
        raise ValueError(
            f"{loss} needs a CrossEncoder with num_labels={num_labels}, this one has {model.num_labels}. "
            f"Load it with CrossEncoder(..., num_labels={num_labels})."
        )


def text_columns(
    loss: str, inputs: Sequence[Sequence[str]], *, exactly: int | None = None
) -> list[list[str]]:
    """Check the text columns of a batch (all the same length, the right count) and return them as lists."""
    columns = [list(column) for column in inputs]
    if exactly is not None and len(columns) != exactly:
        raise InvalidInputError(
            f"{loss} takes {exactly} text columns (e.g. query and document), got {len(columns)}. Every "
            "column except the label column is treated as text, in order."
        )
    if len(columns) < 2:
        raise InvalidInputError(
            f"{loss} takes at least 2 text columns (a query and documents), got {len(columns)}."
        )
    if len({len(c) for c in columns}) != 1:
        raise InvalidInputError(f"{loss}: the text columns differ in length: {[len(c) for c in columns]}.")
    return columns


def pair_logits(
    model: CrossEncoder, first: Sequence[str], second: Sequence[str], prompt: str | None = None
) -> Tensor:
    """Logits of ``(first[i], second[i])`` pairs, shape ``(n, num_labels)``, attached to the autograd graph.

    Pairs are tokenized as :meth:`CrossEncoder.predict` does (``longest_first`` truncation at the model's
    ``max_length``) and padded to the longest pair.

    Args:
        model: A :class:`~sentencekit.cross_encoder.CrossEncoder`.
        first: Queries (or first texts).
        second: Documents (or second texts), as many as ``first``.
        prompt: Text prepended to every first text.
    """
    if prompt:
        first = [prompt + text for text in first]
    tokenizer: Any = model.tokenizer
    with_types = bool(getattr(model, "_with_token_types", False))
    tokenized = tokenize_pairs(tokenizer, list(zip(first, second, strict=True)), model.max_length, with_types)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    features = pad_token_ids(
        tokenized.input_ids, tokenized.token_type_ids, pad_id, tokenizer.padding_side == "left"
    )
    device = next(model.parameters()).device
    logits: Tensor = model(**{k: v.to(device) for k, v in features.items()})
    return logits


def check_ce_labels(loss: str, labels: Tensor | None, rows: int) -> Tensor:
    """``labels`` as a flat ``(rows,)`` tensor, or :class:`InvalidInputError` when they do not fit."""
    if labels is None or labels.numel() != rows:
        got = "none" if labels is None else f"{labels.numel()} values with shape {tuple(labels.shape)}"
        raise InvalidInputError(f"{loss} expects one label per pair ({rows}), got {got}.")
    return labels.reshape(rows)
