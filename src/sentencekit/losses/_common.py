"""Helpers every bi-encoder loss shares: embedding the text columns and checking columns and labels."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.errors import InvalidInputError

__all__ = [
    "Features",
    "check_columns",
    "check_labels",
    "embed_columns",
    "features_to_device",
    "function_name",
    "loss_on_embeddings",
    "replayed_embeddings",
]

Features = dict[str, Any]


def features_to_device(features: Features, device: torch.device) -> Features:
    """The same features dict with every tensor moved to ``device`` (a no-op when already there)."""
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in features.items()}


def embed_columns(model: nn.Module, sentence_features: Iterable[Features]) -> list[Tensor]:
    """Run ``model`` once per text column and return each column's ``sentence_embedding``.

    Args:
        model: A :class:`~sentencekit.SentenceTransformer` (anything that maps a features dict to one with
            ``"sentence_embedding"``).
        sentence_features: One tokenized batch per column, all with the same number of rows.

    Returns:
        One ``(batch, dim)`` tensor per column, in column order, attached to the autograd graph.
    """
    device = _device_of(model)
    return [model(features_to_device(f, device))["sentence_embedding"] for f in sentence_features]


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def check_columns(loss: str, count: int, *, exactly: int | None = None, at_least: int | None = None) -> None:
    """Raise :class:`InvalidInputError` when a batch has the wrong number of text columns.

    Args:
        loss: Name of the loss, for the message.
        count: Columns the batch has.
        exactly: Columns the loss needs, when fixed.
        at_least: Fewest columns the loss accepts, when open-ended.
    """
    if exactly is not None and count != exactly:
        raise InvalidInputError(
            f"{loss} takes {exactly} text column(s) per example, got {count}. Check the dataset's columns: "
            "every column except the label column is treated as text, in order."
        )
    if at_least is not None and count < at_least:
        raise InvalidInputError(
            f"{loss} takes at least {at_least} text columns per example, got {count}. Check the dataset's "
            "columns: every column except the label column is treated as text, in order."
        )


def check_labels(loss: str, labels: Tensor | None, rows: int, *, width: int | None = None) -> Tensor:
    """Return ``labels`` shaped ``(rows,)`` (or ``(rows, width)``), raising when they do not fit the batch.

    Args:
        loss: Name of the loss, for the message.
        labels: The label tensor of the batch.
        rows: Examples in the batch.
        width: Values per example when the label is a vector (e.g. teacher scores); ``None`` for one value.
    """
    if labels is None:
        raise InvalidInputError(
            f"{loss} needs a label per example (a 'label' or 'score' column), but the batch has none."
        )
    if width is None:
        if labels.numel() != rows:
            raise InvalidInputError(
                f"{loss} expects one label per example ({rows}), got {labels.numel()} values with shape "
                f"{tuple(labels.shape)}."
            )
        return labels.reshape(rows)
    if labels.numel() != rows * width:
        raise InvalidInputError(
            f"{loss} expects labels of shape ({rows}, {width}), got {tuple(labels.shape)}."
        )
    return labels.reshape(rows, width)


def function_name(fn: Callable[..., Any] | nn.Module) -> str:
    """A readable name of a similarity or loss function, for ``get_config_dict`` and model cards."""
    if isinstance(fn, nn.Module):
        return f"{type(fn).__module__}.{type(fn).__name__}"
    return getattr(fn, "__name__", repr(fn))


@contextlib.contextmanager
def replayed_embeddings(model: nn.Module, embeddings: Sequence[Tensor]) -> Iterator[None]:
    """Inside the block, the i-th call of ``model`` returns ``embeddings[i]`` as its sentence embedding.

    Wrapper losses (Matryoshka, adaptive layers) compute the embeddings once and then run an inner loss on
    variants of them. An inner loss without ``compute_loss_from_embeddings`` is run as it is, with the model
    answering from this list; that works for any loss that calls the model once per text column, in order.
    """
    queue = list(embeddings)

    def answer(features: Features) -> Features:
        if not queue:
            raise RuntimeError(
                "The inner loss called the model more often than there are text columns; wrap a loss that "
                "embeds each column once, or give it a compute_loss_from_embeddings method."
            )
        return {**features, "sentence_embedding": queue.pop(0)}

    own = model.__dict__  # an instance attribute shadows the class's forward for nn.Module.__call__
    had_own, previous = "forward" in own, own.get("forward")
    own["forward"] = answer
    try:
        yield
    finally:
        if had_own:
            own["forward"] = previous
        else:
            del own["forward"]


def loss_on_embeddings(
    loss: nn.Module,
    model: nn.Module,
    sentence_features: list[Features],
    embeddings: list[Tensor],
    labels: Any,
) -> Tensor:
    """``loss``'s value on given column embeddings.

    Through its ``compute_loss_from_embeddings`` when it has one, else by running it with the model
    replaying the embeddings (see :func:`replayed_embeddings`).
    """
    compute = getattr(loss, "compute_loss_from_embeddings", None)
    if compute is not None and not getattr(loss, "needs_features", False):
        result: Tensor = compute(embeddings, labels)
        return result
    with replayed_embeddings(model, embeddings):
        result = loss(sentence_features, labels)
    return result
