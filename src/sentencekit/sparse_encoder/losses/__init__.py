"""Training losses for :class:`~sentencekit.sparse_encoder.SparseEncoder` models, with the reference's names.

A sparse model is trained with a wrapper that adds a sparsity objective to an inner loss: :class:`SpladeLoss`
(or :class:`CachedSpladeLoss`) for SPLADE models (MLMTransformer + SpladePooling), which adds FLOPS
regularization of the query and document embeddings, and :class:`CSRLoss` for models ending in a
SparseAutoEncoder, which adds its reconstruction terms. The wrapper embeds each column once and gives the
embeddings to the inner loss's ``compute_loss_from_embeddings``; it returns a dict of named terms, which
training sums. The inner losses below refuse to run alone (``AttributeError``), except SparseMSELoss.

======================================  ======================  ==============================================
data (text columns)                     labels                  inner losses (inside SpladeLoss / CSRLoss)
======================================  ======================  ==============================================
(anchor, positive[, negatives...])      none                    SparseMultipleNegativesRankingLoss
(anchor, positive, negative)            none                    SparseTripletLoss
(query, positive, negatives...)         teacher margins or      SparseMarginMSELoss
                                        scores
(query, positive, negatives...)         teacher scores          SparseDistillKLDivLoss
(sentence_A, sentence_B)                similarity score        SparseCoSENTLoss, SparseAnglELoss,
                                                                SparseCosineSimilarityLoss
(text[, translation])                   teacher embedding       SparseMSELoss (also alone)
any of the above                        as the inner loss       SpladeLoss, CachedSpladeLoss, CSRLoss
                                                                (the wrappers)
embeddings (not texts)                  none                    FlopsLoss, CSRReconstructionLoss (the
                                                                wrappers' parts)
======================================  ======================  ==============================================
"""

from __future__ import annotations

from sentencekit.sparse_encoder.losses.cached_splade import CachedSpladeLoss
from sentencekit.sparse_encoder.losses.csr import CSRLoss, CSRReconstructionLoss
from sentencekit.sparse_encoder.losses.distillation import (
    SparseDistillKLDivLoss,
    SparseMarginMSELoss,
    SparseMSELoss,
)
from sentencekit.sparse_encoder.losses.flops import FlopsLoss
from sentencekit.sparse_encoder.losses.pair_similarity import (
    SparseAnglELoss,
    SparseCoSENTLoss,
    SparseCosineSimilarityLoss,
)
from sentencekit.sparse_encoder.losses.ranking import SparseMultipleNegativesRankingLoss, SparseTripletLoss
from sentencekit.sparse_encoder.losses.splade import SpladeLoss

__all__ = [
    "CSRLoss",
    "CSRReconstructionLoss",
    "CachedSpladeLoss",
    "FlopsLoss",
    "SparseAnglELoss",
    "SparseCoSENTLoss",
    "SparseCosineSimilarityLoss",
    "SparseDistillKLDivLoss",
    "SparseMSELoss",
    "SparseMarginMSELoss",
    "SparseMultipleNegativesRankingLoss",
    "SparseTripletLoss",
    "SpladeLoss",
]
