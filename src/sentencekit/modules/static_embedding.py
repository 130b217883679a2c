"""StaticEmbedding: a text's embedding is the mean of its tokens' rows in one trained table.

No attention and no layers: encoding costs one tokenizer pass and one ``nn.EmbeddingBag`` lookup, so it runs
at tens of thousands of texts per second on a CPU. Models such as ``sentence-transformers/
static-retrieval-mrl-en-v1`` and model2vec's ``potion`` family are built this way.

Folder layout (the reference's): ``tokenizer.json`` (a ``tokenizers`` file) and ``model.safetensors`` holding
``embedding.weight``. A model2vec folder (``embeddings`` with optional ``mapping`` and per-token ``weights``)
loads too; its mapping and weights are folded into one row per token id.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from sentencekit.encoding.batching import IdRows
from sentencekit.encoding.tokens import TokenizedTexts, tokenize_in_chunks
from sentencekit.errors import ModelFormatError
from sentencekit.modules.base import Features
from sentencekit.modules.input_module import InputModule

__all__ = ["StaticEmbedding"]

# Texts per batch when encode gets no batch size. A batch costs a tokenizer call's worth of Python and one
# EmbeddingBag call, so larger batches only help; 1,024 keeps a batch's ids a few hundred KB.
STATIC_BATCH_SIZE = 1024


class StaticEmbedding(InputModule):
    """Token embeddings averaged per text (``nn.EmbeddingBag``, mean), over a fast tokenizer's ids.

    Args:
        tokenizer: A ``tokenizers.Tokenizer`` or a transformers fast tokenizer (its Rust tokenizer is used).
            Texts are tokenized without special tokens and without padding.
        embedding_weights: The ``(vocabulary, dim)`` table (NumPy or torch); trained along with the model.
        embedding_dim: Width of a new, randomly initialized table (when ``embedding_weights`` is ``None``).
        base_model: The model the table was distilled from, for the record.

    Raises:
        ValueError: For a slow tokenizer, a table that is not 2-D, or when neither ``embedding_weights``
            nor ``embedding_dim`` is given.

    Example:
        >>> from tokenizers import Tokenizer
        >>> tokenizer = Tokenizer.from_file("tokenizer.json")  # doctest: +SKIP
        >>> static = StaticEmbedding(tokenizer, embedding_dim=256)  # doctest: +SKIP
        >>> model = SentenceTransformer(modules=[static])  # doctest: +SKIP
    """

    reference_type: ClassVar[str] = "sentence_transformers.models.StaticEmbedding"

    def __init__(
        self,
        tokenizer: Any,
        embedding_weights: np.ndarray | Tensor | None = None,
        embedding_dim: int | None = None,
        *,
        base_model: str | None = None,
    ) -> None:
        super().__init__()
        from tokenizers import Tokenizer

        backend = getattr(tokenizer, "backend_tokenizer", None)  # a transformers fast tokenizer
        if isinstance(backend, Tokenizer):
            tokenizer = copy.deepcopy(backend)
        elif not isinstance(tokenizer, Tokenizer):
            raise ValueError(
                "StaticEmbedding needs a fast tokenizer (tokenizers.Tokenizer), got "
                f"{type(tokenizer).__name__}. Load one with tokenizers.Tokenizer.from_file('tokenizer.json') "
                "or Tokenizer.from_pretrained(name)."
            )
        if embedding_weights is not None:
            table = torch.as_tensor(embedding_weights)
            if table.ndim != 2:
                raise ValueError(
                    f"embedding_weights must be 2-D (vocabulary, dim), got shape {tuple(table.shape)}."
                )
            self.embedding = nn.EmbeddingBag.from_pretrained(table, freeze=False, mode="mean")
        elif embedding_dim is not None:
            self.embedding = nn.EmbeddingBag(tokenizer.get_vocab_size(), embedding_dim, mode="mean")
        else:
            raise ValueError("Pass embedding_weights (a trained table) or embedding_dim (for a new one).")
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.base_model = base_model

    @property
    def num_embeddings(self) -> int:
        """Rows in the table (the tokenizer's vocabulary)."""
        return int(self.embedding.num_embeddings)

    @property
    def embedding_dim(self) -> int:
        """Width of the embeddings."""
        return int(self.embedding.embedding_dim)

    @property
    def max_seq_length(self) -> int | float:
        """The truncation length its ``tokenizer.json`` sets, else no limit (``math.inf``).

        The reference always reports ``math.inf``, though it truncates as the tokenizer says, as we do.
        """
        truncation = self.tokenizer.truncation
        return int(truncation["max_length"]) if truncation else math.inf

    def get_sentence_embedding_dimension(self) -> int:
        """Width of the vectors this module outputs."""
        return self.embedding_dim

    def get_config(self) -> dict[str, Any]:
        """What identifies the module besides its weights and tokenizer (for cache keys)."""
        return {"embedding_dim": self.embedding_dim, "num_embeddings": self.num_embeddings}

    @property
    def default_batch_size(self) -> int:
        """Texts per batch when ``encode`` gets ``batch_size=None``: :data:`STATIC_BATCH_SIZE`."""
        return STATIC_BATCH_SIZE

    # --- tokenization -------------------------------------------------------------------------------------

    def tokenize_unpadded(self, texts: list[str]) -> TokenizedTexts:
        """Token ids of ``texts`` without special tokens.

        Raises:
            ModelFormatError: When the tokenizer gives an id the table has no row for (tokenizer and
                weights from different models).
        """

        def call(start: int, stop: int) -> dict[str, Any]:
            encodings = self.tokenizer.encode_batch(texts[start:stop], add_special_tokens=False)
            return _Encoded(encodings)

        tokenized = tokenize_in_chunks(call, len(texts), with_token_types=False)
        flat = tokenized.input_ids.flat
        if flat.size and int(flat.max()) >= self.num_embeddings:
            raise ModelFormatError(
                f"The tokenizer gave token id {int(flat.max())}, but the embedding table has only "
                f"{self.num_embeddings} rows: the tokenizer and the weights do not belong together."
            )
        return tokenized

    def collate(self, input_ids: IdRows, token_type_ids: IdRows | None = None) -> Features:
        """All ids of the batch in one flat tensor, with each text's start in ``offsets``."""
        del token_type_ids
        lengths = [len(row) for row in input_ids]
        rows = [np.asarray(row, dtype=np.int64) for row in input_ids]
        flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        offsets = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        return {
            "input_ids": torch.as_tensor(flat, dtype=torch.long),
            "offsets": torch.from_numpy(offsets),
        }

    # --- forward / save / load ----------------------------------------------------------------------------

    def forward(self, features: Features) -> Features:
        """Add ``sentence_embedding``: each text's mean token row (zeros for a text without tokens)."""
        device = self.embedding.weight.device
        ids, offsets = features["input_ids"].to(device), features["offsets"].to(device)
        if ids.numel() == 0:  # torch's EmbeddingBag leaves its output uninitialized when no bag has an id
            features["sentence_embedding"] = self.embedding.weight.new_zeros(len(offsets), self.embedding_dim)
        else:
            features["sentence_embedding"] = self.embedding(ids, offsets)
        return features

    def save(self, path: str | Path) -> None:
        """Write ``model.safetensors`` (``embedding.weight``) and ``tokenizer.json`` into folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        weight = self.embedding.weight.detach().contiguous().cpu()
        save_file({"embedding.weight": weight}, str(path / "model.safetensors"))
        self.tokenizer.save(str(path / "tokenizer.json"))

    @classmethod
    def load(cls, path: str | Path) -> StaticEmbedding:
        """Build the module from a folder: the reference's layout, or a model2vec model's.

        Raises:
            ModelFormatError: When ``tokenizer.json`` or the weights are missing or hold no table.
        """
        from tokenizers import Tokenizer

        path = Path(path)
        tokenizer_file = path / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise ModelFormatError(f"{path} has no tokenizer.json, which a StaticEmbedding module needs.")
        weights = _read_weights(path)
        if "embedding.weight" in weights:
            table = weights["embedding.weight"]
        elif "embeddings" in weights:
            table = _fold_model2vec(weights["embeddings"], weights.get("mapping"), weights.get("weights"))
        else:
            raise ModelFormatError(
                f"The weights in {path} hold {sorted(weights)}; a StaticEmbedding needs 'embedding.weight' "
                "(or model2vec's 'embeddings')."
            )
        return cls(Tokenizer.from_file(str(tokenizer_file)), embedding_weights=table)

    @classmethod
    def from_model2vec(cls, model_id_or_path: str, **hub_kwargs: Any) -> StaticEmbedding:
        """Load a model2vec model (a Hub id or a folder) as a StaticEmbedding; model2vec itself is not needed.

        Args:
            model_id_or_path: e.g. ``"minishlab/potion-base-8M"`` or a local folder.
            **hub_kwargs: ``revision``, ``token``, ``cache_folder``, ``local_files_only``
                (see :func:`sentencekit.hub.resolve_model_path`).
        """
        from sentencekit.hub import resolve_model_path

        return cls.load(resolve_model_path(model_id_or_path, **hub_kwargs))

    def __repr__(self) -> str:
        return f"StaticEmbedding(num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim})"


class _Encoded(dict):
    """The ids of a ``tokenizers`` batch in the shape :func:`tokenize_in_chunks` reads (and its encodings)."""

    def __init__(self, encodings: list[Any]) -> None:
        super().__init__(input_ids=[e.ids for e in encodings])
        self.encodings = encodings


def _read_weights(path: Path) -> dict[str, Tensor]:
    safetensors_file, torch_file = path / "model.safetensors", path / "pytorch_model.bin"
    if safetensors_file.is_file():
        return load_file(str(safetensors_file))
    if torch_file.is_file():
        loaded = torch.load(torch_file, map_location="cpu", weights_only=True)
        return {k: v for k, v in loaded.items() if isinstance(v, Tensor)}
    raise ModelFormatError(f"{path} has neither model.safetensors nor pytorch_model.bin.")


def _fold_model2vec(embeddings: Tensor, mapping: Tensor | None, weights: Tensor | None) -> Tensor:
    """One row per token id: ``embeddings[mapping[id]] * weights[id]`` (what model2vec averages)."""
    if mapping is not None:
        embeddings = embeddings[mapping.long()]
    if weights is not None:
        dtype = torch.promote_types(embeddings.dtype, torch.float32)  # the table comes out in at least fp32
        embeddings = embeddings.to(dtype) * weights.to(dtype)[:, None]
    return embeddings.contiguous()
