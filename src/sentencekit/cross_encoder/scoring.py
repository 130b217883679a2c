"""The scoring loop: tokenize pairs once, batch them by token length, run the model, restore the order."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from sentencekit.encoding.batching import length_sorted_batches, pad_token_ids, split_for_workers
from sentencekit.encoding.parallel import run_batches
from sentencekit.encoding.tokens import TokenizedTexts, tokenize_in_chunks

__all__ = ["ScorePlan", "score_pairs", "tokenize_pairs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScorePlan:
    """Everything about one ``predict`` call except the pairs, already validated."""

    batch_size: int
    device: torch.device
    max_length: int
    # None: batches are cut by count only, as in the reference; a budget also bounds padded tokens per batch.
    max_batch_tokens: int | None = None
    show_progress_bar: bool = False


def tokenize_pairs(
    tokenizer: Any, pairs: Sequence[tuple[str, str]], max_length: int, with_token_types: bool
) -> TokenizedTexts:
    """Tokenize pairs as the reference does (``truncation="longest_first"``), without padding.

    Args:
        tokenizer: A Hugging Face tokenizer.
        pairs: ``(first, second)`` texts.
        max_length: Most tokens per pair, special tokens included; the longer text is cut first.
        with_token_types: Also return segment ids (for models that take ``token_type_ids``).
    """

    def call(start: int, stop: int) -> Any:
        chunk = pairs[start:stop]
        return tokenizer(
            [first for first, _ in chunk],
            [second for _, second in chunk],
            truncation="longest_first",
            max_length=max_length,
            return_attention_mask=False,
            return_token_type_ids=with_token_types,
        )

    return tokenize_in_chunks(call, len(pairs), with_token_types)


def score_pairs(
    model: Any, tokenizer: Any, pairs: list[tuple[str, str]], plan: ScorePlan, with_token_types: bool
) -> Tensor:
    """Return the logits of ``pairs`` in input order, shape ``(len(pairs), num_labels)``, on ``plan.device``.

    Each distinct pair is scored once. Batches hold pairs of similar token length, longest first, so
    padding is small; ``model`` (a torch model, or anything called the same way that returns ``.logits``)
    runs under ``torch.inference_mode``. A model with ``parallel_batches`` > 1 (the ONNX Runtime scorer)
    gets that many batches at once, one thread each.
    """
    unique: dict[tuple[str, str], int] = {}
    positions = [unique.setdefault(pair, len(unique)) for pair in pairs]
    distinct = list(unique)
    tokenized = tokenize_pairs(tokenizer, distinct, plan.max_length, with_token_types)
    if tokenized.num_truncated:
        logger.info(
            "%d of %d pairs are longer than max_length=%d tokens; the longer text of each was truncated.",
            tokenized.num_truncated,
            len(distinct),
            plan.max_length,
        )
    lengths = tokenized.lengths()
    budget = plan.max_batch_tokens
    if budget is None:  # a scorer may know a better default (the ONNX Runtime one does)
        budget = getattr(model, "default_batch_tokens", None)
    batches = length_sorted_batches(lengths, plan.batch_size, budget)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    left = tokenizer.padding_side == "left"

    def score_batch(batch: np.ndarray) -> Tensor:
        rows = batch.tolist()
        types = [tokenized.token_type_ids[i] for i in rows] if tokenized.token_type_ids else None
        features = pad_token_ids([tokenized.input_ids[i] for i in rows], types, pad_id, left)
        out: Tensor = model(**{name: value.to(plan.device) for name, value in features.items()}).logits
        return out

    workers = int(getattr(model, "parallel_batches", 1))
    if workers > 1 and plan.device.type == "cpu":
        batches = split_for_workers(batches, workers)
        scored: Iterable[tuple[np.ndarray, Tensor]] = run_batches(
            batches, score_batch, workers, plan.show_progress_bar
        )
    else:
        progress = tqdm(batches, desc="Batches", disable=not plan.show_progress_bar)
        scored = ((batch, score_batch(batch)) for batch in progress)
    logits: Tensor | None = None
    with torch.inference_mode():
        for batch, out in scored:
            if logits is None:
                logits = out.new_empty((len(distinct), out.shape[-1]))
            logits[torch.as_tensor(batch, device=out.device)] = out
        if logits is None:
            raise AssertionError("score_pairs needs at least one pair")  # callers return early on no input
        return logits[torch.as_tensor(positions, device=logits.device)]
