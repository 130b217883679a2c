"""Hard-negative mining: turn (anchor, positive) pairs into training rows with hard negatives.

A *hard negative* is a text the model scores close to an anchor although it is not one of the anchor's
positives. Training on them (e.g. with ``MultipleNegativesRankingLoss``) teaches finer distinctions than
random negatives do. :func:`mine_hard_negatives` finds them for every anchor in four steps:

1. Embed the unique anchors and the corpus: the ``corpus`` you pass plus every positive, de-duplicated.
2. Retrieve the ``range_max + max_positives`` corpus texts most similar to each anchor (``max_positives``,
   the most rows any anchor has, makes room for the anchor's own positives, which are removed).
3. Optionally rescore the candidates with a ``cross_encoder`` (only when a score filter is set), then drop
   those that fail a filter: ``absolute_margin`` / ``relative_margin`` (measured from the anchor's *lowest*
   positive score), ``max_score``, ``min_score``.
4. Rank the survivors by score, keep ranks ``range_min`` up to ``range_max`` (0-based, counted among the
   survivors) and take ``num_negatives`` of them: the best (``"top"``) or a random sample (``"random"``).

==================  ==============================================  =====================================
``output_format``   one row per                                     columns
==================  ==============================================  =====================================
``"triplet"``       (anchor, positive, negative)                    anchor, positive, ``negative``
``"n-tuple"``       (anchor, positive) with all ``num_negatives``   anchor, positive, ``negative_1..n``
``"labeled-pair"``  (anchor, text): positives 1, negatives 0        anchor, positive, ``label``
``"labeled-list"``  (anchor, positive) with at least one negative   anchor, positive (a list), ``labels``
==================  ==============================================  =====================================

With ``output_scores=True`` the scores come too: a ``scores`` column (``[positive, negative, ...]``) for
triplet and n-tuple, ``score`` / ``scores`` in place of ``label`` / ``labels``.

Example:
    >>> from sentencekit import SentenceTransformer
    >>> from sentencekit.util import mine_hard_negatives
    >>> model = SentenceTransformer("all-MiniLM-L6-v2")
    >>> pairs = {"query": ["What do cats eat?", ...], "answer": ["Cats are carnivores ...", ...]}
    >>> triplets = mine_hard_negatives(pairs, model, relative_margin=0.05, num_negatives=5)
    >>> list(triplets)
    ['query', 'answer', 'negative']

The NV-Retriever paper (https://arxiv.org/abs/2407.15831) found ``relative_margin=0.05`` with
``sampling_strategy="top"`` to work best.
"""

from __future__ import annotations

from sentencekit.hard_negatives.mining import mine_hard_negatives

__all__ = ["mine_hard_negatives"]
