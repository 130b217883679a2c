"""Optimizer construction for the training loop: parameter groups and the optimizer's keyword arguments.

One optimizer covers the model and every loss's own parameters. :func:`parameter_groups` splits them into
groups with and without weight decay (biases and normalization weights get none), plus groups at their own
learning rates for ``learning_rate_mapping`` patterns; :func:`optimizer_options` adds ``fused=True`` for
Adam/AdamW where the fused kernel applies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["optimizer_options", "parameter_groups"]

# Parameters whose names contain one of these get no weight decay (biases and normalization weights).
_NO_DECAY = ("bias", "LayerNorm", "layernorm", "layer_norm")


def parameter_groups(
    model: nn.Module,
    losses: Sequence[nn.Module],
    weight_decay: float,
    learning_rates: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Trainable parameters of the model and the losses (each once), with and without weight decay.

    ``learning_rates`` (``{regex: lr}``) gives the parameters whose name matches a pattern (``re.search``;
    the first matching pattern wins) their own groups at that rate. Names are the model's parameter names
    after ``model.`` (``model.0.auto_model.embeddings...``, ``model.0.sub_modules.query.0.weight``), as the
    reference's trainer sees them through the loss; a loss's own parameters are ``loss_0...``.

    Raises:
        ValueError: For a pattern that matches no trainable parameter.
    """
    holder = nn.ModuleDict({"model": model, **{f"loss_{i}": loss for i, loss in enumerate(losses)}})
    patterns = [(re.compile(pattern), float(lr)) for pattern, lr in (learning_rates or {}).items()]
    groups: dict[tuple[float | None, bool], list[nn.Parameter]] = {}
    for name, parameter in holder.named_parameters():
        if not parameter.requires_grad:
            continue
        lr = next((rate for pattern, rate in patterns if pattern.search(name)), None)
        decays = not any(part in name for part in _NO_DECAY)
        groups.setdefault((lr, decays), []).append(parameter)
    unused = [p.pattern for p, _ in patterns if not any(p.search(n) for n, _ in holder.named_parameters())]
    if unused:
        raise ValueError(
            f"learning_rate_mapping patterns {unused} match no parameter; names look like "
            f"{[n for n, _ in holder.named_parameters()][:3]}."
        )
    out: list[dict[str, Any]] = []
    for lr in [None, *dict.fromkeys(rate for _, rate in patterns)]:
        for decays in (True, False):
            group: dict[str, Any] = {
                "params": groups.get((lr, decays), []),
                "weight_decay": weight_decay if decays else 0.0,
            }
            if lr is not None:
                group["lr"] = lr
            if lr is None or group["params"]:  # the two default groups always, the others when used
                out.append(group)
    return out


# Optimizers whose fused kernel (one pass over all parameters, on CPU and CUDA) is used by default.
_FUSABLE = (torch.optim.Adam, torch.optim.AdamW)


def optimizer_options(
    optimizer_class: type[torch.optim.Optimizer],
    options: Any,
    groups: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The optimizer's keyword arguments: ``options``, plus ``fused=True`` for Adam/AdamW where it applies.

    The fused kernel does the same update as torch's default per-tensor loop (to float rounding) in one pass
    over the parameters, several times faster on CPU (docs/training.md gives the effect on a whole run). It is
    added only when ``options`` choose neither ``fused`` nor ``foreach`` and every parameter is a floating
    point tensor on the CPU or a CUDA device.
    """
    chosen = dict(options)
    if optimizer_class not in _FUSABLE or "fused" in chosen or "foreach" in chosen:
        return chosen
    parameters = [p for group in groups for p in group["params"]]
    devices = {p.device for p in parameters}
    if (
        len(devices) == 1
        and next(iter(devices)).type in ("cpu", "cuda")
        and all(p.is_floating_point() for p in parameters)
    ):
        chosen["fused"] = True
    return chosen
