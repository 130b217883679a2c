"""The :func:`mine_hard_negatives` entry point: checks the settings, then embeds, retrieves, selects, formats.

The steps themselves live beside it: ``inputs`` reads and checks what the caller passed, ``retrieval`` embeds
and searches (and rescores with a cross-encoder), ``selection`` filters, windows and samples the candidates,
``output`` builds the columns of each ``output_format``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Literal

import torch

from sentencekit.hard_negatives.inputs import (
    _any_set,
    _check_settings,
    _is_dataset,
    _read_pairs,
    _resolve_deprecated,
    _strings,
)
from sentencekit.hard_negatives.output import _FORMATTERS, _log_summary, _Mined
from sentencekit.hard_negatives.retrieval import _embed, _Reranker, _rescore, _retrieve
from sentencekit.hard_negatives.selection import _sample, _select

__all__ = ["mine_hard_negatives"]

# the package's one logger, named as it was before the package was split into modules
logger = logging.getLogger("sentencekit.hard_negatives")


def mine_hard_negatives(
    dataset: Any,
    model: Any,
    anchor_column_name: str | None = None,
    positive_column_name: str | None = None,
    corpus: list[str] | None = None,
    cross_encoder: _Reranker | None = None,
    range_min: int = 0,
    range_max: int | None = None,
    max_score: float | None = None,
    min_score: float | None = None,
    absolute_margin: float | None = None,
    relative_margin: float | None = None,
    num_negatives: int = 3,
    sampling_strategy: Literal["random", "top"] = "top",
    query_prompt_name: str | None = None,
    query_prompt: str | None = None,
    corpus_prompt_name: str | None = None,
    corpus_prompt: str | None = None,
    include_positives: bool = False,
    output_format: Literal["triplet", "n-tuple", "labeled-pair", "labeled-list"] = "triplet",
    output_scores: bool = False,
    batch_size: int = 32,
    faiss_batch_size: int = 16384,
    use_faiss: bool = False,
    use_multi_process: list[str] | bool = False,
    verbose: bool = True,
    cache_folder: str | None = None,
    as_triplets: bool | None = None,
    margin: float | None = None,
) -> Any:
    """Add hard negatives to (anchor, positive) pairs; the package docstring describes the four steps.

    Args:
        dataset: The pairs: a ``datasets.Dataset``, a dict of columns such as ``{"anchor": [...],
            "positive": [...]}``, or a list of ``(anchor, positive)`` tuples. An anchor on several rows has
            all of them as positives, and none of them becomes one of its negatives.
        model: A SentenceTransformer (sentencekit's or sentence-transformers'): texts are embedded with
            ``encode_query`` / ``encode_document`` and compared with ``similarity``.
        anchor_column_name: Column of anchors (default: the first column).
        positive_column_name: Column of positives (default: the second column).
        corpus: More candidate texts; the positives are always candidates too.
        cross_encoder: Anything with ``predict(pairs, batch_size=...)``. Its scores replace the embedding
            scores for filtering and ranking, but only when a margin, ``max_score`` or ``min_score`` is set.
        range_min: Skip this many of the best surviving candidates (unlabelled positives often hide there).
        range_max: Look at most this far down the surviving candidates (default: ``range_min +
            num_negatives + max_positives``, with ten times ``num_negatives`` when a filter may drop some).
        max_score: Drop candidates scoring above this.
        min_score: Drop candidates scoring below this.
        absolute_margin: Drop candidates with ``score + absolute_margin > positive score``.
        relative_margin: Drop candidates with ``score > positive - |positive| * relative_margin``.
        num_negatives: Negatives per anchor, at most.
        sampling_strategy: ``"top"`` takes the best candidates; ``"random"`` samples among them (seed
            Python's ``random`` module for repeatable results).
        query_prompt_name: Name of one of the model's prompts, for the anchors.
        query_prompt: Literal prompt for the anchors (wins over ``query_prompt_name``).
        corpus_prompt_name: Name of one of the model's prompts, for the corpus.
        corpus_prompt: Literal prompt for the corpus (wins over ``corpus_prompt_name``).
        include_positives: Leave the positives among the candidates, e.g. to build a reranking evaluation
            set; forces ``output_format="n-tuple"``.
        output_format: ``"triplet"``, ``"n-tuple"``, ``"labeled-pair"`` or ``"labeled-list"``.
        output_scores: Return the scores too (see the package docstring).
        batch_size: Texts encoded, or pairs scored by ``cross_encoder``, at once.
        faiss_batch_size: Anchors searched at once (with or without FAISS); lower it to save memory.
        use_faiss: Search with an exact FAISS inner-product index (``pip install faiss-cpu``).
        use_multi_process: Accepted for compatibility; sentencekit encodes in this process (with a warning).
        verbose: Show progress bars and log a summary of the scores and of what the filters dropped.
        cache_folder: Save the embeddings here, and reuse them when the model name, prompts and texts match.
        as_triplets: Deprecated; use ``output_format``.
        margin: Deprecated; use ``absolute_margin``.

    Returns:
        A ``datasets.Dataset`` when given one, otherwise a dict of column lists.

    Raises:
        ValueError: For a missing column, no rows, or settings that cannot produce negatives.
        MissingDependencyError: For ``use_faiss=True`` without FAISS installed.

    """
    fmt, output_scores, absolute_margin = _resolve_deprecated(
        output_format, output_scores, absolute_margin, as_triplets, margin
    )
    anchor_col, positive_col, anchors, positives = _read_pairs(
        dataset, anchor_column_name, positive_column_name
    )
    filters = {"absolute_margin": absolute_margin, "relative_margin": relative_margin}
    filters |= {"max_score": max_score, "min_score": min_score}
    if include_positives:
        if range_min or range_max is not None or sampling_strategy != "top" or _any_set(*filters.values()):
            logger.warning("With include_positives=True, ranges, filters and sampling may drop positives.")
        if fmt != "n-tuple":
            logger.warning("include_positives=True keeps each ranking in one row: output_format='n-tuple'.")
            fmt = "n-tuple"
    _check_settings(fmt, sampling_strategy, num_negatives, batch_size, faiss_batch_size)
    rescore = cross_encoder is not None and _any_set(*filters.values())
    if cross_encoder is not None and not rescore:
        logger.warning("cross_encoder is only used with a margin, max_score or min_score; ignoring it.")

    max_positives = max(Counter(anchors).values())
    if range_max is None:
        widen = _any_set(absolute_margin, relative_margin, max_score) or (rescore and min_score is not None)
        range_max = range_min + num_negatives * (10 if widen else 1) + max_positives
    if range_min < 0 or range_min >= range_max or num_negatives > range_max - range_min:
        raise ValueError(
            f"range_min={range_min} and range_max={range_max} leave {max(range_max - range_min, 0)} "
            f"candidates for num_negatives={num_negatives}: need 0 <= range_min < range_max and "
            "range_max - range_min >= num_negatives. Lower range_min or num_negatives, or raise range_max."
        )

    queries = list(dict.fromkeys(anchors))
    texts = list(dict.fromkeys([*_strings(corpus or [], "corpus"), *positives]))
    text_ids = {text: i for i, text in enumerate(texts)}
    positive_ids: dict[str, list[int]] = {q: [] for q in queries}
    for anchor, positive in zip(anchors, positives, strict=True):
        if text_ids[positive] not in positive_ids[anchor]:
            positive_ids[anchor].append(text_ids[positive])
    rows = [(qi, pid) for qi, q in enumerate(queries) for pid in positive_ids[q]]  # unique (anchor, positive)
    if verbose:
        logger.info("Mining negatives for %d unique anchors among %d texts.", len(queries), len(texts))

    if use_multi_process:
        logger.warning("use_multi_process is not supported by sentencekit; encoding in this process.")
    embed = {"model": model, "batch_size": batch_size, "verbose": verbose, "cache_folder": cache_folder}
    corpus_emb = _embed(texts, "document", corpus_prompt_name, corpus_prompt, **embed)
    query_emb = _embed(queries, "query", query_prompt_name, query_prompt, **embed)
    k = min(range_max + max_positives, len(texts))
    ids, scores = _retrieve(model, query_emb, corpus_emb, k, use_faiss, faiss_batch_size)
    pos_scores = model.similarity_pairwise(
        query_emb[[qi for qi, _ in rows]], corpus_emb[[p for _, p in rows]]
    )
    pos_scores = torch.as_tensor(pos_scores).detach().float().cpu()
    if cross_encoder is not None and rescore:
        scores, pos_scores = _rescore(cross_encoder, queries, texts, ids, rows, batch_size)

    exclude = None if include_positives else [set(positive_ids[q]) for q in queries]
    negatives, skipped = _select(ids, scores, pos_scores, rows, exclude, filters, range_min, range_max)
    negatives = [_sample(window, num_negatives, sampling_strategy) for window in negatives]

    mined = _Mined(queries, texts, rows, pos_scores.tolist(), negatives, num_negatives, output_scores)
    result = _FORMATTERS[fmt](mined)
    columns = {anchor_col: result.pop("anchor"), positive_col: result.pop("positive"), **result}
    if verbose:
        _log_summary(mined, skipped, filters, len(next(iter(columns.values()))))
    return type(dataset).from_dict(columns) if _is_dataset(dataset) else columns
