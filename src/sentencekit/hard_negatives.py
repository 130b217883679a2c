"""Hard-negative mining: turn (anchor, positive) pairs into training rows with hard negatives.

A *hard negative* is a text the model scores close to an anchor although it is not one of the anchor's
positives. Training on them (e.g. with ``MultipleNegativesRankingLoss``) teaches finer distinctions than
random negatives do. :func:`mine_hard_negatives` finds them for every anchor in four steps:

1. Embed the unique anchors and the corpus: the ``corpus`` you pass plus every positive, de-duplicated.
2. Retrieve the ``range_max + max_positives`` corpus texts most similar to each anchor (``max_positives``,
   the most rows any anchor has, makes room for the anchor's own positives, which are removed).
3. Optionally rescore the candidates with a ``cross_encoder`` (only when a score filter is set), then drop
   those that fail a filter: ``absolute_margin`` / ``relative_margin`` (measured from the anchor's *lowest*
   positive score), ``max_score``, ``min_score``.
4. Rank the survivors by score, keep ranks ``range_min`` up to ``range_max`` (0-based, counted among the
   survivors) and take ``num_negatives`` of them: the best (``"top"``) or a random sample (``"random"``).

==================  ==============================================  =====================================
``output_format``   one row per                                     columns
==================  ==============================================  =====================================
``"triplet"``       (anchor, positive, negative)                    anchor, positive, ``negative``
``"n-tuple"``       (anchor, positive) with all ``num_negatives``   anchor, positive, ``negative_1..n``
``"labeled-pair"``  (anchor, text): positives 1, negatives 0        anchor, positive, ``label``
``"labeled-list"``  (anchor, positive) with at least one negative   anchor, positive (a list), ``labels``
==================  ==============================================  =====================================

With ``output_scores=True`` the scores come too: a ``scores`` column (``[positive, negative, ...]``) for
triplet and n-tuple, ``score`` / ``scores`` in place of ``label`` / ``labels``.

Example:
    >>> from sentencekit import SentenceTransformer
    >>> from sentencekit.util import mine_hard_negatives
    >>> model = SentenceTransformer("all-MiniLM-L6-v2")
    >>> pairs = {"query": ["What do cats eat?", ...], "answer": ["Cats are carnivores ...", ...]}
    >>> triplets = mine_hard_negatives(pairs, model, relative_margin=0.05, num_negatives=5)
    >>> list(triplets)
    ['query', 'answer', 'negative']

The NV-Retriever paper (https://arxiv.org/abs/2407.15831) found ``relative_margin=0.05`` with
``sampling_strategy="top"`` to work best.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import Tensor

from sentencekit._optional import require
from sentencekit.errors import InvalidInputError
from sentencekit.search import semantic_search

__all__ = ["mine_hard_negatives"]

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = ("triplet", "n-tuple", "labeled-pair", "labeled-list")
SAMPLING_STRATEGIES = ("top", "random")
PAIR_COLUMNS = ("anchor", "positive")  # the column names a list of (anchor, positive) tuples gets


class _Reranker(Protocol):
    """What ``cross_encoder`` must offer: one score per (query, text) pair, like ``CrossEncoder.predict``."""

    def predict(self, sentences: list[tuple[str, str]], batch_size: int = ...) -> Any: ...


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
    """Add hard negatives to (anchor, positive) pairs; the module docstring describes the four steps.

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
        output_scores: Return the scores too (see the module docstring).
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


# ------------------------------------------------------------------------------------------------- input


def _any_set(*values: object) -> bool:
    return any(v is not None for v in values)


def _is_dataset(data: object) -> bool:
    """Whether ``data`` is a ``datasets.Dataset``, found out without importing ``datasets``."""
    return type(data).__module__.split(".")[0] == "datasets" and hasattr(data, "column_names")


def _strings(values: Sequence[Any], name: str) -> list[str]:
    values = list(values)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidInputError(f"{name}[{i}] is {type(value).__name__} {value!r}; texts must be str.")
    return values


def _read_pairs(data: Any, anchor: str | None, positive: str | None) -> tuple[str, str, list[str], list[str]]:
    """The anchor and positive column names and texts, whichever form ``data`` came in."""
    if _is_dataset(data) or isinstance(data, Mapping):
        names = list(data.column_names if _is_dataset(data) else data)
        columns = {name: data[name] for name in names if name in (anchor, positive) or name in names[:2]}
    elif isinstance(data, Sequence) and all(isinstance(r, (tuple, list)) and len(r) == 2 for r in data):
        names = list(PAIR_COLUMNS)
        columns = {name: [row[i] for row in data] for i, name in enumerate(names)}
    else:
        raise InvalidInputError(
            f"Cannot read (anchor, positive) pairs from {type(data).__name__}. Pass a datasets.Dataset, a "
            "dict of columns such as {'anchor': [...], 'positive': [...]}, or a list of (anchor, positive) "
            "tuples."
        )
    chosen = []
    for position, (what, given) in enumerate((("anchor", anchor), ("positive", positive))):
        if given is None and len(names) <= position:
            raise ValueError(f"The input has the columns {names}; it needs two: anchors and positives.")
        name = names[position] if given is None else given
        if name not in names:
            raise ValueError(
                f"{what}_column_name={name!r} is not a column of the input, whose columns are {names}. "
                f"Pass one of them as {what}_column_name."
            )
        chosen.append(name)
    anchors, positives = (_strings(columns[name], name) for name in chosen)
    if not anchors:
        raise ValueError("The input has no rows; pass at least one (anchor, positive) pair.")
    return chosen[0], chosen[1], anchors, positives


def _resolve_deprecated(
    output_format: str,
    scores: bool,
    absolute_margin: float | None,
    as_triplets: bool | None,
    margin: float | None,
) -> tuple[str, bool, float | None]:
    if as_triplets is not None:
        output_format = "triplet" if as_triplets else "n-tuple"
        logger.warning("as_triplets is deprecated; use output_format=%r.", output_format)
    if output_format == "n-tuple-scores":
        logger.warning("output_format='n-tuple-scores' is deprecated; use 'n-tuple' and output_scores=True.")
        output_format, scores = "n-tuple", True
    if margin is not None:
        logger.warning("margin is deprecated; use absolute_margin=%r (or relative_margin).", margin)
        absolute_margin = margin
    return output_format, scores, absolute_margin


def _check_settings(
    output_format: str, strategy: str, num_negatives: int, batch_size: int, chunk: int
) -> None:
    for name, value, valid in (
        ("output_format", output_format, OUTPUT_FORMATS),
        ("sampling_strategy", strategy, SAMPLING_STRATEGIES),
    ):
        if value not in valid:
            raise ValueError(f"{name}={value!r} is unknown; choose one of {list(valid)}.")
    for name, number in (
        ("num_negatives", num_negatives),
        ("batch_size", batch_size),
        ("faiss_batch_size", chunk),
    ):
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ValueError(f"{name} must be a positive integer, got {number!r}.")


# ------------------------------------------------------------------------------------- embed and search


def _embed(
    texts: list[str],
    role: str,
    prompt_name: str | None,
    prompt: str | None,
    *,
    model: Any,
    batch_size: int,
    verbose: bool,
    cache_folder: str | None,
) -> Tensor:
    """Unit-length embeddings from ``encode_query`` / ``encode_document``, cached on disk when asked."""
    path = None
    if cache_folder is not None:
        card = getattr(model, "model_card_data", None)
        name = getattr(card, "base_model", None) or getattr(model, "model_id", None)
        key = repr((name, role, prompt_name, prompt, texts)).encode()
        path = Path(cache_folder) / f"{role}_embeddings_{hashlib.sha256(key).hexdigest()}.npy"
        if path.is_file():
            logger.info("Loaded the %s embeddings from %s.", role, path)
            return torch.from_numpy(np.load(path))
    kwargs: dict[str, Any] = {
        "batch_size": batch_size,
        "normalize_embeddings": True,
        "show_progress_bar": verbose,
    }
    # only what is set is passed, so that encode_query/encode_document can fall back to the model's prompts
    optional = {"prompt_name": prompt_name, "prompt": prompt}
    kwargs |= {key: value for key, value in optional.items() if value is not None}
    encode = getattr(model, f"encode_{role}", None) or model.encode
    embeddings = np.asarray(encode(texts, convert_to_numpy=True, **kwargs))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, embeddings)
    return torch.from_numpy(embeddings)


def _retrieve(
    model: Any, queries: Tensor, corpus: Tensor, k: int, faiss: bool, chunk: int
) -> tuple[Tensor, Tensor]:
    """The ``k`` best corpus ids per query with their scores, best first: two ``(queries, k)`` tensors."""
    if faiss:
        index = require("faiss", extra="faiss", purpose="use_faiss=True").IndexFlatIP(corpus.shape[1])
        index.add(corpus.float().numpy())
    ids, scores = [], []
    # chunks of queries bound the memory that the hits take before they are packed into tensors
    for start in range(0, len(queries), chunk):
        block = queries[start : start + chunk]
        if faiss:
            block_scores, block_ids = (torch.from_numpy(a) for a in index.search(block.float().numpy(), k))
        else:
            hits = semantic_search(block, corpus, top_k=k, score_function=model.similarity)
            block_ids = torch.tensor([[hit["corpus_id"] for hit in row] for row in hits])
            block_scores = torch.tensor([[hit["score"] for hit in row] for row in hits], dtype=torch.float32)
        ids.append(block_ids.long())
        scores.append(block_scores)
    return torch.cat(ids), torch.cat(scores)


def _rescore(
    reranker: _Reranker,
    queries: list[str],
    texts: list[str],
    ids: Tensor,
    rows: list[tuple[int, int]],
    batch: int,
) -> tuple[Tensor, Tensor]:
    """Cross-encoder scores of every candidate (shaped like ``ids``) and of every (anchor, positive) row."""
    pairs = [(queries[qi], texts[c]) for qi, row in enumerate(ids.tolist()) for c in row]
    pairs += [(queries[qi], texts[pid]) for qi, pid in rows]
    scores = torch.as_tensor(np.asarray(reranker.predict(pairs, batch_size=batch), dtype=np.float32))
    if scores.shape != (len(pairs),):
        raise ValueError(
            f"cross_encoder.predict returned shape {tuple(scores.shape)} for {len(pairs)} pairs; it must "
            "return one score per pair (a CrossEncoder with num_labels=1)."
        )
    return scores[: ids.numel()].reshape(ids.shape), scores[ids.numel() :]


def _select(
    ids: Tensor,
    scores: Tensor,
    pos_scores: Tensor,
    rows: list[tuple[int, int]],
    exclude: list[set[int]] | None,
    filters: dict[str, float | None],
    range_min: int,
    range_max: int,
) -> tuple[list[list[tuple[int, float]]], dict[str, int]]:
    """Apply the filters and the range window: per query, the ranked (id, score) candidates left.

    Also returns how many candidates each filter dropped (that no earlier rule had dropped already).
    """
    dropped = torch.zeros_like(scores, dtype=torch.bool)
    if exclude is not None:  # an anchor's own positives are never its negatives
        own = [[c in exclude[qi] for c in row] for qi, row in enumerate(ids.tolist())]
        dropped |= torch.tensor(own, dtype=torch.bool).reshape(scores.shape)
    # the margins are measured from each anchor's hardest (lowest-scoring) positive
    hardest = torch.full((len(ids),), torch.inf, dtype=scores.dtype).scatter_reduce(
        0, torch.tensor([qi for qi, _ in rows]), pos_scores.to(scores.dtype), reduce="amin"
    )[:, None]
    fails = {
        "absolute_margin": lambda m: scores + m > hardest,
        "relative_margin": lambda m: scores > hardest - hardest.abs() * m,
        "max_score": lambda m: scores > m,
        "min_score": lambda m: scores < m,
    }
    skipped: dict[str, int] = {}
    for name, value in filters.items():
        if value is not None:
            failed = fails[name](value)
            skipped[name] = int((failed & ~dropped).sum())
            dropped |= failed
    # survivors best first (a stable sort: equal scores keep their retrieval order), cut to the window
    masked = scores.masked_fill(dropped, -torch.inf)
    order = torch.sort(masked, dim=1, descending=True, stable=True).indices[:, range_min:range_max]
    windows = zip(ids.gather(1, order).tolist(), masked.gather(1, order).tolist(), strict=True)
    survivors = [[(c, s) for c, s in zip(*window, strict=True) if s != -np.inf] for window in windows]
    return survivors, skipped


def _sample(window: list[tuple[int, float]], n: int, strategy: str) -> list[tuple[int, float]]:
    """Pick ``n`` of the ranked ``window`` (fewer when it is shorter), keeping the ranking order."""
    if strategy == "top":
        return window[:n]
    # n places drawn among max(len(window), n) as the reference draws them, so a seeded run matches it;
    # places past the end of a short window stay empty and the anchor gets fewer negatives
    places = random.sample(range(max(len(window), n)), k=n)
    return [window[p] for p in sorted(places) if p < len(window)]


# ------------------------------------------------------------------------------------------------ output


@dataclass(frozen=True)
class _Mined:
    """What every output format is built from."""

    queries: list[str]
    texts: list[str]
    rows: list[tuple[int, int]]  # unique (query index, positive's text index), grouped by query
    positive_scores: list[float]  # one per row
    negatives: list[list[tuple[int, float]]]  # per query: (text index, score), best first
    num_negatives: int
    scored: bool

    def scored_rows(self) -> list[tuple[int, int, float]]:
        return [(qi, pid, s) for (qi, pid), s in zip(self.rows, self.positive_scores, strict=True)]


def _triplets(m: _Mined) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"anchor": [], "positive": [], "negative": [], "scores": []}
    for qi, pid, pos_score in m.scored_rows():
        for nid, neg_score in m.negatives[qi]:
            out["anchor"].append(m.queries[qi])
            out["positive"].append(m.texts[pid])
            out["negative"].append(m.texts[nid])
            out["scores"].append([pos_score, neg_score])
    return out if m.scored else {key: out[key] for key in ("anchor", "positive", "negative")}


def _n_tuples(m: _Mined) -> dict[str, list[Any]]:
    full = [(qi, pid, s) for qi, pid, s in m.scored_rows() if len(m.negatives[qi]) == m.num_negatives]
    out: dict[str, list[Any]] = {"anchor": [m.queries[qi] for qi, _, _ in full]}
    out["positive"] = [m.texts[pid] for _, pid, _ in full]
    for i in range(m.num_negatives):
        out[f"negative_{i + 1}"] = [m.texts[m.negatives[qi][i][0]] for qi, _, _ in full]
    if m.scored:
        out["scores"] = [[s, *(score for _, score in m.negatives[qi])] for qi, _, s in full]
    return out


def _labeled_pairs(m: _Mined) -> dict[str, list[Any]]:
    label = "score" if m.scored else "label"
    out: dict[str, list[Any]] = {"anchor": [], "positive": [], label: []}
    labelled: dict[int, list[tuple[int, float, int]]] = {}  # per query, its positives then its negatives
    for qi, pid, s in m.scored_rows():
        labelled.setdefault(qi, []).append((pid, s, 1))
    for qi, texts in labelled.items():
        for tid, s, value in [*texts, *((nid, s, 0) for nid, s in m.negatives[qi])]:
            out["anchor"].append(m.queries[qi])
            out["positive"].append(m.texts[tid])
            out[label].append(s if m.scored else value)
    return out


def _labeled_lists(m: _Mined) -> dict[str, list[Any]]:
    kept = [(qi, pid, s) for qi, pid, s in m.scored_rows() if m.negatives[qi]]
    out: dict[str, list[Any]] = {"anchor": [m.queries[qi] for qi, _, _ in kept]}
    out["positive"] = [[m.texts[pid], *(m.texts[c] for c, _ in m.negatives[qi])] for qi, pid, _ in kept]
    if m.scored:
        out["scores"] = [[s, *(score for _, score in m.negatives[qi])] for qi, _, s in kept]
    else:
        out["labels"] = [[1] + [0] * len(m.negatives[qi]) for qi, _, _ in kept]
    return out


_FORMATTERS = {"triplet": _triplets, "n-tuple": _n_tuples, "labeled-pair": _labeled_pairs}
_FORMATTERS["labeled-list"] = _labeled_lists


def _log_summary(m: _Mined, skipped: dict[str, int], filters: dict[str, float | None], n_out: int) -> None:
    negative_scores = [s for row in m.negatives for _, s in row]
    logger.info(
        "Mean positive score %.4f over %d pairs; mean negative score %.4f over %d negatives; %d output rows.",
        np.mean(m.positive_scores),
        len(m.positive_scores),
        np.mean(negative_scores) if negative_scores else float("nan"),
        len(negative_scores),
        n_out,
    )
    for name, count in skipped.items():
        if count:
            logger.info("Skipped %d candidates because of %s=%s.", count, name, filters[name])
    short = sum(len(row) < m.num_negatives for row in m.negatives)
    if short:
        logger.warning(
            "%d of %d anchors found fewer than %d negatives. To find more, raise range_max or lower "
            "range_min, or loosen the margins, max_score or min_score.",
            short,
            len(m.negatives),
            m.num_negatives,
        )
