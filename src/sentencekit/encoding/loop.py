"""The batch loop: tokenize once, run the modules over token-length-sorted batches, restore input order."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from sentencekit.encoding.batching import length_sorted_batches, split_for_workers
from sentencekit.encoding.gpu import autocast_region, forward_with_backoff, run_modules
from sentencekit.encoding.parallel import run_batches
from sentencekit.modules import InputModule
from sentencekit.modules.fused_splade import fused_modules
from sentencekit.modules.router import routed_modules

__all__ = ["EncodePlan", "check_max_active_dims", "keep_top_dims", "run_encode"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodePlan:
    """Everything about one ``encode`` call except the texts, already validated."""

    batch_size: int
    device: torch.device
    prompt: str | None = None
    # 0 means "no prompt tokens to exclude"; computed once per prompt by the caller.
    prompt_length: int = 0
    output_value: str | None = "sentence_embedding"
    normalize: bool = False
    truncate_dim: int | None = None
    max_batch_tokens: int | None = None
    show_progress_bar: bool = False
    to_cpu: bool = True
    # Half dtype for the encoder's matrix products on CUDA (fp16 by default there); None runs it as loaded.
    autocast_dtype: torch.dtype | None = None
    # Sparse encoders: keep each vector's largest (by magnitude) dimensions only, and gather sparse COO rows.
    max_active_dims: int | None = None
    sparse: bool = False
    # Picks the route of each Router in the model ("query", "document", ...); None: their default routes.
    task: str | None = None


def run_encode(modules: Sequence[nn.Module], texts: list[str], plan: EncodePlan) -> Tensor | list[Any]:
    """Encode ``texts`` through ``modules`` (the first must be an :class:`InputModule`: it reads the text).

    A :class:`~sentencekit.modules.Router` among ``modules`` stands for the modules of the route that
    ``plan.task`` picks. Each distinct text is encoded once. Returns a stacked tensor for sentence embeddings,
    else a list with one item per text (token embedding tensors, or dicts of every output when
    ``output_value`` is ``None``).
    """
    modules = routed_modules(modules, plan.task)
    if plan.output_value == "sentence_embedding":  # SPLADE's head and pooling in one step, when they fit
        modules = fused_modules(modules)
    reader = modules[0]
    if not isinstance(reader, InputModule):
        raise TypeError(
            "The first module must read text (a Transformer or a StaticEmbedding), found "
            f"{type(reader).__name__}."
        )
    if not texts:
        return torch.empty((0, 0)) if plan.output_value == "sentence_embedding" else []
    unique: dict[str, int] = {}
    positions = [unique.setdefault(text, len(unique)) for text in texts]
    distinct = list(unique)
    if plan.prompt:
        distinct = [plan.prompt + text for text in distinct]

    tokenized = reader.tokenize_unpadded(distinct)
    if tokenized.num_truncated:
        logger.warning(
            "%d of %d texts are longer than max_seq_length=%s tokens and were truncated; raise "
            "model.max_seq_length (up to the model's limit) or split long texts to keep their ends.",
            tokenized.num_truncated,
            len(distinct),
            reader.max_seq_length,
        )
    budget = plan.max_batch_tokens if plan.max_batch_tokens is not None else reader.default_batch_tokens
    batches = length_sorted_batches(tokenized.lengths(), plan.batch_size, budget)
    outputs = _Outputs(len(distinct), plan)
    # > 1 only for an encoder that runs batches side by side (ONNX Runtime, half-precision torch on the CPU)
    workers = reader.parallel_batches
    parallel = workers > 1 and plan.device.type == "cpu"

    def batch_features(batch: np.ndarray) -> dict[str, Any]:
        ids = [tokenized.input_ids[i] for i in batch]
        types = [tokenized.token_type_ids[i] for i in batch] if tokenized.token_type_ids else None
        features: dict[str, Any] = {
            name: value.to(plan.device) for name, value in reader.collate(ids, types).items()
        }
        if plan.prompt_length:
            features["prompt_length"] = plan.prompt_length
        if plan.max_active_dims is not None:  # a SparseAutoEncoder keeps this many codes instead of its k
            features["max_active_dims"] = plan.max_active_dims
        return features

    if parallel:

        def encode_batch(batch: Any) -> Any:
            features = batch_features(batch)
            for module in modules:
                features = module(features)
            return outputs.prepare(features, len(batch))

        planned = split_for_workers(batches, workers)
        for batch, prepared in run_batches(planned, encode_batch, workers, plan.show_progress_bar):
            outputs.put(batch, prepared)
    with torch.inference_mode(), autocast_region(plan.autocast_dtype):
        for batch in tqdm([] if parallel else batches, desc="Batches", disable=not plan.show_progress_bar):
            pieces = forward_with_backoff(
                lambda features: run_modules(modules, features, plan.autocast_dtype),
                batch_features(batch),
                on_oom=torch.cuda.empty_cache if plan.device.type == "cuda" else None,
            )
            for first, rows, piece in pieces:
                outputs.put(batch[first : first + rows], outputs.prepare(piece, rows))
    return outputs.in_order(positions)


class _Outputs:
    """Per-text outputs, gathered batch by batch into input order.

    Sentence embeddings go straight into one ``(texts, dim)`` tensor, made when the first batch arrives: no
    per-row tensors, and no second full-size copy from stacking them at the end (for 100,000 texts and 384
    dimensions that copy alone is 150 MB). Sparse embeddings (``plan.sparse``) are kept as each batch's
    non-zero entries and put together once at the end.
    """

    def __init__(self, size: int, plan: EncodePlan) -> None:
        self.size = size
        self.plan = plan
        self.matrix: Tensor | None = None
        self.items: list[Any] = [] if plan.output_value == "sentence_embedding" else [None] * size
        self.sparse_parts: list[Tensor] = []  # coalesced COO batches, their rows renumbered to distinct texts

    def prepare(self, features: dict[str, Any], rows: int) -> Any:
        """One batch's output as it is stored: an embedding matrix, or a list of per-text items."""
        if self.plan.output_value == "sentence_embedding":
            emb: Tensor = features["sentence_embedding"]
            if self.plan.truncate_dim is not None:
                emb = emb[:, : self.plan.truncate_dim]
            if self.plan.max_active_dims is not None:
                emb = keep_top_dims(emb, self.plan.max_active_dims)
            emb = F.normalize(emb, p=2, dim=1) if self.plan.normalize else emb
            return emb.to_sparse() if self.plan.sparse else emb
        return _split_outputs(features, rows, self.plan)

    def put(self, rows: np.ndarray, prepared: Any) -> None:
        """Store a batch's prepared output at its rows (indices into the distinct texts)."""
        if self.plan.output_value != "sentence_embedding":
            for row, item in zip(rows.tolist(), prepared, strict=True):
                self.items[row] = item
            return
        if self.plan.sparse:
            indices = prepared.indices().clone()
            indices[0] = torch.from_numpy(rows).to(indices.device)[indices[0]]
            self.sparse_parts.append(
                torch.sparse_coo_tensor(
                    indices, prepared.values(), (self.size, prepared.shape[1]), check_invariants=False
                )
            )
            return
        if self.matrix is None:
            # a plain tensor even inside inference mode, so that callers may change it in place
            with torch.inference_mode(False):
                self.matrix = prepared.new_empty((self.size, prepared.shape[1]))
        self.matrix[torch.from_numpy(rows).to(prepared.device)] = prepared

    def in_order(self, positions: list[int]) -> Tensor | list[Any]:
        """The outputs for the original texts (``positions[i]`` is text ``i``'s distinct index)."""
        if self.plan.output_value != "sentence_embedding":
            return [self.items[p] for p in positions]
        if self.plan.sparse:
            return self._sparse_in_order(positions)
        assert self.matrix is not None  # at least one text, so at least one batch
        # distinct texts are numbered in order of first appearance: no repeats means the identity
        matrix = self.matrix if len(positions) == self.size else self.matrix[torch.tensor(positions)]
        return matrix.cpu() if self.plan.to_cpu else matrix

    def _sparse_in_order(self, positions: list[int]) -> Tensor:
        parts = self.sparse_parts
        with torch.inference_mode(False):
            indices = torch.cat([p._indices() for p in parts], dim=1)
            values = torch.cat([p._values() for p in parts])
            matrix = torch.sparse_coo_tensor(
                indices, values, parts[0].shape, check_invariants=False
            ).coalesce()
            if len(positions) != self.size:  # repeated texts: their rows are copies of the first's
                matrix = matrix.index_select(0, torch.tensor(positions, device=matrix.device)).coalesce()
        return matrix.cpu() if self.plan.to_cpu else matrix


def check_max_active_dims(value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is ``None`` or a positive integer (a bool is not one)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValueError(f"max_active_dims must be a positive integer or None, got {value!r}.")


def keep_top_dims(embeddings: Tensor, k: int) -> Tensor:
    """Zero all but the ``k`` largest-magnitude entries of each row (rows keep their signs and shape)."""
    if k >= embeddings.shape[-1]:
        return embeddings
    top = torch.topk(embeddings.abs(), k=k, dim=-1).indices
    return torch.zeros_like(embeddings).scatter_(-1, top, embeddings.gather(-1, top))


def _split_outputs(features: dict[str, Any], size: int, plan: EncodePlan) -> list[Any]:
    """Turn one batch's features into per-text outputs as ``plan.output_value`` asks."""
    if plan.output_value == "token_embeddings":
        if "token_embeddings" not in features:
            raise ValueError(
                "This model gives no token embeddings (a StaticEmbedding averages its tokens directly); use "
                "output_value='sentence_embedding'."
            )
        tokens: Tensor = features["token_embeddings"]
        mask: Tensor = features["attention_mask"]
        out = []
        for row in range(size):
            real = torch.nonzero(mask[row]).flatten()
            end = int(real[-1]) + 1 if len(real) else 1
            item = tokens[row, :end]
            out.append(item.cpu() if plan.to_cpu else item)
        return out
    # output_value None: every tensor output, row by row
    items: list[dict[str, Any]] = [{} for _ in range(size)]
    for name, value in features.items():
        is_rows = isinstance(value, Tensor) and value.ndim > 0 and value.shape[0] == size
        for row in range(size):
            items[row][name] = value[row] if is_rows else value
    return items
