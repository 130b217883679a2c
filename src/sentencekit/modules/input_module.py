"""The base of a model's first module: the one that turns texts into features.

The encode loop (:mod:`sentencekit.encoding.loop`) talks to the first module through this interface only:
tokenize every text once without padding, sort by length, collate each batch, run the modules. Two modules
implement it: :class:`~sentencekit.modules.Transformer` (a Hugging Face encoder) and
:class:`~sentencekit.modules.StaticEmbedding` (an averaged token-embedding table).
"""

from __future__ import annotations

from typing import Any

from sentencekit.encoding.batching import IdRows
from sentencekit.encoding.tokens import TokenizedTexts
from sentencekit.modules.base import Features, Module

__all__ = ["DEFAULT_BATCH_SIZE", "InputModule"]

# Texts per batch when encode gets no batch size: the reference's default.
DEFAULT_BATCH_SIZE = 32


class InputModule(Module):
    """A module that reads text: tokenizes it and collates token ids into a batch of features.

    Subclasses implement :meth:`tokenize_unpadded`, :meth:`collate` and :attr:`max_seq_length`; the batch
    plan properties default to the reference's plan (32 texts per batch, one batch at a time).
    """

    tokenizer: Any

    @property
    def max_seq_length(self) -> int | float:  # pragma: no cover - abstract
        """Longest input in tokens; longer texts are truncated."""
        raise NotImplementedError

    def tokenize_unpadded(self, texts: list[str]) -> TokenizedTexts:  # pragma: no cover - abstract
        """Token ids of ``texts``, one row each, without padding."""
        raise NotImplementedError

    def collate(
        self, input_ids: IdRows, token_type_ids: IdRows | None = None
    ) -> Features:  # pragma: no cover - abstract
        """One batch of features (tensors) from the id rows of its texts."""
        raise NotImplementedError

    def tokenize(self, texts: list[str]) -> Features:
        """Tokenize ``texts`` into one batch of features (the reference's ``tokenize``)."""
        tokenized = self.tokenize_unpadded(list(texts))
        return self.collate(tokenized.input_ids, tokenized.token_type_ids)

    def prompt_length(self, prompt: str) -> int:
        """Leading tokens a prepended prompt occupies, for pooling that leaves the prompt out (0: none)."""
        del prompt
        return 0

    @property
    def parallel_batches(self) -> int:
        """Batches the encode loop may run at once (each on its own thread)."""
        return 1

    @property
    def default_batch_size(self) -> int:
        """Texts per batch when ``encode`` gets ``batch_size=None``."""
        return DEFAULT_BATCH_SIZE

    @property
    def default_batch_tokens(self) -> int | None:
        """Token budget per batch when ``encode`` gets no ``max_batch_tokens`` (``None``: count only)."""
        return None
