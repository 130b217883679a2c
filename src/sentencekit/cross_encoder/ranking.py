"""What :meth:`CrossEncoder.rank <sentencekit.cross_encoder.CrossEncoder.rank>` does: hits, best first."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import Tensor

from sentencekit.cross_encoder.inputs import as_documents
from sentencekit.errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover - the model module imports this one
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = ["rank_documents"]


def rank_documents(
    model: CrossEncoder,
    query: str,
    documents: Any,
    *,
    top_k: int | None,
    return_documents: bool,
    batch_size: int,
    show_progress_bar: bool | None,
    activation_fn: Callable[[Tensor], Tensor] | None,
    prompt_name: str | None,
    prompt: str | None,
) -> list[dict[str, Any]]:
    """Score ``documents`` against ``query`` with ``model.predict`` and return the hits, highest score first.

    The arguments and the result are those of :meth:`CrossEncoder.rank`, which documents them.
    """
    if model.num_labels != 1:
        raise ValueError(
            f"rank() needs a model with one label; this one has {model.num_labels}. Use predict() on "
            "(query, document) pairs and pick the label you need."
        )
    docs = as_documents(query, documents)
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise InvalidInputError(f"top_k must be None or a non-negative integer, got {top_k!r}.")
    if not docs:
        return []
    scores = model.predict(
        [(query, doc) for doc in docs],
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
        activation_fn=activation_fn,
        convert_to_tensor=True,
        prompt_name=prompt_name,
        prompt=prompt,
    ).tolist()
    order = sorted(range(len(docs)), key=lambda i: -scores[i])  # stable: ties keep the input order
    results: list[dict[str, Any]] = []
    for i in order[:top_k]:
        hit: dict[str, Any] = {"corpus_id": i, "score": scores[i]}
        if return_documents:
            hit["text"] = docs[i]
        results.append(hit)
    return results
