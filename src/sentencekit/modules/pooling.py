"""Pooling: token embeddings -> one sentence embedding (cls, mean, max, ... or several concatenated)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from sentencekit.errors import ModelFormatError
from sentencekit.modules.base import Features, Module
from sentencekit.types import PoolingMode

__all__ = ["Pooling"]

# Canonical order of the modes, and the legacy boolean config key of each: several modes are concatenated in
# this order when a legacy config switches more than one on.
_LEGACY_KEYS: dict[str, str] = {
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "mean": "pooling_mode_mean_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


class Pooling(Module):
    """Turns ``token_embeddings`` into ``sentence_embedding``.

    Args:
        embedding_dimension: Width of the incoming token embeddings.
        pooling_mode: One mode or a sequence of modes whose results are concatenated, from ``"cls"``,
            ``"mean"``, ``"max"``, ``"mean_sqrt_len_tokens"``, ``"weightedmean"`` (weights grow with position)
            and ``"lasttoken"`` (the last non-padding token, for decoder models).
        include_prompt: When ``False``, the tokens of a prompt given to ``encode`` are left out of the
            pooling.

    Example:
        >>> pooling = Pooling(384, pooling_mode=("cls", "mean"))
        >>> pooling.get_sentence_embedding_dimension()
        768
    """

    config_keys: ClassVar[tuple[str, ...]] = ("embedding_dimension", "pooling_mode", "include_prompt")
    reference_type: ClassVar[str] = "sentence_transformers.models.Pooling"

    def __init__(
        self,
        embedding_dimension: int,
        pooling_mode: str | PoolingMode | tuple[str, ...] | list[str] = "mean",
        include_prompt: bool = True,
    ) -> None:
        super().__init__()
        modes = [pooling_mode] if isinstance(pooling_mode, str) else list(pooling_mode)
        if not modes:
            raise ValueError("pooling_mode needs at least one mode, e.g. 'mean'.")
        self.modes: tuple[str, ...] = tuple(str(PoolingMode.parse(m)) for m in modes)
        self.embedding_dimension = int(embedding_dimension)
        self.include_prompt = include_prompt

    @property
    def pooling_mode(self) -> str | tuple[str, ...]:
        """The configured mode, or the tuple of modes when several are concatenated."""
        return self.modes[0] if len(self.modes) == 1 else self.modes

    def get_sentence_embedding_dimension(self) -> int:
        """Width of the output: the token width times the number of modes."""
        return self.embedding_dimension * len(self.modes)

    def get_config(self) -> dict[str, Any]:
        """Legacy boolean layout when the modes are in canonical order (every reference version reads it)."""
        canonical = tuple(m for m in _LEGACY_KEYS if m in self.modes)
        if canonical != self.modes:  # an order only the v6 layout can express
            return {
                "embedding_dimension": self.embedding_dimension,
                "pooling_mode": list(self.modes),
                "include_prompt": self.include_prompt,
            }
        config: dict[str, Any] = {"word_embedding_dimension": self.embedding_dimension}
        config.update({key: mode in self.modes for mode, key in _LEGACY_KEYS.items()})
        config["include_prompt"] = self.include_prompt
        return config

    @classmethod
    def config_from_file(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Read both the legacy boolean keys and the v6 ``pooling_mode`` / ``embedding_dimension`` keys."""
        config = dict(config)
        dim = config.pop("embedding_dimension", config.pop("word_embedding_dimension", None))
        if dim is None:
            raise ModelFormatError(
                "Pooling config needs 'embedding_dimension' (or 'word_embedding_dimension')."
            )
        flags = {mode: bool(config.pop(key, False)) for mode, key in _LEGACY_KEYS.items()}
        mode = config.pop("pooling_mode", None)
        if mode is None:
            mode = [m for m, on in flags.items() if on] or ["mean"]
        include_prompt = bool(config.pop("include_prompt", True))
        if config:
            raise ModelFormatError(f"Pooling config has unknown keys {sorted(config)}.")
        return {"embedding_dimension": dim, "pooling_mode": mode, "include_prompt": include_prompt}

    def forward(self, features: Features) -> Features:
        """Pool ``token_embeddings`` under ``attention_mask`` into ``sentence_embedding``."""
        tokens: Tensor = features["token_embeddings"]
        full_mask: Tensor = features["attention_mask"]
        mask = full_mask
        prompt_length = features.get("prompt_length")
        if prompt_length and not self.include_prompt:
            mask = _mask_prompt(full_mask, int(prompt_length))
        # Sums are accumulated in fp32 even when the encoder runs in half precision.
        acc_dtype = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
        pooled = [_POOLERS[mode](tokens, mask, full_mask, acc_dtype) for mode in self.modes]
        features["sentence_embedding"] = pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=-1)
        return features

    def __repr__(self) -> str:
        config = {
            "embedding_dimension": self.embedding_dimension,
            "pooling_mode": self.pooling_mode,
            "include_prompt": self.include_prompt,
        }
        return f"Pooling({config})"


def _mask_prompt(mask: Tensor, prompt_length: int) -> Tensor:
    """Zero the prompt's positions: the first tokens after any left padding."""
    start = mask.to(torch.int32).argmax(dim=1, keepdim=True)  # first real token of each row
    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    return mask.masked_fill(positions < start + prompt_length, 0)


def _cls(tokens: Tensor, mask: Tensor, full_mask: Tensor, acc: torch.dtype) -> Tensor:
    first = mask.to(torch.int32).argmax(dim=1)
    return tokens[torch.arange(tokens.shape[0], device=tokens.device), first]


def _max(tokens: Tensor, mask: Tensor, full_mask: Tensor, acc: torch.dtype) -> Tensor:
    return tokens.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).max(dim=1).values


def _masked_sum_count(tokens: Tensor, mask: Tensor, acc: torch.dtype) -> tuple[Tensor, Tensor]:
    m = mask.unsqueeze(-1).to(tokens.dtype)
    total = (tokens * m).sum(dim=1, dtype=acc)
    count = torch.clamp(m.sum(dim=1, dtype=acc), min=1e-9)
    return total, count


def _mean(tokens: Tensor, mask: Tensor, full_mask: Tensor, acc: torch.dtype) -> Tensor:
    total, count = _masked_sum_count(tokens, mask, acc)
    return (total / count).to(tokens.dtype)


def _mean_sqrt_len(tokens: Tensor, mask: Tensor, full_mask: Tensor, acc: torch.dtype) -> Tensor:
    total, count = _masked_sum_count(tokens, mask, acc)
    return (total / torch.sqrt(count)).to(tokens.dtype)


def _weighted_mean(tokens: Tensor, mask: Tensor, full_mask: Tensor, acc: torch.dtype) -> Tensor:
    # Position weights 1, 2, 3, ... counted from the first real token, so left padding does not shift them.
    offset = full_mask.to(torch.int32).argmax(dim=1).view(-1, 1, 1)
    positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=acc).view(1, -1, 1)
    weights = mask.unsqueeze(-1).to(acc) * (positions - offset)
    total = (tokens * weights).sum(dim=1)
    return (total / torch.clamp(weights.sum(dim=1), min=1e-9)).to(tokens.dtype)


def _last_token(tokens: Tensor, mask: Tensor, full_mask: Tensor, acc: torch.dtype) -> Tensor:
    seq_len = mask.shape[1]
    found, from_end = mask.flip(1).max(dim=1)
    last = torch.where(found == 0, seq_len - 1, seq_len - 1 - from_end)
    rows = torch.arange(tokens.shape[0], device=tokens.device)
    return tokens[rows, last] * found.unsqueeze(-1).to(tokens.dtype)


_POOLERS = {
    "cls": _cls,
    "max": _max,
    "mean": _mean,
    "mean_sqrt_len_tokens": _mean_sqrt_len,
    "weightedmean": _weighted_mean,
    "lasttoken": _last_token,
}
