"""Zero-shot classification: each label becomes a hypothesis that an NLI cross-encoder checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from sentencekit.encoding.inputs import as_text_list
from sentencekit.errors import InvalidInputError

__all__ = ["zero_shot_classify"]


def zero_shot_classify(
    cross_encoder: Any,
    texts: str | Sequence[str],
    labels: Sequence[str],
    *,
    hypothesis_template: str = "This example is {}.",
    multi_label: bool = False,
    entailment_label: str | int | None = None,
    contradiction_label: str | int | None = None,
    batch_size: int = 32,
    show_progress_bar: bool | None = None,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Score every ``(text, hypothesis_template.format(label))`` pair and turn entailment into label scores.

    With ``multi_label=False`` the labels compete: the entailment logits of one text's labels go through one
    softmax, so the scores sum to 1. With ``multi_label=True`` each label is judged alone: entailment against
    contradiction (softmax over those two logits), or a sigmoid for a one-label model.

    A model with one label (a relevance cross-encoder) works too: its logit stands for entailment.

    Args:
        cross_encoder: A :class:`~sentencekit.cross_encoder.CrossEncoder` trained on NLI (e.g.
            ``cross-encoder/nli-deberta-v3-base``), or any one-label cross-encoder.
        texts: One text or a list of texts (the premises).
        labels: Candidate labels, at least one.
        hypothesis_template: Turns a label into a hypothesis; must contain ``{}``.
        multi_label: Judge each label independently instead of picking among them.
        entailment_label: Name or index of the entailment class; ``None`` finds the label whose name
            starts with ``"entail"`` in the model's ``id2label``.
        contradiction_label: Name or index of the contradiction class for ``multi_label``; ``None`` looks
            for ``"contradict"``, and without one the entailment probability over all classes is used.
        batch_size: Cross-encoder batch size.
        show_progress_bar: Show the cross-encoder's progress bar.

    Returns:
        Per text, ``{"sequence": text, "labels": [...], "scores": [...]}`` with labels best first (the format
        of the transformers zero-shot pipeline); one dict for one text, else a list.

    Raises:
        InvalidInputError: On bad texts, no labels, a non-string label, or a template without ``{}``.
        ValueError: If the entailment class cannot be found in the model's labels.

    Example:
        >>> nli = CrossEncoder("cross-encoder/nli-deberta-v3-base")  # doctest: +SKIP
        >>> zero_shot_classify(nli, "I loved the film's soundtrack.", ["music", "sports", "politics"])
        {'sequence': "I loved the film's soundtrack.", 'labels': ['music', ...], 'scores': [0.93, ...]}
    """
    items, single = as_text_list(texts, caller="zero_shot_classify(texts=...)")
    candidates = list(labels) if not isinstance(labels, str) else [labels]
    if not candidates:
        raise InvalidInputError("zero_shot_classify needs at least one label.")
    for i, label in enumerate(candidates):
        if not isinstance(label, str):
            raise InvalidInputError(
                f"The label at index {i} is of type {type(label).__name__}, not a string."
            )
    if "{}" not in hypothesis_template:
        raise InvalidInputError(
            f"hypothesis_template {hypothesis_template!r} has no '{{}}' where the label goes, e.g. "
            "'This example is {}.'"
        )
    if not items:
        return []
    id2label = {int(k): str(v) for k, v in getattr(cross_encoder.config, "id2label", {}).items()}
    num_labels = int(cross_encoder.num_labels)
    entail = _class_index(entailment_label, "entail", id2label, num_labels, required=num_labels > 1)
    contra = _class_index(contradiction_label, "contradict", id2label, num_labels, required=False)

    hypotheses = [hypothesis_template.format(label) for label in candidates]
    pairs = [(text, hypothesis) for text in items for hypothesis in hypotheses]
    logits = cross_encoder.predict(
        pairs,
        batch_size=batch_size,
        show_progress_bar=show_progress_bar,
        activation_fn=nn.Identity(),
        convert_to_tensor=True,
    ).float()
    logits = logits.reshape(len(items), len(candidates), -1)
    if not multi_label:
        scores = torch.softmax(logits[..., entail if num_labels > 1 else 0], dim=1)
    elif num_labels == 1:
        scores = torch.sigmoid(logits[..., 0])
    elif contra is not None:
        scores = torch.softmax(logits[..., [contra, entail]], dim=-1)[..., 1]
    else:
        scores = torch.softmax(logits, dim=-1)[..., entail]

    results = []
    for text, row in zip(items, scores.cpu().tolist(), strict=True):
        order = sorted(range(len(candidates)), key=lambda i: -row[i])
        results.append(
            {"sequence": text, "labels": [candidates[i] for i in order], "scores": [row[i] for i in order]}
        )
    return results[0] if single else results


def _class_index(
    given: str | int | None, prefix: str, id2label: dict[int, str], num_labels: int, *, required: bool
) -> int | None:
    """Resolve a class given by name or index, or found by the prefix of its name."""
    if isinstance(given, int) and not isinstance(given, bool):
        if not 0 <= given < num_labels:
            raise ValueError(f"Class index {given} is out of range for a model with {num_labels} labels.")
        return given
    if isinstance(given, str):
        for index, name in id2label.items():
            if name.lower() == given.lower():
                return index
        raise ValueError(f"The model has no class {given!r}; its classes are {id2label}.")
    found = [index for index, name in id2label.items() if name.lower().startswith(prefix)]
    if len(found) == 1:
        return found[0]
    if required:
        raise ValueError(
            f"Cannot tell which class means entailment from the model's labels {id2label}; pass "
            "entailment_label= (its name or index)."
        )
    return None
