"""``sentence_transformers.sparse_encoder.evaluation`` under sentencekit: evaluators for sparse models.

Each evaluator is the dense evaluator of the same task (:mod:`sentencekit.evaluation`) run on sparse
embeddings: same arguments (plus ``max_active_dims``), same metrics and CSV file, the model's own similarity
by default (``"dot"`` for SPLADE models), and in addition how sparse the embeddings were (``active_dims``,
the mean number of non-zero dimensions, and ``sparsity_ratio``, the mean share of zero dimensions), which
also end the CSV row.

============================================  =======================================  =================
evaluator                                     task                                     primary metric
============================================  =======================================  =================
:class:`SparseInformationRetrievalEvaluator`  retrieval from a corpus (BEIR), FLOPS    ``dot_ndcg@10``
:class:`SparseEmbeddingSimilarityEvaluator`   graded similarity of pairs (STS)         ``spearman_dot``
:class:`SparseBinaryClassificationEvaluator`  0/1 pairs (duplicates, paraphrases)      ``dot_ap``
:class:`SparseRerankingEvaluator`             ordering each query's own candidates     ``ndcg@10``
:class:`SparseTripletEvaluator`               anchor closer to positive than negative  ``dot_accuracy``
:class:`SparseTranslationEvaluator`           matching translations                    ``mean_accuracy``
:class:`SparseMSEEvaluator`                   distance to a teacher's embeddings       ``negative_mse``
:class:`ReciprocalRankFusionEvaluator`        fusing dense and sparse rankings         ``ndcg@10``
============================================  =======================================  =================

The reference's ``SparseNanoBEIREvaluator`` is not provided: it downloads the NanoBEIR datasets from the
Hugging Face Hub, and sentencekit has no dense ``NanoBEIREvaluator`` to build it on. Evaluate on local BEIR
folders with :class:`SparseInformationRetrievalEvaluator` and :func:`sentencekit.readers.read_beir` instead.
"""

from __future__ import annotations

from sentencekit.sparse_encoder.evaluation.binary_classification import SparseBinaryClassificationEvaluator
from sentencekit.sparse_encoder.evaluation.embedding_similarity import SparseEmbeddingSimilarityEvaluator
from sentencekit.sparse_encoder.evaluation.information_retrieval import SparseInformationRetrievalEvaluator
from sentencekit.sparse_encoder.evaluation.mse import SparseMSEEvaluator
from sentencekit.sparse_encoder.evaluation.reciprocal_rank_fusion import ReciprocalRankFusionEvaluator
from sentencekit.sparse_encoder.evaluation.reranking import SparseRerankingEvaluator
from sentencekit.sparse_encoder.evaluation.translation import SparseTranslationEvaluator
from sentencekit.sparse_encoder.evaluation.triplet import SparseTripletEvaluator

__all__ = [
    "ReciprocalRankFusionEvaluator",
    "SparseBinaryClassificationEvaluator",
    "SparseEmbeddingSimilarityEvaluator",
    "SparseInformationRetrievalEvaluator",
    "SparseMSEEvaluator",
    "SparseRerankingEvaluator",
    "SparseTranslationEvaluator",
    "SparseTripletEvaluator",
]
