"""Listwise cross-encoder losses: a query with a list of documents and a graded label for each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentencekit.cross_encoder.losses._pairs import check_ce_model, pair_logits
from sentencekit.errors import InvalidInputError
from sentencekit.losses._common import function_name

if TYPE_CHECKING:
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = ["ListNetLoss", "ScoredLists", "score_lists"]

# Score given to the empty slots of shorter lists: far below any real logit, yet finite (no inf - inf).
PADDING_SCORE = -1e16


class ScoredLists:
    """A batch of ranked lists as padded matrices: ``scores`` and ``labels``, ``(queries, longest list)``.

    Empty slots hold :data:`PADDING_SCORE` in ``scores`` and ``-inf`` in ``labels``.
    """

    def __init__(self, scores: Tensor, labels: Tensor) -> None:
        self.scores = scores
        self.labels = labels


def score_lists(
    loss: str,
    model: CrossEncoder,
    inputs: Sequence[Any],
    labels: Any,
    activation_fn: nn.Module,
    mini_batch_size: int | None,
    prompt: str | None,
) -> ScoredLists:
    """Score every (query, document) of the lists and pad them into matrices.

    Args:
        loss: Name of the calling loss, for messages.
        model: The CrossEncoder.
        inputs: ``[queries, documents]`` where ``documents[i]`` is the list of documents of query ``i``.
        labels: One label tensor (or list) per query, as long as its document list.
        activation_fn: Applied to the logits.
        mini_batch_size: Pairs per forward pass (``None``: as many as there are queries; ``<= 0``: all).
        prompt: Prepended to every query.
    """
    if isinstance(labels, Tensor):
        raise InvalidInputError(
            f"{loss} expects one list of labels per query (a list of tensors), got a single tensor."
        )
    if len(inputs) != 2:
        raise InvalidInputError(
            f"{loss} takes two columns, queries and lists of documents; got {len(inputs)}."
        )
    queries, documents = list(inputs[0]), [list(docs) for docs in inputs[1]]
    lengths = [len(docs) for docs in documents]
    label_lists = [torch.as_tensor(lab, dtype=torch.float32).reshape(-1) for lab in labels]
    if len(queries) != len(documents) or lengths != [len(lab) for lab in label_lists]:
        raise InvalidInputError(
            f"{loss}: documents per query {lengths} and labels per query {[len(lab) for lab in label_lists]} "
            f"must match, for {len(queries)} queries."
        )
    if not lengths or min(lengths) == 0:
        raise InvalidInputError(f"{loss} needs at least one document per query.")
    firsts = [q for q, docs in zip(queries, documents, strict=True) for _ in docs]
    seconds = [d for docs in documents for d in docs]
    step = mini_batch_size or len(queries)
    if step <= 0:
        step = len(seconds)
    logits = torch.cat(
        [
            pair_logits(model, firsts[i : i + step], seconds[i : i + step], prompt).view(-1)
            for i in range(0, len(seconds), step)
        ]
    )
    logits = activation_fn(logits.float())
    device = logits.device
    rows = torch.repeat_interleave(torch.arange(len(queries)), torch.tensor(lengths)).to(device)
    cols = torch.cat([torch.arange(n) for n in lengths]).to(device)
    scores = torch.full((len(queries), max(lengths)), PADDING_SCORE, device=device)
    scores = scores.index_put((rows, cols), logits)
    gold = torch.full((len(queries), max(lengths)), -torch.inf, device=device)
    gold[rows, cols] = torch.cat(label_lists).to(device)
    return ScoredLists(scores, gold)


class ListNetLoss(nn.Module):
    """ListNet: cross-entropy between the softmax of the gold labels and the softmax of the scores, per list.

    ==========================================  =========================================================
    Inputs (columns)                            Labels
    ==========================================  =========================================================
    (query, [doc_1, ..., doc_n])                ``[label_1, ..., label_n]`` (graded relevance, any scale)
    ==========================================  =========================================================

    Lists may differ in length; shorter ones are padded and the padding is ignored.

    When to use: training a reranker on graded relevance judgements or teacher scores for whole candidate
    lists (top-1 probability matching).

    Related: :class:`LambdaLoss` (optimizes nDCG more directly), :class:`MultipleNegativesRankingLoss`
    (one positive per list), :class:`BinaryCrossEntropyLoss` (pointwise).

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        activation_fn: Applied to the logits (identity by default).
        mini_batch_size: Pairs per forward pass (``None``: as many as queries in the batch; ``<= 0``: all).

    Example:
        >>> loss = losses.ListNetLoss(model)  # doctest: +SKIP
        >>> loss([["what is a cat"], [["A cat is a pet.", "Cats purr.", "Paris"]]],
        ...      [torch.tensor([2.0, 1.0, 0.0])]).backward()  # doctest: +SKIP
    """

    def __init__(
        self, model: CrossEncoder, activation_fn: nn.Module | None = None, mini_batch_size: int | None = None
    ) -> None:
        super().__init__()
        check_ce_model(type(self).__name__, model, num_labels=1)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.mini_batch_size = mini_batch_size

    def forward(self, inputs: Sequence[Any], labels: Any, prompt: str | None = None) -> Tensor:
        """Score every list and return the mean cross-entropy of the two top-1 distributions."""
        lists = score_lists(
            type(self).__name__, self.model, inputs, labels, self.activation_fn, self.mini_batch_size, prompt
        )
        target = torch.softmax(lists.labels, dim=1)
        return nn.functional.cross_entropy(lists.scores, target)

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"activation_fn": function_name(self.activation_fn), "mini_batch_size": self.mini_batch_size}
