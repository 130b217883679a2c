"""Skip the work a classification head never reads: the last encoder layer, computed for one token only.

BERT-style sequence classifiers (BERT, RoBERTa, XLM-RoBERTa, ELECTRA, CamemBERT) score a pair from the
hidden state of its first token (``[CLS]`` / ``<s>``) after the last layer. Every other token's last-layer
output is computed and thrown away. In the last layer the query projection, the attention output and the
feed-forward block are needed for the first token alone, and the keys and values of the other tokens fold into
two small products per pair (see :class:`_FirstTokenLayer`). The result is the same arithmetic reordered, so
scores agree with the full model to float rounding (about 1e-6 on float32 logits), and a 6-layer model does
about a sixth less work.

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
from torch import Tensor, nn

__all__ = ["first_token_view", "views_agree"]

logger = logging.getLogger(__name__)

# Model types whose sequence-classification head reads the first token's last hidden state only.
_FIRST_TOKEN_HEADS = frozenset({"bert", "roberta", "xlm-roberta", "electra", "camembert"})
# Attention implementations whose layer masks are 4-D (or None) and so can be cut to the first query row.
_MASK_4D_ATTENTION = frozenset({"sdpa", "eager"})


class _FirstTokenLayer(nn.Module):
    """A BERT-style layer that returns the first token's output only, shape ``(batch, 1, hidden)``.

    With one query row, attention needs no key or value vector per token: for head ``i`` the score of token
    ``j`` is ``q_i . (K_i h_j + b_i) = (K_i^T q_i) . h_j + const`` and the output is
    ``V_i (sum_j p_ij h_j) + c_i``, since the weights ``p_ij`` sum to one. So the key and value projections
    are applied once per pair instead of once per token: the layer costs ``2 * heads * hidden``
    multiplications per token instead of ``2 * hidden^2``.
    """

    def __init__(self, layer: nn.Module, fold: bool = True) -> None:
        super().__init__()
        self.layer = layer
        self.fold = fold

    def forward(
        self, hidden_states: Tensor, attention_mask: Tensor | None = None, *_: Any, **__: Any
    ) -> Tensor:
        layer: Any = self.layer
        attention = layer.attention
        self_attention = attention.self
        batch, _length, width = hidden_states.shape
        heads = int(self_attention.num_attention_heads)
        head_dim = int(self_attention.attention_head_size)
        first = hidden_states[:, :1]
        query = self_attention.query(first).view(batch, heads, head_dim) * head_dim**-0.5
        if not self.fold:
            return self._unfolded(hidden_states, attention_mask, query)
        key, value = self_attention.key, self_attention.value
        # scores[b, i, j] = q_bi . (K_i h_bj + k_i), computed as (K_i^T q_bi) . h_bj + q_bi . k_i
        folded = torch.einsum("bnd,ndh->bnh", query, key.weight.view(heads, head_dim, width))
        scores = torch.matmul(folded, hidden_states.transpose(1, 2))
        if key.bias is not None:
            scores = scores + (query * key.bias.view(heads, head_dim)).sum(-1, keepdim=True)
        weights = torch.softmax(_masked(scores, attention_mask), dim=-1)
        # sum_j p_bij (V_i h_bj + v_i) = V_i (sum_j p_bij h_bj) + v_i
        mixed = torch.matmul(weights, hidden_states)
        context = torch.einsum("bnh,ndh->bnd", mixed, value.weight.view(heads, head_dim, width))
        if value.bias is not None:
            context = context + value.bias.view(heads, head_dim)
        out: Tensor = layer.feed_forward_chunk(attention.output(context.reshape(batch, 1, -1), first))
        return out

    def _unfolded(self, hidden_states: Tensor, attention_mask: Tensor | None, query: Tensor) -> Tensor:
        """The same first-token output with keys and values projected per token, as the full layer does.

        The products then run in the full layer's order, so the result stays closer to it than the folded
        form's (which reorders the sums); it saves the query, attention output and feed-forward work.
        """
        layer: Any = self.layer
        attention = layer.attention
        self_attention = attention.self
        batch, length, _width = hidden_states.shape
        heads, head_dim = query.shape[1], query.shape[2]
        key = self_attention.key(hidden_states).view(batch, length, heads, head_dim).transpose(1, 2)
        value = self_attention.value(hidden_states).view(batch, length, heads, head_dim).transpose(1, 2)
        scores = torch.matmul(query.unsqueeze(2), key.transpose(2, 3)).squeeze(2)  # (batch, heads, length)
        weights = torch.softmax(_masked(scores, attention_mask), dim=-1)
        context = torch.matmul(weights.unsqueeze(2), value).reshape(batch, 1, heads * head_dim)
        out: Tensor = layer.feed_forward_chunk(attention.output(context, hidden_states[:, :1]))
        return out


def _masked(scores: Tensor, attention_mask: Tensor | None) -> Tensor:
    """First-row attention scores ``(batch, heads, length)`` with the layer's mask (4-D or 2-D) applied."""
    if attention_mask is None:
        return scores
    mask = attention_mask[:, :, 0, :] if attention_mask.dim() == 4 else attention_mask[:, None, :]
    if mask.dtype == torch.bool:
        return scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return scores + mask


def _replaced(root: nn.Module, path: list[str], new: nn.Module) -> nn.Module:
    """A shallow copy of ``root`` in which the submodule at ``path`` is ``new``; nothing else is copied."""
    clone = copy.copy(root)
    clone._modules = dict(root._modules)
    child = root._modules[path[0]]
    assert child is not None
    clone._modules[path[0]] = new if len(path) == 1 else _replaced(child, path[1:], new)
    return clone


def first_token_view(model: nn.Module, fold: bool = True) -> nn.Module | None:
    """A view of a sequence classifier whose last layer computes the first token only, or ``None``.

    ``fold``: fold the keys and values into two small products per pair (the least work); else project
    them per token, as the full layer does (closer to its rounding; what the ONNX export uses).
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
    return _replaced(model, [prefix, "encoder", "layer", str(len(layers) - 1)], _FirstTokenLayer(last, fold))


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
