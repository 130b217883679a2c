"""Label accuracy of a classification head (e.g. a softmax loss) on top of sentence embeddings."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch

from sentencekit.evaluation.base import (
    SentenceEvaluator,
    append_csv_row,
    csv_file_name,
)

__all__ = ["LabelAccuracyEvaluator"]

logger = logging.getLogger(__name__)


class LabelAccuracyEvaluator(SentenceEvaluator):
    """Accuracy of the classifier of a softmax-style loss on labelled sentence pairs (e.g. NLI).

    The examples are objects with ``texts`` (two sentences) and an integer ``label``, such as
    ``InputExample(texts=[premise, hypothesis], label=1)``. Both sentences are embedded as ``u`` and ``v``,
    the classifier input is built the way softmax losses build it (``[u, v, |u - v|]`` by default; the loss's
    ``concatenation_sent_rep``, ``concatenation_sent_difference`` and ``concatenation_sent_multiplication``
    flags choose the parts), and the predicted label is the arg-max of the classifier's logits.

    Use it as the dev evaluator of NLI training with a softmax loss; for an embedding-only check of the same
    data, :class:`TripletEvaluator` on (premise, entailment, contradiction) needs no classifier.

    Returned key: ``accuracy``, the primary metric.

    Args:
        dataloader: The examples: a ``torch.utils.data.DataLoader`` (its ``dataset`` is read, in order) or
            any iterable of examples or of batches (lists) of examples.
        name: Prefix of the returned keys and part of the CSV file name.
        softmax_model: The loss holding the trained ``classifier`` (a module mapping the concatenated
            vectors to logits), e.g. a ``SoftmaxLoss``.
        write_csv: Append a row to ``accuracy_evaluation[_{name}]_results.csv`` when called with an
            ``output_path``.
        batch_size: Encoding batch size.

    Example:
        ::

            from sentencekit.evaluation import LabelAccuracyEvaluator

            evaluator = LabelAccuracyEvaluator(dev_examples, softmax_model=train_loss, name="nli_dev")
            evaluator(model)["nli_dev_accuracy"]

    """

    def __init__(
        self,
        dataloader: Iterable[Any],
        name: str = "",
        softmax_model: Any = None,
        write_csv: bool = True,
        batch_size: int = 32,
    ) -> None:
        super().__init__(name, batch_size=batch_size)
        if softmax_model is None or not callable(getattr(softmax_model, "classifier", None)):
            raise ValueError("LabelAccuracyEvaluator needs a softmax_model with a `classifier` module")
        self.dataloader = dataloader
        self.softmax_model = softmax_model
        self.write_csv = write_csv
        self.csv_file = csv_file_name("accuracy_evaluation", name)
        self.csv_headers = ["epoch", "steps", "accuracy"]
        self.primary_metric = "accuracy"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Embed every example's texts, classify them and return the accuracy."""
        self.log_start(epoch, steps)
        examples = _examples(self.dataloader)
        if not examples:
            raise ValueError("LabelAccuracyEvaluator got no examples to evaluate")
        columns = list(zip(*(example.texts for example in examples), strict=True))
        if len(columns) != 2:
            raise ValueError(f"LabelAccuracyEvaluator expects examples with two texts, got {len(columns)}")
        first, second = self.embed(model, list(columns[0]), list(columns[1]))
        head = self.softmax_model
        parts = []
        if getattr(head, "concatenation_sent_rep", True):
            parts += [first, second]
        if getattr(head, "concatenation_sent_difference", True):
            parts.append(torch.abs(first - second))
        if getattr(head, "concatenation_sent_multiplication", False):
            parts.append(first * second)
        weight = next(head.classifier.parameters())
        with torch.no_grad():
            logits = head.classifier(torch.cat(parts, dim=1).to(device=weight.device, dtype=weight.dtype))
        labels = torch.as_tensor([int(example.label) for example in examples], device=logits.device)
        correct = int((logits.argmax(dim=1) == labels).sum().item())
        accuracy = correct / len(examples)
        logger.info("Accuracy: %.4f (%d/%d)", accuracy, correct, len(examples))
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, accuracy])
        self.primary_metric = "accuracy"
        return self.prefix_name_to_metrics({"accuracy": accuracy}, self.name)


def _examples(source: Iterable[Any]) -> list[Any]:
    """Flatten a DataLoader / iterable of examples or of batches into a list of examples."""
    items = list(getattr(source, "dataset", source))
    examples: list[Any] = []
    for item in items:
        if hasattr(item, "texts"):
            examples.append(item)
        elif isinstance(item, (list, tuple)) and all(hasattr(example, "texts") for example in item):
            examples.extend(item)
        else:
            raise ValueError(
                f"expected examples with `texts` and `label` attributes (InputExample), got {item!r}"
            )
    return examples
