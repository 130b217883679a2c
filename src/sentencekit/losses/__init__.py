"""Training losses for :class:`~sentencekit.SentenceTransformer` bi-encoders, with the reference's names.

Every loss is a ``torch.nn.Module`` built around the model it trains; ``loss(sentence_features, labels)``
takes one tokenized batch per text column (``model.tokenize(texts)``) and the batch's labels, and returns a
scalar. Pick the loss by the data you have:

======================================  ==================  ==================================================
data (text columns)                     labels              losses
======================================  ==================  ==================================================
(anchor, positive[, negatives...])      none                MultipleNegativesRankingLoss,
                                                            MultipleNegativesSymmetricRankingLoss
(sentence_A, sentence_B)                similarity score    CoSENTLoss, AnglELoss, CosineSimilarityLoss
======================================  ==================  ==================================================
"""

from __future__ import annotations

from sentencekit.losses.pair_similarity import AnglELoss, CoSENTLoss, CosineSimilarityLoss
from sentencekit.losses.ranking import MultipleNegativesRankingLoss, MultipleNegativesSymmetricRankingLoss

__all__ = [
    "AnglELoss",
    "CoSENTLoss",
    "CosineSimilarityLoss",
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
]
