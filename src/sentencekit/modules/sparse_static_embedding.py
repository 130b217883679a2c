"""SparseStaticEmbedding: a text's sparse vector is a fixed weight for each vocabulary token it contains.

No encoder runs: a query costs one tokenizer pass and one lookup, which is why inference-free SPLADE models
encode queries this way (the weights are often IDF values) and documents with a full
:class:`~sentencekit.modules.MLMTransformer`, both routed by a :class:`~sentencekit.modules.Router`.

Folder layout (the reference's): the tokenizer's files, ``model.safetensors`` holding ``weight`` (one value
per vocabulary entry) and ``config.json`` with ``frozen``. A ``config.json`` whose ``path`` names a JSON file
of ``{token: weight}`` builds the weights from that file instead (:meth:`SparseStaticEmbedding.from_json`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from sentencekit.encoding.batching import IdRows, pad_token_ids
from sentencekit.encoding.tokens import TokenizedTexts, tokenize_in_chunks
from sentencekit.errors import ModelFormatError
from sentencekit.modules.base import Features, read_json, write_json
from sentencekit.modules.input_module import InputModule

__all__ = ["SparseStaticEmbedding"]

# The file name from_json looks for when it is given a folder or a Hub id rather than a JSON file.
IDF_FILE = "idf.json"


class SparseStaticEmbedding(InputModule):
    """One weight per vocabulary token: a text's vector holds the weights of the tokens it contains.

    A token counts once however often it occurs; special tokens are not added and padding counts as absent.
    When an earlier module already put a ``sentence_embedding`` in the features, the result is multiplied
    with it element-wise.

    Args:
        tokenizer: A transformers tokenizer (``AutoTokenizer``); often the document encoder's, so that both
            routes share one vocabulary.
        weight: The ``(vocabulary,)`` weights (e.g. IDF values). ``None``: all ones, one per entry of
            ``tokenizer.get_vocab()``.
        frozen: Keep the weights fixed during training.

    Example:
        >>> from sentencekit.sparse_encoder import SparseEncoder
        >>> from sentencekit.sparse_encoder.models import MLMTransformer, Router, SpladePooling
        >>> name = "opensearch-project/opensearch-neural-sparse-encoding-doc-v3-distill"
        >>> document = MLMTransformer(name)  # doctest: +SKIP
        >>> query = SparseStaticEmbedding.from_json(name, document.tokenizer, frozen=True)  # doctest: +SKIP
        >>> pooling = SpladePooling("max", "log1p_relu")
        >>> router = Router.for_query_document([query], [document, pooling])  # doctest: +SKIP
        >>> model = SparseEncoder(modules=[router])  # doctest: +SKIP
    """

    config_keys: ClassVar[tuple[str, ...]] = ("frozen",)
    reference_type: ClassVar[str] = "sentence_transformers.sparse_encoder.models.SparseStaticEmbedding"

    def __init__(self, tokenizer: Any, weight: Tensor | None = None, frozen: bool = False) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        if weight is None:
            weight = torch.ones(len(tokenizer.get_vocab()))
        if weight.ndim != 1:
            raise ValueError(
                f"weight must hold one value per vocabulary token (1-D), got shape {tuple(weight.shape)}."
            )
        self.weight = nn.Parameter(weight, requires_grad=not frozen)
        self.frozen = frozen

    @property
    def num_dimensions(self) -> int:
        """Width of the output vectors: one per weight."""
        return int(self.weight.shape[0])

    @property
    def max_seq_length(self) -> int:
        """Tokens read per text (the tokenizer's ``model_max_length``); later ones are ignored."""
        return int(self.tokenizer.model_max_length)

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if int(value) <= 0:
            raise ValueError(f"max_seq_length must be a positive number of tokens, got {value}.")
        self.tokenizer.model_max_length = int(value)

    def get_sentence_embedding_dimension(self) -> int:
        """Width of the output vectors: the number of weights (the vocabulary size)."""
        return self.num_dimensions

    get_embedding_dimension = get_sentence_embedding_dimension

    # --- tokenization -------------------------------------------------------------------------------------

    def tokenize_unpadded(self, texts: list[str]) -> TokenizedTexts:
        """Token ids of ``texts`` without special tokens, truncated at :attr:`max_seq_length`."""

        def call(start: int, stop: int) -> Any:
            return self.tokenizer(
                texts[start:stop],
                truncation=True,
                add_special_tokens=False,
                return_attention_mask=False,
                return_token_type_ids=False,
            )

        tokenized = tokenize_in_chunks(call, len(texts), with_token_types=False)
        flat = tokenized.input_ids.flat
        if flat.size and int(flat.max()) >= self.num_dimensions:
            raise ModelFormatError(
                f"The tokenizer gave token id {int(flat.max())}, but there are only {self.num_dimensions} "
                "weights: the tokenizer and the weights do not belong together."
            )
        return tokenized

    def collate(self, input_ids: IdRows, token_type_ids: IdRows | None = None) -> Features:
        """Pad a batch of token id rows into ``input_ids`` and ``attention_mask`` tensors."""
        del token_type_ids
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        features: Features = pad_token_ids(input_ids, None, pad_id, self.tokenizer.padding_side == "left")
        return features

    # --- forward / save / load ----------------------------------------------------------------------------

    def forward(self, features: Features) -> Features:
        """Add ``sentence_embedding``: each present token's weight at its id, zeros elsewhere."""
        ids: Tensor = features["input_ids"]
        mask: Tensor = features["attention_mask"].to(self.weight.dtype)
        presence = torch.zeros(ids.shape[0], self.num_dimensions, dtype=self.weight.dtype, device=ids.device)
        # amax, not a plain scatter: a padding position must not erase a real occurrence of the same id
        presence.scatter_reduce_(1, ids, mask, reduce="amax")
        embedding = presence * self.weight
        previous = features.get("sentence_embedding")
        features["sentence_embedding"] = embedding if previous is None else embedding * previous
        return features

    def save(self, path: str | Path) -> None:
        """Write the tokenizer, ``model.safetensors`` (``weight``) and ``config.json`` into ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(str(path))
        save_file({"weight": self.weight.detach().contiguous().cpu()}, str(path / "model.safetensors"))
        write_json(path / self.config_file, self.get_config())

    @classmethod
    def load(cls, path: str | Path) -> SparseStaticEmbedding:
        """Build the module from a folder written by :meth:`save` (or by the reference).

        Raises:
            ModelFormatError: For unknown config keys, or weights that are missing or of the wrong size.
        """
        from transformers import AutoTokenizer

        path = Path(path)
        config_path = path / cls.config_file
        config = read_json(config_path) if config_path.is_file() else {}
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        json_path = config.pop("path", None)
        frozen = bool(cls.config_from_file(config).get("frozen", False))
        if isinstance(json_path, str) and json_path.endswith(".json"):
            local = path / json_path
            return cls.from_json(str(local if local.is_file() else json_path), tokenizer, frozen=frozen)
        module = cls(tokenizer, frozen=frozen)
        module.load_weights(path)
        return module

    @classmethod
    def from_json(
        cls,
        json_path: str,
        tokenizer: Any,
        frozen: bool = False,
        *,
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
    ) -> SparseStaticEmbedding:
        """Build the weights from a JSON object ``{token: weight}`` (such as the IDF table of a model).

        Tokens missing from the file weigh 0. A token the tokenizer does not know takes its unknown-token id.

        Args:
            json_path: A JSON file, a folder holding ``idf.json``, or a Hub id whose repository holds one.
            tokenizer: The tokenizer that maps the file's tokens to ids (and tokenizes texts later).
            frozen: Keep the weights fixed during training.
            token: Hugging Face token, when ``json_path`` is a private Hub repository.
            cache_folder: Hugging Face cache folder for Hub downloads.
            revision: Hub branch, tag or commit.
            local_files_only: Never download.

        Raises:
            ModelFormatError: When the file does not hold a JSON object of numbers.
        """
        path = Path(json_path)
        if not path.is_file():
            folder = path
            if not folder.is_dir():
                from sentencekit.hub import resolve_model_path

                folder = resolve_model_path(
                    json_path,
                    revision=revision,
                    token=token,
                    cache_folder=cache_folder,
                    local_files_only=local_files_only,
                )
            path = folder / IDF_FILE
            if not path.is_file():
                raise ModelFormatError(
                    f"{folder} holds no {IDF_FILE}; pass the JSON file of token weights itself."
                )
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
        if not isinstance(table, dict) or not all(isinstance(v, (int, float)) for v in table.values()):
            raise ModelFormatError(f"{path} must hold a JSON object mapping tokens to numbers.")
        weight = torch.zeros(len(tokenizer.get_vocab()), dtype=torch.float32)
        if table:
            ids = tokenizer.convert_tokens_to_ids(list(table))
            # in file order, so that where two tokens share an id (unknown tokens) the later one wins
            for token_id, value in zip(ids, table.values(), strict=True):
                weight[token_id] = float(value)
        return cls(tokenizer, weight=weight, frozen=frozen)

    def __repr__(self) -> str:
        return f"SparseStaticEmbedding(frozen={self.frozen}, dim={self.num_dimensions})"
