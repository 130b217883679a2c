"""MLMTransformer: a masked-language-model encoder giving vocabulary logits per token (SPLADE's base)."""

from __future__ import annotations

from typing import ClassVar

from sentencekit.modules.base import Features
from sentencekit.modules.transformer import _HALF_DTYPES, Transformer

__all__ = ["MLMTransformer"]


class MLMTransformer(Transformer):
    """Wraps ``AutoModelForMaskedLM``: texts -> token ids -> one logit per vocabulary entry per token.

    The logits go out as ``token_embeddings`` (shape ``(batch, tokens, vocab_size)``), so that
    :class:`~sentencekit.modules.SpladePooling` turns them into one sparse, vocabulary-sized vector per text.
    Arguments are :class:`~sentencekit.modules.Transformer`'s; the folder must hold a masked-language model
    (``BertForMaskedLM``, ``DistilBertForMaskedLM``, ``RobertaForMaskedLM``, ...).

    The reference 6.x writes the same module as ``Transformer`` with ``"transformer_task": "fill-mask"`` in
    ``sentence_bert_config.json``; such folders load as this class. It is saved under the name every reference
    version since 5.0 reads.

    Example:
        >>> from sentencekit.sparse_encoder import SparseEncoder
        >>> from sentencekit.sparse_encoder.models import MLMTransformer, SpladePooling
        >>> encoder = MLMTransformer("naver/splade-v3")  # doctest: +SKIP
        >>> model = SparseEncoder(modules=[encoder, SpladePooling("max")])  # doctest: +SKIP
    """

    reference_type: ClassVar[str] = "sentence_transformers.sparse_encoder.models.MLMTransformer"
    transformer_task: ClassVar[str] = "fill-mask"
    auto_class: ClassVar[str] = "AutoModelForMaskedLM"

    def get_word_embedding_dimension(self) -> int:
        """Width of the outputs: the vocabulary size."""
        return int(self.config.vocab_size)

    def forward(self, features: Features) -> Features:
        """Run the encoder and its vocabulary head; adds the logits as ``token_embeddings``."""
        inputs = {name: features[name] for name in self.forward_inputs if name in features}
        out = self.auto_model(**inputs, return_dict=True)
        logits = out.logits
        features["token_embeddings"] = logits.float() if logits.dtype in _HALF_DTYPES else logits
        return features
