"""What every sparse evaluator adds to its dense twin: sparse encoding and sparsity statistics.

A sparse evaluator is its dense evaluator with three changes, all made here:

* :meth:`~SparseEvaluatorMixin.encode_options` asks the model for sparse COO embeddings (dense ones for
  :class:`SparseMSEEvaluator`) kept to ``max_active_dims`` non-zero dimensions;
* every :meth:`~SparseEvaluatorMixin.embed` call records how sparse the embeddings were, and the averages
  join the results (``active_dims``, ``sparsity_ratio``, with a ``query_``/``corpus_``/... prefix where the
  evaluator encodes several kinds of text) and the CSV row;
* the similarity defaults to the model's own, ``"dot"`` for SPLADE models (the dense evaluators already use
  the model's ``similarity_fn_name``).

Each statistic is averaged the way the reference averages it, over the encode calls the reference makes:
subclasses say which rows form one call by overriding :meth:`~SparseEvaluatorMixin.record_sparsity`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor

from sentencekit.encoding.loop import check_max_active_dims
from sentencekit.evaluation._embeddings import Role
from sentencekit.evaluation.base import SentenceEvaluator

__all__ = ["SparseEvaluatorMixin", "is_sparse_model"]

logger = logging.getLogger(__name__)


def is_sparse_model(model: Any) -> bool:
    """Whether ``model`` looks like a SparseEncoder (it can report the sparsity of its embeddings)."""
    return callable(getattr(model, "sparsity", None))


class SparseEvaluatorMixin(SentenceEvaluator):
    """Mixed in before a dense evaluator: ``class SparseXEvaluator(SparseEvaluatorMixin, XEvaluator)``.

    Attributes:
        max_active_dims: Non-zero dimensions each embedding keeps (the largest); ``None`` keeps the model's
            setting.
        sparsity_stats: Per statistic (``"active_dims"``, ``"query_sparsity_ratio"``, ...), the
            ``(value, weight)`` of each recorded encode call of the current evaluation.
        sparse_output: Whether the evaluator works on sparse COO embeddings (``False``: dense ones).
    """

    sparse_output: ClassVar[bool] = True
    max_active_dims: int | None
    sparsity_stats: dict[str, list[tuple[float, float]]]

    def init_sparsity(self, max_active_dims: int | None) -> None:
        """Validate and store ``max_active_dims`` and start empty statistics; call before the dense init."""
        check_max_active_dims(max_active_dims)
        self.max_active_dims = max_active_dims
        self.reset_sparsity()

    def reset_sparsity(self) -> None:
        """Forget the statistics of the previous evaluation."""
        self.sparsity_stats = {}

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Run the dense evaluation on sparse embeddings and add the sparsity statistics to its results.

        Raises:
            TypeError: When ``model`` is not a sparse model (it has no ``sparsity`` method).
        """
        if not is_sparse_model(model):
            dense = type(self).__name__.removeprefix("Sparse")
            raise TypeError(
                f"{type(self).__name__} evaluates sparse models (a SparseEncoder, with encode(..., "
                f"max_active_dims=...) and sparsity()); got {type(model).__name__}. Use "
                f"sentencekit.evaluation.{dense} for dense models."
            )
        self.reset_sparsity()
        metrics = super().__call__(model, output_path, epoch, steps)
        sparsity = self.sparsity_metrics()
        logger.info("Sparsity: %s", ", ".join(f"{key} {value:.4f}" for key, value in sparsity.items()))
        metrics.update(self.prefix_name_to_metrics(sparsity, self.name))
        return metrics

    def encode_options(self, model: Any) -> dict[str, Any]:
        """``max_active_dims``, the output layout and CPU results, for sparse models; nothing for others."""
        if not is_sparse_model(model):  # e.g. a dense teacher of SparseMSEEvaluator
            return {}
        return {
            "max_active_dims": self.max_active_dims,
            "convert_to_sparse_tensor": self.sparse_output,
            "save_to_cpu": True,
        }

    def embed(
        self,
        model: Any,
        *text_lists: Sequence[Any],
        role: Role | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
        precision: str | None = None,
    ) -> list[Tensor]:
        """Encode as the dense evaluator does, then :meth:`record_sparsity` of the embeddings."""
        embeddings = super().embed(
            model, *text_lists, role=role, prompt=prompt, prompt_name=prompt_name, precision=precision
        )
        if is_sparse_model(model):
            self.record_sparsity(model, text_lists, embeddings, role)
        return embeddings

    def record_sparsity(
        self, model: Any, text_lists: Sequence[Sequence[Any]], embeddings: Sequence[Tensor], role: Role | None
    ) -> None:
        """Record the sparsity of freshly encoded embeddings: here one unprefixed entry per text list.

        Args:
            model: The model that encoded them; its ``sparsity`` computes the statistics.
            text_lists: The texts given to :meth:`embed`.
            embeddings: One ``(len(texts), dim)`` tensor per text list.
            role: ``"query"``, ``"document"`` or ``None``, as given to :meth:`embed`.
        """
        for rows in embeddings:
            self.add_sparsity(model.sparsity(rows))

    def add_sparsity(self, stats: dict[str, float], prefix: str = "", weight: float = 1.0) -> None:
        """Add one encode call's ``{"active_dims": ..., "sparsity_ratio": ...}`` under ``prefix``."""
        for key, value in stats.items():
            self.sparsity_stats.setdefault(prefix + key, []).append((float(value), weight))

    def sparsity_metrics(self) -> dict[str, float]:
        """The weighted mean of each recorded statistic, in the order they were first recorded."""
        return {
            key: sum(value * weight for value, weight in entries) / sum(weight for _, weight in entries)
            for key, entries in self.sparsity_stats.items()
        }

    def extra_csv_columns(self) -> dict[str, float]:
        """The sparsity statistics, appended to the dense evaluator's CSV row as the reference does."""
        return self.sparsity_metrics()

    def get_config_dict(self) -> dict[str, Any]:
        """The dense evaluator's settings, plus ``max_active_dims`` when set."""
        config = super().get_config_dict()
        if self.max_active_dims is not None:
            config["max_active_dims"] = self.max_active_dims
        return config
