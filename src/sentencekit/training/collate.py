"""Collators: turn the rows of a batch into what a loss takes.

* bi-encoder losses take ``(features, labels)``: one tokenized batch (``input_ids``, ``attention_mask``, ...)
  per text column, and a label tensor or ``None``;
* cross-encoder losses take ``(columns, labels)``: the text columns as lists of strings (the loss tokenizes
  them with its cross-encoder), and a label tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sentencekit.errors import InvalidInputError

__all__ = [
    "BiEncoderCollator",
    "CrossEncoderCollator",
    "ExampleCollator",
    "label_tensor",
    "to_device",
]


def to_device(value: Any, device: torch.device) -> Any:
    """Move every tensor inside ``value`` (nested lists, tuples and dicts) to ``device``."""
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {key: to_device(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(item, device) for item in value)
    return value


def label_tensor(labels: Sequence[Any] | None) -> Tensor | None:
    """Stack labels into a tensor: ``long`` for integers, ``float32`` for scores, stacked for vectors."""
    if labels is None:
        return None
    if isinstance(labels[0], Tensor):
        return torch.stack(list(labels))
    if isinstance(labels[0], np.ndarray):
        return torch.from_numpy(np.stack(labels))
    return torch.tensor(list(labels))


class BiEncoderCollator:
    """Tokenizes each text column with a :class:`~sentencekit.SentenceTransformer`.

    Args:
        model: The model being trained; its ``tokenize`` pads each column separately.
        prompts: A prompt per text column (``None``: none), prepended before tokenizing. The prompt's token
            count goes along as ``prompt_length``, so a ``Pooling(include_prompt=False)`` leaves it out.
        routes: A :class:`~sentencekit.modules.Router` route (task) per text column (``None``: the default
            route); it goes along in the features, so the forward pass takes the same route.
    """

    def __init__(
        self,
        model: Any,
        prompts: Sequence[str | None] | None = None,
        routes: Sequence[str | None] | None = None,
    ) -> None:
        self.model = model
        self.prompts = list(prompts or [])
        self.routes = list(routes or [])

    def __call__(self, columns: list[list[str]], labels: Sequence[Any] | None) -> tuple[list[Any], Any]:
        """Return one feature dict per column and the label tensor (``None`` without labels)."""
        features = []
        for position, texts in enumerate(columns):
            prompt = self.prompts[position] if position < len(self.prompts) else None
            route = self.routes[position] if position < len(self.routes) else None
            if prompt:
                texts = [prompt + text for text in texts]
            batch = self.model.tokenize(texts, task=route) if route else self.model.tokenize(texts)
            if prompt:
                batch["prompt_length"] = self.model._prompt_length(prompt, route)  # cached by the model
            features.append(batch)
        return features, label_tensor(labels)


class CrossEncoderCollator:
    """Keeps the text columns as strings (the cross-encoder loss tokenizes pairs itself).

    Args:
        prompts: A prompt per text column (``None``: none), prepended to each text (to each document of a
            column of document lists).
        label_lists: Labels are one list per row, as long as that row's document list (the listwise losses):
            they go to the loss as a list of float tensors, which may differ in length.
    """

    def __init__(self, prompts: Sequence[str | None] | None = None, label_lists: bool = False) -> None:
        self.prompts = list(prompts or [])
        self.label_lists = label_lists

    def __call__(self, columns: list[list[Any]], labels: Sequence[Any] | None) -> tuple[list[Any], Any]:
        """Return the (prompted) text columns and the labels."""
        out = []
        for position, texts in enumerate(columns):
            prompt = self.prompts[position] if position < len(self.prompts) else None
            out.append([_prompted(prompt, text) for text in texts] if prompt else list(texts))
        if self.label_lists and labels is not None:
            return out, [torch.as_tensor(np.asarray(row, dtype=np.float32)) for row in labels]
        return out, label_tensor(labels)


def _prompted(prompt: str, text: str | Sequence[str]) -> str | list[str]:
    return prompt + text if isinstance(text, str) else [prompt + document for document in text]


class ExampleCollator:
    """``collate_fn`` for a ``DataLoader`` over :class:`~sentencekit.InputExample` (the ``fit`` API).

    Attributes:
        skipping: While true, batches are dropped without tokenizing (used to fast-forward on resume).
    """

    def __init__(self, columns_collator: BiEncoderCollator | CrossEncoderCollator) -> None:
        self.columns_collator = columns_collator
        self.skipping = False

    def __call__(self, examples: list[Any]) -> tuple[list[Any], Any] | None:
        """Collate a list of ``InputExample`` into the inner collator's output."""
        if self.skipping:
            return None
        width = len(examples[0].texts)
        if any(len(example.texts) != width for example in examples):
            widths = sorted({len(example.texts) for example in examples})
            raise InvalidInputError(
                f"The InputExamples of one batch have different numbers of texts: {widths}."
            )
        columns = [list(column) for column in zip(*(example.texts for example in examples), strict=True)]
        for column in columns:
            for text in column:
                if not isinstance(text, str):
                    raise InvalidInputError(f"InputExample texts must be strings, got {type(text).__name__}.")
        return self.columns_collator(columns, [example.label for example in examples])
