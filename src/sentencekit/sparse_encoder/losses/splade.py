"""SpladeLoss: a retrieval or distillation loss plus FLOPS regularization of queries and documents."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.errors import InvalidInputError
from sentencekit.losses._common import Features, embed_columns
from sentencekit.sparse_encoder.losses.flops import FlopsLoss

__all__ = ["SpladeLoss"]

logger = logging.getLogger(__name__)


class SpladeLoss(nn.Module):
    """Trains a SPLADE model: an inner loss for quality plus weighted sparsity regularizers for speed.

    Each text column is embedded once; the embeddings go to the inner loss's
    ``compute_loss_from_embeddings`` and to the regularizers (:class:`FlopsLoss` by default). The first
    column is the query, the others are documents (positives and negatives together). The result is a dict
    of named terms that training sums and logs: ``base_loss`` (or the inner loss's own terms),
    ``document_regularizer_loss`` and, when ``query_regularizer_weight`` is set, ``query_regularizer_loss``,
    each already multiplied by its weight.

    ======================================  ======================================
    Inputs (text columns, in order)         Labels
    ======================================  ======================================
    whatever the inner loss takes           whatever the inner loss takes
    (query first, then documents)
    ======================================  ======================================

    When to use: always, to train a SPLADE model (MLMTransformer + SpladePooling); the sparse losses
    (:class:`SparseMultipleNegativesRankingLoss`, :class:`SparseMarginMSELoss`, ...) refuse to run without
    it. Larger weights give sparser, faster, usually less accurate embeddings; :class:`SparseEncoderTrainer`
    ramps them up from 0 over the first third of training. Use ``use_document_regularizer_only=True`` when
    every column is the same kind of text (pairs of sentences or documents).

    Related: :class:`CachedSpladeLoss` (the same with gradient caching), :class:`FlopsLoss`,
    :class:`CSRLoss` (for models ending in a SparseAutoEncoder).

    Args:
        model: The SparseEncoder being trained.
        loss: The inner loss, built on the same model; it must have ``compute_loss_from_embeddings``.
        document_regularizer_weight: Weight of the document term ("lambda_d"); applied to every column but
            the first.
        query_regularizer_weight: Weight of the query term ("lambda_q"); ``None`` leaves queries
            unregularized (fine for inference-free models, whose queries are not encoded by the model).
        document_regularizer: Replaces the default :class:`FlopsLoss` for documents.
        query_regularizer: Replaces the default :class:`FlopsLoss` for queries.
        document_regularizer_threshold: Threshold of the default document :class:`FlopsLoss`: only documents
            with more active dimensions than this are regularized.
        query_regularizer_threshold: The same for queries.
        use_document_regularizer_only: Treat every column as a document: one document term over all
            columns and no query term.

    Example:
        >>> from sentencekit.sparse_encoder import SparseEncoder, losses
        >>> model = SparseEncoder("naver/splade-cocondenser-ensembledistil")  # doctest: +SKIP
        >>> loss = losses.SpladeLoss(
        ...     model, losses.SparseMultipleNegativesRankingLoss(model),
        ...     document_regularizer_weight=3e-5, query_regularizer_weight=5e-5)  # doctest: +SKIP
        >>> batch = [model.tokenize(["who wrote hamlet"]), model.tokenize(["Shakespeare."])]  # doctest: +SKIP
        >>> terms = loss(batch)  # doctest: +SKIP
        >>> sum(terms.values()).backward()  # doctest: +SKIP
    """

    # The inner loss and the regularizers are duck-typed: they need a compute_loss_from_embeddings method.
    loss: Any
    document_regularizer: Any
    query_regularizer: Any

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        document_regularizer_weight: float,
        query_regularizer_weight: float | None = None,
        document_regularizer: nn.Module | None = None,
        query_regularizer: nn.Module | None = None,
        document_regularizer_threshold: int | None = None,
        query_regularizer_threshold: int | None = None,
        use_document_regularizer_only: bool = False,
    ) -> None:
        super().__init__()
        if not callable(getattr(loss, "compute_loss_from_embeddings", None)):
            raise ValueError(
                f"SpladeLoss needs an inner loss with a compute_loss_from_embeddings(embeddings, labels) "
                f"method, which {type(loss).__name__} lacks; use one of the sparse losses, e.g. "
                "SparseMultipleNegativesRankingLoss(model)."
            )
        if use_document_regularizer_only and query_regularizer_weight is not None:
            logger.warning(
                "use_document_regularizer_only=True regularizes every column as a document, so "
                "query_regularizer_weight=%s is ignored; leave it as None.",
                query_regularizer_weight,
            )
            query_regularizer_weight = None
        elif query_regularizer_weight is None and not use_document_regularizer_only:
            logger.warning(
                "query_regularizer_weight is None: queries are not regularized. That suits inference-free "
                "models; otherwise set a positive query_regularizer_weight (e.g. 5e-5) or pass "
                "use_document_regularizer_only=True when all columns are documents."
            )
        self.model = model
        self.loss = loss
        self.document_regularizer_weight = document_regularizer_weight
        self.query_regularizer_weight = query_regularizer_weight
        self.use_document_regularizer_only = use_document_regularizer_only
        self.document_regularizer = (
            document_regularizer
            if document_regularizer is not None
            else FlopsLoss(model, document_regularizer_threshold)
        )
        self.query_regularizer = query_regularizer
        if query_regularizer is None and not use_document_regularizer_only:
            self.query_regularizer = FlopsLoss(model, query_regularizer_threshold)

    def forward(
        self, sentence_features: Iterable[Features], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Embed every column once; return the weighted terms (training sums them)."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Any = None) -> dict[str, Tensor]:
        """The named, weighted terms from the columns' embeddings (query first)."""
        if not self.use_document_regularizer_only and len(embeddings) < 2:
            raise InvalidInputError(
                f"SpladeLoss got {len(embeddings)} text column; the first column is the query and the others "
                "are documents, so it needs at least two. With one kind of text only, pass "
                "use_document_regularizer_only=True."
            )
        base = self.loss.compute_loss_from_embeddings(embeddings, labels)
        terms = dict(base) if isinstance(base, dict) else {"base_loss": base}
        documents = embeddings if self.use_document_regularizer_only else embeddings[1:]
        document_term = self.document_regularizer.compute_loss_from_embeddings(torch.cat(documents))
        terms["document_regularizer_loss"] = document_term * self.document_regularizer_weight
        if self.query_regularizer_weight is not None and self.query_regularizer is not None:
            query_term = self.query_regularizer.compute_loss_from_embeddings(embeddings[0])
            terms["query_regularizer_loss"] = query_term * self.query_regularizer_weight
        return terms

    def get_config_dict(self) -> dict[str, Any]:
        """Hyper-parameters, for the model card (regularizers named only when they are not FLOPS)."""
        config: dict[str, Any] = {
            "loss": type(self.loss).__name__,
            "document_regularizer_weight": self.document_regularizer_weight,
        }
        if self.query_regularizer_weight is not None:
            config["query_regularizer_weight"] = self.query_regularizer_weight
        for side in ("document", "query"):
            regularizer = getattr(self, f"{side}_regularizer")
            if regularizer is None:
                continue
            if not isinstance(regularizer, FlopsLoss):
                config[f"{side}_regularizer"] = type(regularizer).__name__
            if getattr(regularizer, "threshold", None) is not None:
                config[f"{side}_regularizer_threshold"] = regularizer.threshold
        return config
