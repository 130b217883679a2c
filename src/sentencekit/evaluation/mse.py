"""Knowledge distillation: how close a student's embeddings are to a teacher's."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sentencekit.evaluation.base import SentenceEvaluator, csv_file_name, require_columns

__all__ = ["MSEEvaluator", "MSEEvaluatorFromDataFrame"]

logger = logging.getLogger(__name__)


class MSEEvaluator(SentenceEvaluator):
    """Mean squared error (x100) between teacher embeddings of sources and student embeddings of targets.

    ======================  =====================================================
    input                   meaning
    ======================  =====================================================
    ``source_sentences``    texts the teacher embeds (once, at construction)
    ``target_sentences``    texts the evaluated model embeds; often translations
    ======================  =====================================================

    The classic use is multilingual distillation: a teacher embeds English sentences, the student embeds their
    translations, and training pulls the student towards the teacher. Pass the same list twice to distill a
    smaller model on one language. Teacher and student must produce embeddings of the same size.

    Returned key: ``negative_mse`` (``-100 * mean((teacher - student)^2)``, negated so that greater is
    better), which is also ``primary_metric``.

    Args:
        source_sentences: Texts for the teacher.
        target_sentences: Texts for the evaluated model, aligned with ``source_sentences``.
        teacher_model: The model whose embeddings are the target; encoded once, here.
        show_progress_bar: Show the encoding progress bar.
        batch_size: Encoding batch size.
        name: Prefix of the returned keys and part of the CSV file name.
        write_csv: Append a row to ``mse_evaluation_{name}_results.csv`` when called with an ``output_path``.
        truncate_dim: Keep only the first ``truncate_dim`` dimensions of both teacher and student embeddings.

    Example:
        ::

            from sentencekit.evaluation import MSEEvaluator

            evaluator = MSEEvaluator(english, german, teacher_model=teacher, name="en-de")
            evaluator(student)["en-de_negative_mse"]  # closer to 0 is better

    """

    def __init__(
        self,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        teacher_model: Any = None,
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__(
            name, batch_size=batch_size, show_progress_bar=show_progress_bar, truncate_dim=truncate_dim
        )
        require_columns(
            "MSEEvaluator", "sentence", source_sentences=source_sentences, target_sentences=target_sentences
        )
        if teacher_model is None:
            raise ValueError("MSEEvaluator needs a teacher_model to embed the source sentences")
        self.target_sentences = list(target_sentences)
        self.write_csv = write_csv
        self.csv_file = f"mse_evaluation_{name}_results.csv"  # "_" even without a name, as the reference
        self.csv_headers = ["epoch", "steps", "MSE"]
        self.primary_metric = "negative_mse"
        (self.source_embeddings,) = self.embed(teacher_model, list(source_sentences))

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode the target sentences and return the negated MSE (x100) to the teacher embeddings."""
        self.log_start(epoch, steps)
        (targets,) = self.embed(
            model,
            self.target_sentences,
        )
        if targets.shape != self.source_embeddings.shape:
            raise ValueError(
                f"student embeddings have shape {tuple(targets.shape)} but the teacher's have "
                f"{tuple(self.source_embeddings.shape)}; use models (or a truncate_dim) with the same size"
            )
        teacher = self.source_embeddings.to(targets.device)
        mse = 100 * ((teacher - targets) ** 2).mean().item()
        logger.info("MSE (x100): %.4f", mse)
        if output_path is not None and self.write_csv:
            self.write_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, mse])
        self.primary_metric = "negative_mse"
        return self.prefix_name_to_metrics({"negative_mse": -mse}, self.name)

    @property
    def description(self) -> str:
        """Label used in reports."""
        return "Knowledge Distillation"

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` when set."""
        return {} if self.truncate_dim is None else {"truncate_dim": self.truncate_dim}


class MSEEvaluatorFromDataFrame(SentenceEvaluator):
    """:class:`MSEEvaluator` over several language pairs of one table of parallel sentences.

    ``dataframe`` is a list of rows, each a dict from language code to that row's sentence
    (``[{"en": "Hello", "de": "Hallo", "fr": "Bonjour"}, ...]``). For each ``(source, target)`` in
    ``combinations``, the rows where both sentences are non-blank are used: the teacher embeds the source
    sentences (once, at construction), the evaluated model the target sentences.

    Returned key: ``negative_mse``, minus the mean over the combinations of each one's MSE (x100); the CSV row
    has one column per combination (``en-de``, ...).

    Args:
        dataframe: Rows of parallel sentences keyed by language code.
        teacher_model: The model whose embeddings of the source sentences are the target.
        combinations: ``(source_language, target_language)`` pairs.
        batch_size: Encoding batch size.
        name: Prefix of the returned keys and part of the CSV file name.
        write_csv: Append a row to ``mse_evaluation_{name}_results.csv`` when called with an ``output_path``.
        truncate_dim: Keep only the first ``truncate_dim`` dimensions of both models' embeddings.

    Raises:
        ValueError: For a combination whose language is missing from a row, or that has no usable row.
    """

    def __init__(
        self,
        dataframe: Sequence[dict[str, str]],
        teacher_model: Any,
        combinations: Sequence[tuple[str, str]],
        batch_size: int = 8,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__(name, batch_size=batch_size, truncate_dim=truncate_dim)
        self.combinations = [(str(source), str(target)) for source, target in combinations]
        if not self.combinations:
            raise ValueError("MSEEvaluatorFromDataFrame needs at least one (source, target) combination.")
        self.data: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
        for source, target in self.combinations:
            pairs = []
            for row_number, row in enumerate(dataframe):
                missing = [language for language in (source, target) if language not in row]
                if missing:
                    raise ValueError(f"Row {row_number} has no sentence for {missing}; it has {sorted(row)}.")
                if row[source].strip() and row[target].strip():
                    pairs.append((row[source], row[target]))
            if not pairs:
                raise ValueError(f"No row has non-blank sentences in both {source!r} and {target!r}.")
            sources, targets = zip(*pairs, strict=True)
            self.data[(source, target)] = (list(sources), list(targets))
        self.write_csv = write_csv
        self.csv_file = csv_file_name("mse_evaluation", name)
        self.csv_headers = ["epoch", "steps", *[f"{source}-{target}" for source, target in self.combinations]]
        self.primary_metric = "negative_mse"
        self.teacher_embeddings = self.embed(teacher_model, *[sources for sources, _ in self.data.values()])

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode each combination's target sentences; return the negated mean MSE (x100) to the teacher."""
        self.log_start(epoch, steps)
        students = self.embed(model, *[targets for _, targets in self.data.values()])
        scores = []
        for (source, target), teacher, student in zip(
            self.data, self.teacher_embeddings, students, strict=True
        ):
            if student.shape != teacher.shape:
                raise ValueError(
                    f"{source}-{target}: student embeddings have shape {tuple(student.shape)} but the "
                    f"teacher's have {tuple(teacher.shape)}; use models (or a truncate_dim) of the same size"
                )
            scores.append(100 * ((teacher.to(student.device) - student) ** 2).mean().item())
            logger.info("MSE (x100) %s-%s: %.4f", source, target, scores[-1])
        if output_path is not None and self.write_csv:
            self.write_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *scores])
        self.primary_metric = "negative_mse"
        return self.prefix_name_to_metrics({"negative_mse": -sum(scores) / len(scores)}, self.name)

    @property
    def description(self) -> str:
        """Label used in reports."""
        return "Knowledge Distillation"
