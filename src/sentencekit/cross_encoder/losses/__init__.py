"""Training losses for :class:`~sentencekit.cross_encoder.CrossEncoder`, with the reference's names.

A cross-encoder loss is called as ``loss(inputs, labels)``: ``inputs`` is the batch's text columns (lists
of strings, e.g. ``[queries, documents]``); the loss forms the pairs, tokenizes them with the model's
tokenizer (truncating at ``max_length``) and runs the model.

========================================  ===============================  ==================================
data (columns)                            labels                           losses
========================================  ===============================  ==================================
(query, document)                         0/1 or a score in [0, 1]         BinaryCrossEntropyLoss
(sentence_A, sentence_B)                  class index                      CrossEntropyLoss
(query, document)                         teacher score                    MSELoss
(query, positive, negatives...)           teacher margins or scores        MarginMSELoss
(query, positive[, negatives...])         none                             MultipleNegativesRankingLoss,
                                                                           CachedMultipleNegativesRankingLoss
(query, [documents...])                   one graded label per document    ListNetLoss, LambdaLoss,
                                                                           RankNetLoss, ListMLELoss,
                                                                           PListMLELoss, ADRMSELoss
========================================  ===============================  ==================================
"""

from __future__ import annotations

from sentencekit.cross_encoder.losses.adr_mse import ADRMSELoss
from sentencekit.cross_encoder.losses.cached_ranking import CachedMultipleNegativesRankingLoss
from sentencekit.cross_encoder.losses.lambda_loss import (
    BaseWeightingScheme,
    LambdaLoss,
    LambdaRankScheme,
    NDCGLoss1Scheme,
    NDCGLoss2PPScheme,
    NDCGLoss2Scheme,
    NoWeightingScheme,
)
from sentencekit.cross_encoder.losses.list_mle import ListMLELoss, PListMLELambdaWeight, PListMLELoss
from sentencekit.cross_encoder.losses.listwise import ListNetLoss
from sentencekit.cross_encoder.losses.pointwise import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from sentencekit.cross_encoder.losses.rank_net import RankNetLoss
from sentencekit.cross_encoder.losses.ranking import MarginMSELoss, MultipleNegativesRankingLoss

__all__ = [
    "ADRMSELoss",
    "BaseWeightingScheme",
    "BinaryCrossEntropyLoss",
    "CachedMultipleNegativesRankingLoss",
    "CrossEntropyLoss",
    "LambdaLoss",
    "LambdaRankScheme",
    "ListMLELoss",
    "ListNetLoss",
    "MSELoss",
    "MarginMSELoss",
    "MultipleNegativesRankingLoss",
    "NDCGLoss1Scheme",
    "NDCGLoss2PPScheme",
    "NDCGLoss2Scheme",
    "NoWeightingScheme",
    "PListMLELambdaWeight",
    "PListMLELoss",
    "RankNetLoss",
]
