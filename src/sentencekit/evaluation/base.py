"""The small base class every evaluator builds on.

An evaluator is a callable that takes a model, computes metrics on data it was given at construction time, and
returns them as a flat ``dict[str, float]``. Three conventions make evaluators interchangeable (and let a
training loop pick the best checkpoint without knowing which evaluator it runs):

* keys are prefixed with the evaluator's ``name`` (``"sts_dev_spearman_cosine"``), so several evaluators can
  share one results dict;
* ``primary_metric`` names the key that summarises the run, and ``greater_is_better`` says which way is good;
* when given an ``output_path`` an evaluator appends one row per call to a CSV file there, so a training run
  leaves a table of ``epoch, steps, metric...`` behind.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from sentencekit.evaluation._embeddings import Role, encode_texts

__all__ = ["SentenceEvaluator"]

logger = logging.getLogger(__name__)


class SentenceEvaluator:
    """Base class of all evaluators: subclass it and implement :meth:`__call__`.

    Attributes:
        batch_size: Encoding batch size of :meth:`embed`.
        show_progress_bar: Whether :meth:`embed` shows the encoding progress bar.
        truncate_dim: Dimensions :meth:`embed` keeps (Matryoshka models); ``None`` keeps the model's setting.
        name: Prefix of every returned key (``"{name}_{metric}"``) and part of the CSV file name; may be
            empty.
        primary_metric: The key of the metric that summarises a run, already prefixed with ``name`` once the
            evaluator has been called. ``None`` until a subclass sets it.
        greater_is_better: Whether a higher ``primary_metric`` is better (used to pick the best checkpoint).

    Example:
        A minimal evaluator that reports the embedding size::

            class DimensionEvaluator(SentenceEvaluator):
                def __call__(self, model, output_path=None, epoch=-1, steps=-1):
                    dim = model.encode(["hello"]).shape[1]
                    self.primary_metric = "dimension"
                    return self.prefix_name_to_metrics({"dimension": dim}, self.name)

    """

    def __init__(
        self,
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        truncate_dim: int | None = None,
    ) -> None:
        self.name = name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.truncate_dim = truncate_dim
        self.primary_metric: str | None = None
        self.greater_is_better = True

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Evaluate ``model`` and return its metrics.

        Args:
            model: The model to evaluate; evaluators call its ``encode`` method.
            output_path: Folder in which to append a row to this evaluator's CSV file; ``None`` writes none.
            epoch: Training epoch of this evaluation, written to the CSV; ``-1`` means "not during training".
            steps: Training step within the epoch, written to the CSV; ``-1`` means "end of the epoch".

        Returns:
            The metrics, keyed ``"{name}_{metric}"`` (or ``"{metric}"`` when ``name`` is empty).

        """
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")

    def prefix_name_to_metrics(self, metrics: Mapping[str, Any], name: str) -> dict[str, float]:
        """Return ``metrics`` with every key prefixed by ``name + "_"`` and every numeric value as a float.

        ``primary_metric`` is prefixed too (once), so that it stays a key of the returned dict.

        Args:
            metrics: Metric name to value (numpy scalars are fine).
            name: The prefix; an empty string leaves the keys unchanged.

        """
        prefix = f"{name}_" if name else ""
        result = {f"{prefix}{key}": _as_float(value) for key, value in metrics.items()}
        if prefix and self.primary_metric is not None and not self.primary_metric.startswith(prefix):
            self.primary_metric = prefix + self.primary_metric
        return result

    def embed(
        self,
        model: Any,
        *text_lists: Sequence[Any],
        role: Role | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
        precision: str | None = None,
    ) -> list[Tensor]:
        """Encode ``text_lists`` with this evaluator's settings, each distinct text once.

        See :func:`sentencekit.evaluation._embeddings.encode_texts` for the arguments; the batch size,
        progress bar and truncation come from the evaluator.

        Returns:
            One ``(len(text_list), dim)`` float tensor per list.

        """
        return encode_texts(
            model,
            *text_lists,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            role=role,
            prompt=prompt,
            prompt_name=prompt_name,
            truncate_dim=self.truncate_dim,
            precision=precision,
            options=self.encode_options(model),
        )

    def encode_options(self, model: Any) -> dict[str, Any]:
        """Further keyword arguments :meth:`embed` passes to ``model``'s encode method; none here.

        The sparse evaluators return ``max_active_dims`` and the output layout from it.
        """
        return {}

    def extra_csv_columns(self) -> dict[str, float]:
        """Columns :meth:`write_csv_row` appends after the evaluator's own; none here.

        The sparse evaluators append their sparsity statistics (``active_dims``, ...) this way.
        """
        return {}

    def write_csv_row(
        self, output_path: str | Path, file_name: str, headers: Sequence[str], row: Sequence[Any]
    ) -> Path:
        """:func:`append_csv_row`, followed by the :meth:`extra_csv_columns` of this evaluator."""
        extra = self.extra_csv_columns()
        return append_csv_row(output_path, file_name, [*headers, *extra], [*row, *extra.values()])

    def log_start(self, epoch: int, steps: int, detail: str = "") -> None:
        """Log which evaluator runs on which data, and when (``... after epoch 2``)."""
        logger.info(
            "%s: evaluating on the %s dataset%s%s",
            type(self).__name__,
            self.name or "unnamed",
            evaluation_context(epoch, steps, self.truncate_dim),
            detail,
        )

    @property
    def description(self) -> str:
        """A human-readable label derived from the class name: ``TripletEvaluator`` -> ``"Triplet"``."""
        label = type(self).__name__.removesuffix("Evaluator")
        return re.sub(r"([a-z])([A-Z])", r"\1 \2", label)

    def get_config_dict(self) -> dict[str, Any]:
        """Return the settings worth recording next to the metrics (e.g. ``truncate_dim``); empty here."""
        return {}


def evaluation_context(epoch: int, steps: int, truncate_dim: int | None = None) -> str:
    """Describe when an evaluation happens, for log messages: ``" after epoch 2 (truncated to 128)"``."""
    if epoch == -1:
        text = ""
    elif steps == -1:
        text = f" after epoch {epoch}"
    else:
        text = f" in epoch {epoch} after {steps} steps"
    if truncate_dim is not None:
        text += f" (truncated to {truncate_dim})"
    return text


def require_columns(evaluator: str, item: str, **columns: Sequence[Any]) -> None:
    """Check that the named input columns share one length and are not empty.

    Args:
        evaluator: The evaluator's class name, for the message.
        item: What one row is ("sentence pair", "triplet", ...), for the message.
        **columns: The columns, by argument name, in the order the message lists them.

    Raises:
        ValueError: Naming the columns and their lengths, or saying that at least one row is needed.

    """
    lengths = [len(column) for column in columns.values()]
    if len(set(lengths)) > 1:
        names = list(columns)
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        got = ", ".join(map(str, lengths[:-1])) + f" and {lengths[-1]}"
        raise ValueError(f"{listed} must have the same length, got {got}")
    if not lengths or lengths[0] == 0:
        raise ValueError(f"{evaluator} needs at least one {item}")


def csv_file_name(stem: str, name: str, suffix: str = "_results.csv") -> str:
    """Build a CSV file name the reference's way: ``stem + "_" + name + suffix`` (no ``_`` without a name)."""
    return f"{stem}_{name}{suffix}" if name else f"{stem}{suffix}"


def append_csv_row(
    output_path: str | Path, file_name: str, headers: Sequence[str], row: Sequence[Any]
) -> Path:
    """Append ``row`` to ``output_path/file_name``, writing ``headers`` first when the file is new.

    Args:
        output_path: Folder of the CSV file; created if missing.
        file_name: Name of the CSV file inside ``output_path``.
        headers: Column names, written only when the file does not exist yet.
        row: The values of one evaluation, in the order of ``headers``.

    Returns:
        The path of the CSV file.

    """
    if len(headers) != len(row):
        raise ValueError(f"CSV row has {len(row)} values but {len(headers)} headers: {list(headers)}")
    folder = Path(output_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    is_new = not path.is_file()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if is_new:
            writer.writerow(headers)
        writer.writerow(row)
    logger.debug("Appended evaluation results to %s", path)
    return path


def _as_float(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value
