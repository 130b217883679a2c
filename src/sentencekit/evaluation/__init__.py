"""Evaluators: measure an embedding model or a cross-encoder on a task and return a dict of metrics.

Every evaluator is constructed with its data, called with a model, and returns ``{name_metric: value}``; its
``primary_metric`` names the headline key. The names, arguments and result keys are those of
``sentence_transformers.evaluation``, so switching is a one-line import change.

======================================  ===============================================  =====================
evaluator                               task                                             primary metric
======================================  ===============================================  =====================
:class:`EmbeddingSimilarityEvaluator`   graded similarity of pairs (STS)                 ``spearman_cosine``
:class:`BinaryClassificationEvaluator`  0/1 pairs (duplicates, paraphrases)              ``cosine_ap``
:class:`InformationRetrievalEvaluator`  retrieval from a corpus (BEIR)                   ``cosine_ndcg@10``
:class:`RerankingEvaluator`             ordering each query's own candidates             ``ndcg@10``
:class:`ParaphraseMiningEvaluator`      finding duplicate pairs in a collection          ``average_precision``
:class:`TripletEvaluator`               anchor closer to positive than to negative       ``cosine_accuracy``
:class:`TranslationEvaluator`           matching translations                            ``mean_accuracy``
:class:`MSEEvaluator`                   distance to a teacher's embeddings               ``negative_mse``
:class:`MSEEvaluatorFromDataFrame`      the same over language pairs of parallel rows    ``negative_mse``
:class:`LabelAccuracyEvaluator`         accuracy of a softmax classifier head            ``accuracy``
:class:`SequentialEvaluator`            several of the above                             ``sequential_score``
======================================  ===============================================  =====================

For cross-encoders (:class:`sentencekit.cross_encoder.CrossEncoder`), which score pairs:

============================================  ====================================  ==========================
evaluator                                     task                                  primary metric
============================================  ====================================  ==========================
:class:`CrossEncoderClassificationEvaluator`  labelled pairs (0/1, or NLI classes)  ``average_precision``
                                                                                    (``f1_macro`` for classes)
:class:`CrossEncoderCorrelationEvaluator`     graded similarity of pairs (STS)      ``spearman``
:class:`CrossEncoderRerankingEvaluator`       ordering each query's candidates      ``ndcg@10``
============================================  ====================================  ==========================

Each evaluator encodes every distinct text once, however often it recurs in the data.
"""

from __future__ import annotations

from sentencekit.evaluation.base import SentenceEvaluator
from sentencekit.evaluation.binary_classification import BinaryClassificationEvaluator
from sentencekit.evaluation.cross_encoder_classification import CrossEncoderClassificationEvaluator
from sentencekit.evaluation.cross_encoder_correlation import CrossEncoderCorrelationEvaluator
from sentencekit.evaluation.cross_encoder_reranking import CrossEncoderRerankingEvaluator
from sentencekit.evaluation.embedding_similarity import EmbeddingSimilarityEvaluator
from sentencekit.evaluation.information_retrieval import InformationRetrievalEvaluator
from sentencekit.evaluation.label_accuracy import LabelAccuracyEvaluator
from sentencekit.evaluation.mse import MSEEvaluator, MSEEvaluatorFromDataFrame
from sentencekit.evaluation.paraphrase_mining import ParaphraseMiningEvaluator
from sentencekit.evaluation.reranking import RerankingEvaluator
from sentencekit.evaluation.sequential import SequentialEvaluator
from sentencekit.evaluation.translation import TranslationEvaluator
from sentencekit.evaluation.triplet import TripletEvaluator
from sentencekit.types import SimilarityFunction

BaseEvaluator = SentenceEvaluator  # the reference's newer name for the same base class

__all__ = [
    "BaseEvaluator",
    "BinaryClassificationEvaluator",
    "CrossEncoderClassificationEvaluator",
    "CrossEncoderCorrelationEvaluator",
    "CrossEncoderRerankingEvaluator",
    "EmbeddingSimilarityEvaluator",
    "InformationRetrievalEvaluator",
    "LabelAccuracyEvaluator",
    "MSEEvaluator",
    "MSEEvaluatorFromDataFrame",
    "ParaphraseMiningEvaluator",
    "RerankingEvaluator",
    "SentenceEvaluator",
    "SequentialEvaluator",
    "SimilarityFunction",
    "TranslationEvaluator",
    "TripletEvaluator",
]
