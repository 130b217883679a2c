"""SoftmaxLoss: a classifier on top of the pair's embeddings (the original SBERT NLI objective)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.losses._common import Features, check_columns, check_labels, embed_columns, function_name

__all__ = ["SoftmaxLoss"]


class SoftmaxLoss(nn.Module):
    """Cross-entropy of a linear classifier over ``(u, v, |u - v|[, u * v])`` of the two embeddings.

    The classifier's weights live in the loss (they are trained with it and discarded afterwards); only the
    embedding model is kept.

    ========================================  ==============================================
    Inputs (text columns, in order)           Labels
    ========================================  ==============================================
    (sentence_A, sentence_B)                  class index in ``[0, num_labels)``
    ========================================  ==============================================

    When to use: pair classification data such as NLI (entailment / neutral / contradiction), as SBERT was
    first trained. For NLI, :class:`MultipleNegativesRankingLoss` on (anchor, entailment, contradiction)
    triplets usually gives better embeddings.

    Related: :class:`MultipleNegativesRankingLoss`, :class:`ContrastiveLoss`,
    :class:`sentencekit.cross_encoder.losses.CrossEntropyLoss` (the cross-encoder counterpart).

    Args:
        model: The SentenceTransformer being trained.
        embedding_dimension: Width of the model's sentence embeddings
            (``model.get_sentence_embedding_dimension()``).
        num_labels: Number of classes.
        concatenation_sent_rep: Feed ``u`` and ``v``.
        concatenation_sent_difference: Feed ``|u - v|``.
        concatenation_sent_multiplication: Feed ``u * v``.
        loss_fct: Classification loss on the logits (cross-entropy by default).
        sentence_embedding_dimension: Older name of ``embedding_dimension``.

    Example:
        >>> dim = model.get_sentence_embedding_dimension()  # doctest: +SKIP
        >>> loss = losses.SoftmaxLoss(model, dim, num_labels=3)  # doctest: +SKIP
        >>> batch = [model.tokenize(["A man eats."]), model.tokenize(["Nobody eats."])]  # doctest: +SKIP
        >>> loss(batch, torch.tensor([2])).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        embedding_dimension: int | None = None,
        num_labels: int | None = None,
        concatenation_sent_rep: bool = True,
        concatenation_sent_difference: bool = True,
        concatenation_sent_multiplication: bool = False,
        loss_fct: nn.Module | None = None,
        *,
        sentence_embedding_dimension: int | None = None,
    ) -> None:
        super().__init__()
        if embedding_dimension is None:
            embedding_dimension = sentence_embedding_dimension
        if embedding_dimension is None or num_labels is None:
            raise ValueError(
                "SoftmaxLoss needs embedding_dimension (model.get_sentence_embedding_dimension()) and "
                "num_labels."
            )
        parts = 2 * concatenation_sent_rep + concatenation_sent_difference + concatenation_sent_multiplication
        if parts == 0:
            raise ValueError(
                "SoftmaxLoss needs at least one of concatenation_sent_rep, concatenation_sent_difference and "
                "concatenation_sent_multiplication."
            )
        self.model = model
        self.num_labels = int(num_labels)
        self.concatenation_sent_rep = concatenation_sent_rep
        self.concatenation_sent_difference = concatenation_sent_difference
        self.concatenation_sent_multiplication = concatenation_sent_multiplication
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        self.classifier = nn.Linear(parts * int(embedding_dimension), self.num_labels, device=device)
        self.loss_fct = loss_fct if loss_fct is not None else nn.CrossEntropyLoss()

    def classifier_logits(self, u: Tensor, v: Tensor) -> Tensor:
        """The classifier's logits for embeddings ``u`` and ``v``, shape ``(batch, num_labels)``."""
        parts: list[Tensor] = []
        if self.concatenation_sent_rep:
            parts += [u, v]
        if self.concatenation_sent_difference:
            parts.append((u - v).abs())
        if self.concatenation_sent_multiplication:
            parts.append(u * v)
        logits: Tensor = self.classifier(torch.cat(parts, dim=1).to(self.classifier.weight.dtype))
        return logits

    def forward(self, sentence_features: Iterable[Features], labels: Tensor | None) -> Any:
        """The scalar loss; with ``labels=None``, the embeddings and the logits instead (for evaluation)."""
        embeddings = embed_columns(self.model, sentence_features)
        check_columns(type(self).__name__, len(embeddings), exactly=2)
        logits = self.classifier_logits(embeddings[0], embeddings[1])
        if labels is None:
            return embeddings, logits
        return self._loss(logits, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the two columns' embeddings."""
        check_columns(type(self).__name__, len(embeddings), exactly=2)
        return self._loss(self.classifier_logits(embeddings[0], embeddings[1]), labels)

    def _loss(self, logits: Tensor, labels: Tensor | None) -> Tensor:
        if labels is not None and labels.shape == logits.shape and labels.is_floating_point():
            result: Tensor = self.loss_fct(logits, labels)  # class probabilities
            return result
        labels = check_labels(type(self).__name__, labels, logits.shape[0])
        result = self.loss_fct(logits, labels)
        return result

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {
            "num_labels": self.num_labels,
            "concatenation_sent_rep": self.concatenation_sent_rep,
            "concatenation_sent_difference": self.concatenation_sent_difference,
            "concatenation_sent_multiplication": self.concatenation_sent_multiplication,
            "loss_fct": function_name(self.loss_fct),
        }
