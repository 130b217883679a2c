"""What a model card says beyond what training records: language, license, a name, dataset ids, tags.

``SentenceTransformer(..., model_card_data=SentenceTransformerModelCardData(...))`` and
``CrossEncoder(..., model_card_data=CrossEncoderModelCardData(...))`` take them under the reference's names.
``save`` then writes ``README.md`` (see :mod:`sentencekit.training.model_card`): for a model trained here, or
for any model whose card data says something.

Example:
    >>> data = SentenceTransformerModelCardData(language="en", license="apache-2.0", model_name="MiniLM NLI")
    >>> data.language
    ['en']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

__all__ = ["CrossEncoderModelCardData", "SentenceTransformerModelCardData", "checked_card_data"]


@dataclass
class SentenceTransformerModelCardData:
    """Card facts for a bi-encoder, written into its ``README.md`` on ``save``.

    Attributes:
        language: Language code(s) of the training data (``"en"`` or ``["en", "de"]``).
        license: The model's license, e.g. ``"apache-2.0"``.
        model_name: The card's title (default: "A ... fine-tuned from <base model>").
        model_id: The Hub id the model will have; the card's usage example loads it by that id.
        train_datasets: One dict per training dataset: ``{"id": hub_id}`` and/or ``{"name": label}``.
        eval_datasets: The same for the evaluation datasets.
        task_name: What the model is for, in a few words ("semantic search over support tickets").
        tags: Tags for the card's metadata.
        local_files_only: Accepted for the reference's signature; writing a card here fetches nothing.
        generate_widget_examples: Accepted for the reference's signature; sentencekit writes no Hub widget.
    """

    language: str | list[str] | None = field(default_factory=list)
    license: str | None = None
    model_name: str | None = None
    model_id: str | None = None
    train_datasets: list[dict[str, Any]] = field(default_factory=list)
    eval_datasets: list[dict[str, Any]] = field(default_factory=list)
    task_name: str | None = "semantic search, similarity, clustering, classification and paraphrase mining"
    tags: list[str] | None = field(
        default_factory=lambda: ["sentence-transformers", "sentence-similarity", "feature-extraction"]
    )
    local_files_only: bool = False
    generate_widget_examples: bool = True

    def __post_init__(self) -> None:
        if self.language is None:
            self.language = []
        elif isinstance(self.language, str):
            self.language = [self.language]
        self.tags = list(self.tags or [])
        for name in ("language", "tags"):
            values = getattr(self, name)
            if not all(isinstance(v, str) and v for v in values):
                raise TypeError(f"{name} must be a string or a list of non-empty strings, got {values!r}.")
        for name in ("license", "model_name", "model_id", "task_name"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a string or None, got {type(value).__name__}.")
        for name in ("train_datasets", "eval_datasets"):
            datasets = getattr(self, name)
            if not all(isinstance(d, Mapping) and ("id" in d or "name" in d) for d in datasets):
                raise TypeError(
                    f"{name} must be a list of dicts with an 'id' (Hub dataset id) or a 'name', "
                    f"e.g. [{{'id': 'sentence-transformers/all-nli'}}]; got {datasets!r}."
                )

    def says_something(self) -> bool:
        """Whether any field differs from its default, i.e. the user told the card something."""
        default = type(self)()
        return any(getattr(self, f.name) != getattr(default, f.name) for f in fields(self))


@dataclass
class CrossEncoderModelCardData(SentenceTransformerModelCardData):
    """Card facts for a cross-encoder; the fields of :class:`SentenceTransformerModelCardData`."""

    task_name: str | None = None
    tags: list[str] | None = field(
        default_factory=lambda: ["sentence-transformers", "cross-encoder", "reranker"]
    )


@dataclass
class SparseEncoderModelCardData(SentenceTransformerModelCardData):
    """Card facts for a sparse encoder; the fields of :class:`SentenceTransformerModelCardData`."""

    task_name: str | None = None
    tags: list[str] | None = field(
        default_factory=lambda: ["sentence-transformers", "sparse-encoder", "sparse"]
    )


_Card = TypeVar("_Card", bound=SentenceTransformerModelCardData)


def checked_card_data(value: object, expected: type[_Card]) -> _Card:
    """``value`` when it is an ``expected`` (a fresh default one for ``None``).

    Raises:
        TypeError: For anything else, e.g. the reference's own card data class, naming the one to use.
    """
    if value is None:
        return expected()
    if not isinstance(value, expected):
        raise TypeError(
            f"model_card_data must be a {expected.__name__}; got {type(value).__module__}."
            f"{type(value).__name__}. Use `from sentencekit.model_card import {expected.__name__}`."
        )
    return value
