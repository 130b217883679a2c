"""Translation matching with sparse embeddings, with how sparse they were."""

from __future__ import annotations

from collections.abc import Sequence

from sentencekit.evaluation.translation import TranslationEvaluator
from sentencekit.sparse_encoder.evaluation.base import SparseEvaluatorMixin

__all__ = ["SparseTranslationEvaluator"]


class SparseTranslationEvaluator(SparseEvaluatorMixin, TranslationEvaluator):
    """:class:`~sentencekit.evaluation.TranslationEvaluator` for a SparseEncoder.

    ======================  ==============================================
    input                   meaning
    ======================  ==============================================
    ``source_sentences[i]`` a sentence in the source language
    ``target_sentences[i]`` its translation
    ======================  ==============================================

    Each sentence's most cosine-similar counterpart in the other language should be its translation. Sparse
    models match on shared vocabulary tokens, so this mostly measures a multilingual vocabulary's overlap.

    Returned keys: ``src2trg_accuracy``, ``trg2src_accuracy``, ``mean_accuracy`` (the primary metric), plus
    ``active_dims`` and ``sparsity_ratio`` averaged over the two languages, which also end the CSV row.

    Args:
        source_sentences: Sentences in one language.
        target_sentences: Their translations, aligned by position.
        show_progress_bar: Show the encoding progress bar.
        batch_size: Encoding batch size.
        name: Prefix of the returned keys and part of the CSV file name.
        print_wrong_matches: Log every source sentence whose best match is wrong, with the top 5.
        write_csv: Append a row to ``translation_evaluation[_{name}]_results.csv`` when called with an
            ``output_path``.
        max_active_dims: Keep this many non-zero dimensions per embedding; ``None`` keeps the model's setting.

    Example:
        ::

            from sentencekit.sparse_encoder.evaluation import SparseTranslationEvaluator

            en = ["A man is playing a guitar.", "A dog runs in the park."]
            de = ["Ein Mann spielt Gitarre.", "Ein Hund rennt im Park."]
            SparseTranslationEvaluator(en, de, name="en-de")(model)["en-de_mean_accuracy"]

    """

    def __init__(
        self,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        show_progress_bar: bool = False,
        batch_size: int = 16,
        name: str = "",
        print_wrong_matches: bool = False,
        write_csv: bool = True,
        max_active_dims: int | None = None,
    ) -> None:
        self.init_sparsity(max_active_dims)
        super().__init__(
            source_sentences,
            target_sentences,
            show_progress_bar=show_progress_bar,
            batch_size=batch_size,
            name=name,
            print_wrong_matches=print_wrong_matches,
            write_csv=write_csv,
        )
