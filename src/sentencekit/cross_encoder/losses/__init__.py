"""Training losses for :class:`~sentencekit.cross_encoder.CrossEncoder`, with the reference's names.

A cross-encoder loss is called as ``loss(inputs, labels)``: ``inputs`` is the batch's text columns (lists
of strings, e.g. ``[queries, documents]``); the loss forms the pairs, tokenizes them with the model's
tokenizer (truncating at ``max_length``) and runs the model.

==================================  =========================================  ===============================
data (text columns)                 labels                                     losses
==================================  =========================================  ===============================
(query, document)                   0/1 or a score in [0, 1]                   BinaryCrossEntropyLoss
(sentence_A, sentence_B)            class index                                CrossEntropyLoss
(query, document)                   teacher score                              MSELoss
==================================  =========================================  ===============================
"""

from __future__ import annotations

from sentencekit.cross_encoder.losses.pointwise import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss

__all__ = ["BinaryCrossEntropyLoss", "CrossEntropyLoss", "MSELoss"]
