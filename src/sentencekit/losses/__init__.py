"""Training losses for :class:`~sentencekit.SentenceTransformer` bi-encoders, with the reference's names.

Every loss is a ``torch.nn.Module`` built around the model it trains; ``loss(sentence_features, labels)``
takes one tokenized batch per text column (``model.tokenize(texts)``) and the batch's labels, and returns a
scalar (GlobalOrthogonalRegularizationLoss: a dict of named scalars, which training sums). Most losses
also offer ``compute_loss_from_embeddings(embeddings, labels)``. Pick the loss by the data you have:

======================================  ======================  ==============================================
data (text columns)                     labels                  losses
======================================  ======================  ==============================================
(anchor, positive[, negatives...])      none                    MultipleNegativesRankingLoss,
                                                                MultipleNegativesSymmetricRankingLoss,
                                                                CachedMultipleNegativesRankingLoss,
                                                                CachedMultipleNegativesSymmetricRankingLoss,
                                                                GISTEmbedLoss, CachedGISTEmbedLoss
(anchor, positive)                      none                    MegaBatchMarginLoss (large batches)
(sentence_A, sentence_B)                similarity score        CoSENTLoss, AnglELoss, CosineSimilarityLoss
(sentence_A, sentence_B)                1 / 0                   ContrastiveLoss, OnlineContrastiveLoss
(sentence_A, sentence_B)                class index             SoftmaxLoss
(anchor, positive, negative)            none                    TripletLoss
(text,)                                 class id                BatchAllTripletLoss, BatchHardTripletLoss,
                                                                BatchHardSoftMarginTripletLoss,
                                                                BatchSemiHardTripletLoss
(text[, translation])                   teacher embedding       MSELoss, EmbedDistillLoss
(query, positive, negatives...)         teacher scores          MarginMSELoss, DistillKLDivLoss
(text,)                                 none                    ContrastiveTensionLossInBatchNegatives
(text_A, text_A or another text)        none (or 1 / 0)         ContrastiveTensionLoss (pairs from
                                                                ContrastiveTensionDataLoader)
any columns                             none                    GlobalOrthogonalRegularizationLoss (a
                                                                regularizer; returns a dict of named terms)
any of the above                        as the inner loss       MatryoshkaLoss, AdaptiveLayerLoss,
                                                                Matryoshka2dLoss (wrap another loss)
======================================  ======================  ==============================================
"""

from __future__ import annotations

from sentencekit.losses.adaptive_layer import AdaptiveLayerLoss, Matryoshka2dLoss
from sentencekit.losses.batch_triplet import (
    BatchAllTripletLoss,
    BatchHardSoftMarginTripletLoss,
    BatchHardTripletLoss,
    BatchHardTripletLossDistanceFunction,
    BatchSemiHardTripletLoss,
)
from sentencekit.losses.cached import CachedMultipleNegativesRankingLoss
from sentencekit.losses.cached_gist import CachedGISTEmbedLoss
from sentencekit.losses.cached_symmetric import CachedMultipleNegativesSymmetricRankingLoss
from sentencekit.losses.contrastive import ContrastiveLoss, OnlineContrastiveLoss, SiameseDistanceMetric
from sentencekit.losses.contrastive_tension import (
    ContrastiveTensionDataLoader,
    ContrastiveTensionLoss,
    ContrastiveTensionLossInBatchNegatives,
)
from sentencekit.losses.distillation import DistillKLDivLoss, MarginMSELoss, MSELoss
from sentencekit.losses.embed_distill import EmbedDistillLoss
from sentencekit.losses.gist import GISTEmbedLoss
from sentencekit.losses.matryoshka import MatryoshkaLoss
from sentencekit.losses.mega_batch import MegaBatchMarginLoss
from sentencekit.losses.orthogonal import GlobalOrthogonalRegularizationLoss
from sentencekit.losses.pair_similarity import AnglELoss, CoSENTLoss, CosineSimilarityLoss
from sentencekit.losses.ranking import MultipleNegativesRankingLoss, MultipleNegativesSymmetricRankingLoss
from sentencekit.losses.softmax import SoftmaxLoss
from sentencekit.losses.triplet import TripletDistanceMetric, TripletLoss

__all__ = [
    "AdaptiveLayerLoss",
    "AnglELoss",
    "BatchAllTripletLoss",
    "BatchHardSoftMarginTripletLoss",
    "BatchHardTripletLoss",
    "BatchHardTripletLossDistanceFunction",
    "BatchSemiHardTripletLoss",
    "CachedGISTEmbedLoss",
    "CachedMultipleNegativesRankingLoss",
    "CachedMultipleNegativesSymmetricRankingLoss",
    "CoSENTLoss",
    "ContrastiveLoss",
    "ContrastiveTensionDataLoader",
    "ContrastiveTensionLoss",
    "ContrastiveTensionLossInBatchNegatives",
    "CosineSimilarityLoss",
    "DistillKLDivLoss",
    "EmbedDistillLoss",
    "GISTEmbedLoss",
    "GlobalOrthogonalRegularizationLoss",
    "MSELoss",
    "MarginMSELoss",
    "Matryoshka2dLoss",
    "MatryoshkaLoss",
    "MegaBatchMarginLoss",
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "OnlineContrastiveLoss",
    "SiameseDistanceMetric",
    "SoftmaxLoss",
    "TripletDistanceMetric",
    "TripletLoss",
]
