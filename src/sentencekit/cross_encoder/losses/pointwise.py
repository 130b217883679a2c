"""Pointwise cross-encoder losses: each (query, document) pair is scored and compared with its own label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from sentencekit.cross_encoder.losses._pairs import check_ce_labels, check_ce_model, pair_logits, text_columns
from sentencekit.losses._common import function_name

if TYPE_CHECKING:
    from sentencekit.cross_encoder.model import CrossEncoder

__all__ = ["BinaryCrossEntropyLoss", "CrossEntropyLoss", "MSELoss"]


class BinaryCrossEntropyLoss(nn.Module):
    """Binary cross-entropy of the pair's single logit against a 0/1 (or soft, in [0, 1]) label.

    ==================================  ================================================
    Inputs (text columns, in order)     Labels
    ==================================  ================================================
    (query, document)                   1 relevant / 0 not, or a score in [0, 1]
    ==================================  ================================================

    When to use: the default for training a reranker (``num_labels=1``) from judged or mined pairs, and for
    graded similarity scaled to [0, 1] (e.g. STSb score / 5). :meth:`CrossEncoder.predict` then returns
    ``sigmoid(logit)``, a probability of relevance.

    Related: :class:`MSELoss` (regress a teacher's logit), :class:`MultipleNegativesRankingLoss` and
    :class:`ListNetLoss` / :class:`LambdaLoss` (compare documents of one query with each other).

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        activation_fn: Applied to the logits before the loss (identity by default; the loss adds the sigmoid).
        pos_weight: Weight of the positive class, e.g. ``torch.tensor(4.0)`` with 4 negatives per positive.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Example:
        >>> from sentencekit.cross_encoder import CrossEncoder, losses
        >>> model = CrossEncoder("microsoft/MiniLM-L12-H384-uncased", num_labels=1)  # doctest: +SKIP
        >>> loss = losses.BinaryCrossEntropyLoss(model)  # doctest: +SKIP
        >>> loss([["what is a cat?", "what is a cat?"], ["A cat is a small pet.", "Paris is a city."]],
        ...      torch.tensor([1.0, 0.0])).backward()  # doctest: +SKIP
    """

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module | None = None,
        pos_weight: Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        check_ce_model(type(self).__name__, model, num_labels=1)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.pos_weight = pos_weight
        self.bce_with_logits_loss = nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction=reduction)

    def forward(self, inputs: Sequence[Sequence[str]], labels: Tensor, prompt: str | None = None) -> Tensor:
        """Score the ``(inputs[0][i], inputs[1][i])`` pairs and return the loss."""
        first, second = text_columns(type(self).__name__, inputs, exactly=2)
        logits = self.activation_fn(pair_logits(self.model, first, second, prompt).view(-1))
        labels = check_ce_labels(type(self).__name__, labels, logits.shape[0])
        result: Tensor = self.bce_with_logits_loss(logits, labels.to(logits.device).float())
        return result

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        pos_weight = None if self.pos_weight is None else float(self.pos_weight.item())
        return {"activation_fn": function_name(self.activation_fn), "pos_weight": pos_weight}


class CrossEntropyLoss(nn.Module):
    """Softmax cross-entropy over the model's labels: pair classification (e.g. NLI) with a class index.

    ==================================  ==============================================
    Inputs (text columns, in order)     Labels
    ==================================  ==============================================
    (sentence_A, sentence_B)            class index in ``[0, num_labels)``
    ==================================  ==============================================

    When to use: a CrossEncoder with ``num_labels >= 2`` that classifies pairs (entailment / neutral /
    contradiction, duplicate / not).

    Related: :class:`BinaryCrossEntropyLoss` (one relevance logit), :class:`sentencekit.losses.SoftmaxLoss`
    (the bi-encoder counterpart).

    Args:
        model: A CrossEncoder with two or more labels.
        activation_fn: Applied to the logits before the loss (identity by default).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        label_smoothing: As in ``torch.nn.CrossEntropyLoss``.

    Example:
        >>> model = CrossEncoder("microsoft/MiniLM-L12-H384-uncased", num_labels=3)  # doctest: +SKIP
        >>> loss = losses.CrossEntropyLoss(model)  # doctest: +SKIP
        >>> loss([["A man eats."], ["Nobody eats."]], torch.tensor([2]))  # doctest: +SKIP
    """

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        check_ce_model(type(self).__name__, model)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.ce_loss = nn.CrossEntropyLoss(reduction=reduction, label_smoothing=label_smoothing)

    def forward(self, inputs: Sequence[Sequence[str]], labels: Tensor, prompt: str | None = None) -> Tensor:
        """Score the pairs and return the loss against the class labels."""
        first, second = text_columns(type(self).__name__, inputs, exactly=2)
        logits = self.activation_fn(pair_logits(self.model, first, second, prompt))
        rows = logits.shape[0]
        if labels.is_floating_point() and labels.shape == logits.shape:  # class probabilities
            result: Tensor = self.ce_loss(logits, labels.to(logits.device))
            return result
        labels = check_ce_labels(type(self).__name__, labels, rows)
        result = self.ce_loss(logits, labels.to(logits.device).long())
        return result

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"activation_fn": function_name(self.activation_fn)}


class MSELoss(nn.Module):
    """Mean squared error between the pair's single logit and a target score (knowledge distillation).

    ==================================  =================================================
    Inputs (text columns, in order)     Labels
    ==================================  =================================================
    (query, document)                   target score, e.g. a teacher cross-encoder's logit
    ==================================  =================================================

    When to use: distilling a larger cross-encoder into a smaller one, or regressing a graded score.

    Related: :class:`MarginMSELoss` (distils score differences), :class:`BinaryCrossEntropyLoss`.

    Args:
        model: A CrossEncoder with ``num_labels=1``.
        activation_fn: Applied to the logits before the loss (identity by default).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Example:
        >>> loss = losses.MSELoss(student)  # doctest: +SKIP
        >>> loss([["q"], ["d"]], teacher.predict([("q", "d")], activation_fn=torch.nn.Identity(),
        ...                                      convert_to_tensor=True))  # doctest: +SKIP
    """

    def __init__(
        self, model: CrossEncoder, activation_fn: nn.Module | None = None, reduction: str = "mean"
    ) -> None:
        super().__init__()
        check_ce_model(type(self).__name__, model, num_labels=1)
        self.model = model
        self.activation_fn = activation_fn if activation_fn is not None else nn.Identity()
        self.loss_fct = nn.MSELoss(reduction=reduction)

    def forward(self, inputs: Sequence[Sequence[str]], labels: Tensor, prompt: str | None = None) -> Tensor:
        """Score the pairs and return the squared error against the targets."""
        first, second = text_columns(type(self).__name__, inputs, exactly=2)
        logits = self.activation_fn(pair_logits(self.model, first, second, prompt).view(-1))
        labels = check_ce_labels(type(self).__name__, labels, logits.shape[0])
        result: Tensor = self.loss_fct(logits, labels.detach().to(logits.device).float())
        return result

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card."""
        return {"activation_fn": function_name(self.activation_fn)}
