"""Skip the work a classification head never reads: the last encoder layer, computed for one token only.

BERT-style sequence classifiers (BERT, RoBERTa, XLM-RoBERTa, ELECTRA, CamemBERT) score a pair from the
hidden state of its first token (``[CLS]`` / ``<s>``) after the last layer. Every other token's last-layer
output is computed and thrown away. In the last layer only the keys and values need every token; the query
projection, the attention output, and the feed-forward block are needed for the first token alone. Computing
just that is the same arithmetic on fewer rows, so scores agree with the full model to float rounding
(about 1e-7 on float32), and a 6-layer model does about a seventh less work.

:func:`first_token_view` returns a view of the model whose last layer does this. The view shares every
parameter with the model (nothing is copied), so it follows the model across ``.to()`` and weight updates.
The caller checks the view against the full model once on a tiny input (:func:`views_agree`) before trusting
it, so an architecture whose layers differ from what this module expects falls back to the full model.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["first_token_view", "views_agree"]

logger = logging.getLogger(__name__)

# Model types whose sequence-classification head reads the first token's last hidden state only.
_FIRST_TOKEN_HEADS = frozenset({"bert", "roberta", "xlm-roberta", "electra", "camembert"})
# Attention implementations whose layer masks are 4-D (or None) and so can be cut to the first query row.
_MASK_4D_ATTENTION = frozenset({"sdpa", "eager"})


class _FirstTokenLayer(nn.Module):
    """A BERT-style layer that returns the first token's output only, shape ``(batch, 1, hidden)``."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(
        self, hidden_states: Tensor, attention_mask: Tensor | None = None, *_: Any, **__: Any
    ) -> Tensor:
        attention: Any = self.layer.attention
        self_attention = attention.self
        batch, length, _width = hidden_states.shape
        heads = int(self_attention.num_attention_heads)
        head_dim = int(self_attention.attention_head_size)
        first = hidden_states[:, :1]

        def split(x: Tensor, rows: int) -> Tensor:
            return x.view(batch, rows, heads, head_dim).transpose(1, 2)

        query = split(self_attention.query(first), 1)
        key = split(self_attention.key(hidden_states), length)
        value = split(self_attention.value(hidden_states), length)
        mask = attention_mask[..., :1, :] if attention_mask is not None else None
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask)
        context = context.transpose(1, 2).reshape(batch, 1, heads * head_dim)
        layer: Any = self.layer
        out: Tensor = layer.feed_forward_chunk(attention.output(context, first))
        return out


def _replaced(root: nn.Module, path: list[str], new: nn.Module) -> nn.Module:
    """A shallow copy of ``root`` in which the submodule at ``path`` is ``new``; nothing else is copied."""
    clone = copy.copy(root)
    clone._modules = dict(root._modules)
    child = root._modules[path[0]]
    assert child is not None
    clone._modules[path[0]] = new if len(path) == 1 else _replaced(child, path[1:], new)
    return clone


def first_token_view(model: nn.Module) -> nn.Module | None:
    """A view of a sequence classifier whose last layer computes the first token only, or ``None``.

    ``None`` means the model is not one this shortcut knows to be exact: another architecture, a decoder,
    relative position embeddings, or an attention implementation with 2-D masks (flash attention).
    """
    config: Any = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) not in _FIRST_TOKEN_HEADS:
        return None
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return None
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        return None
    if getattr(config, "_attn_implementation", None) not in _MASK_4D_ATTENTION:
        return None
    prefix = str(getattr(model, "base_model_prefix", ""))
    base = getattr(model, prefix, None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        return None
    last = layers[-1]
    parts = ("attention", "intermediate", "output", "feed_forward_chunk")
    if not all(hasattr(last, part) for part in parts) or not hasattr(last.attention, "self"):
        return None
    return _replaced(model, [prefix, "encoder", "layer", str(len(layers) - 1)], _FirstTokenLayer(last))


def views_agree(model: nn.Module, view: nn.Module, device: torch.device) -> bool:
    """Whether ``view`` gives ``model``'s logits on a small padded batch (a check of structure, not of luck).

    The batch has two rows of different lengths so that the padding mask is exercised.
    """
    config: Any = model.config
    vocab = int(getattr(config, "vocab_size", 100))
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, max(vocab, 6), (2, 7), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    features = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
    try:
        with torch.inference_mode():
            expected = model(**features).logits.float()
            got = view(**features).logits.float()
    except Exception as exc:  # any failure means: do not use the view
        logger.debug("The first-token shortcut failed on a probe (%s); using the full model.", exc)
        return False
    agree = bool(torch.allclose(expected, got, rtol=1e-3, atol=1e-4))
    if not agree:
        logger.debug("The first-token shortcut disagrees with the full model; using the full model.")
    return agree
