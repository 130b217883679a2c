"""SPLADE inference without the ``(texts, tokens, vocabulary)`` logits tensor.

``MLMTransformer`` followed by ``SpladePooling("max")`` computes a vocabulary-wide logit row for every token,
padding included, then keeps the largest per text. At inference :class:`FusedSplade` runs the same two steps
with less work: the vocabulary head sees only the texts' real tokens, a few hundred at a time, and each text
keeps the elementwise maximum of its rows as they are made. For all-MiniLM-L6-v2's size the head costs more
than the encoder (23 MFLOP per token against 21), and the full logits of 32 abstracts are 1 GB of float32.
The head's last layer adds one bias per vocabulary entry, the same at every token, so it is added once per
text after the maximum instead of once per token (on a 62 MB block per chunk).

The result equals the two modules' to float rounding (the same products on fewer rows; the bias added after
the maximum). Architectures whose head is not listed in :data:`HEAD_TRANSFORMS` keep the two-module path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.encoding.batching import IdRows
from sentencekit.encoding.tokens import TokenizedTexts
from sentencekit.modules.base import Features
from sentencekit.modules.input_module import InputModule
from sentencekit.modules.mlm_transformer import MLMTransformer
from sentencekit.modules.splade_pooling import SpladePooling

__all__ = ["HEAD_TRANSFORMS", "FusedSplade", "fused_modules"]

# Rows of vocabulary logits made at once: 512 x 30,522 float32 is 62 MB.
CHUNK_TOKENS = 512


def _roberta_style(model: Any, hidden: Tensor) -> Tensor:
    from transformers.activations import gelu

    head = model.lm_head
    return head.layer_norm(gelu(head.dense(hidden)))


# model_type -> the masked-language head up to its vocabulary projection (``get_output_embeddings()``), as a
# function of (model, hidden states of some tokens); transformers' heads of these models, step by step
HEAD_TRANSFORMS: dict[str, Callable[[Any, Tensor], Tensor]] = {
    "bert": lambda m, h: m.cls.predictions.transform(h),
    "distilbert": lambda m, h: m.vocab_layer_norm(m.activation(m.vocab_transform(h))),
    "roberta": _roberta_style,
    "xlm-roberta": _roberta_style,
    "camembert": _roberta_style,
    "mpnet": _roberta_style,
}


def fused_modules(modules: list[nn.Module]) -> list[nn.Module]:
    """``modules`` with ``[MLMTransformer, SpladePooling("max")]`` replaced by one :class:`FusedSplade`."""
    if (
        len(modules) == 2
        and isinstance(modules[0], MLMTransformer)
        and isinstance(modules[1], SpladePooling)
        and modules[1].pooling_strategy == "max"
        and modules[0].config.model_type in HEAD_TRANSFORMS
    ):
        return [FusedSplade(modules[0], modules[1])]
    return modules


class FusedSplade(InputModule):
    """An MLMTransformer and a max SpladePooling as one inference step; reads text as the transformer does."""

    def __init__(self, transformer: MLMTransformer, pooling: SpladePooling) -> None:
        super().__init__()
        self.transformer = transformer
        self.pooling = pooling
        self.head_transform = HEAD_TRANSFORMS[transformer.config.model_type]
        self.tokenizer = transformer.tokenizer

    @property
    def max_seq_length(self) -> int:
        """The transformer's."""
        return self.transformer.max_seq_length

    def tokenize_unpadded(self, texts: list[str]) -> TokenizedTexts:
        """The transformer's tokenization."""
        return self.transformer.tokenize_unpadded(texts)

    def collate(self, input_ids: IdRows, token_type_ids: IdRows | None = None) -> Features:
        """The transformer's batches."""
        return self.transformer.collate(input_ids, token_type_ids)

    @property
    def default_batch_tokens(self) -> int | None:
        """The transformer's token budget."""
        return self.transformer.default_batch_tokens

    @property
    def parallel_batches(self) -> int:
        """The transformer's."""
        return self.transformer.parallel_batches

    def forward(self, features: Features) -> Features:
        """Add ``sentence_embedding``: each text's largest logit per vocabulary entry, weighed."""
        model = self.transformer.auto_model
        inputs = {name: features[name] for name in self.transformer.forward_inputs if name in features}
        hidden = model.base_model(**inputs, return_dict=True).last_hidden_state
        mask = features["attention_mask"].bool()
        tokens = hidden[mask]  # every text's real tokens, text after text
        lengths = mask.sum(dim=1).tolist()
        projection = model.get_output_embeddings()  # the vocabulary projection: weight (vocab, width), bias
        vocab = int(projection.weight.shape[0])
        pooled = hidden.new_empty((len(lengths), vocab), dtype=torch.float32)
        text, start = 0, 0
        while text < len(lengths):
            # a group of whole texts within the chunk size (a longer text alone)
            end_text, stop = text + 1, start + lengths[text]
            while end_text < len(lengths) and stop + lengths[end_text] <= start + CHUNK_TOKENS:
                stop += lengths[end_text]
                end_text += 1
            transformed = self.head_transform(model, tokens[start:stop])
            logits = torch.mm(transformed, projection.weight.t()).float()  # without the bias: added below
            offset = 0
            for row in range(text, end_text):
                if lengths[row]:
                    pooled[row] = logits[offset : offset + lengths[row]].amax(dim=0)
                else:  # no tokens at all: no weight anywhere, whatever the bias
                    pooled[row] = float("-inf")
                offset += lengths[row]
            text, start = end_text, stop
        if projection.bias is not None:
            pooled += projection.bias.float()
        if self.pooling.embedding_dimension is None:
            self.pooling.embedding_dimension = vocab
        features["sentence_embedding"] = self.pooling.weigh(pooled)
        return features
