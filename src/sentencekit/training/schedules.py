"""Learning-rate schedules: a warm-up, then constant, linear decay or cosine decay.

=================================  ===========================  ==========================================
name (``fit``)                     also accepted (trainer)      factor of the peak learning rate at step s
=================================  ===========================  ==========================================
``constantlr``                     ``constant``                 1
``warmupconstant``                 ``constant_with_warmup``     s / w during warm-up, then 1
``warmuplinear``                   ``linear``                   s / w, then falls linearly to 0 at the end
``warmupcosine``                   ``cosine``                   s / w, then half a cosine wave down to 0
``warmupcosinewithhardrestarts``   ``cosine_with_restarts``     s / w, then one cosine decay (one cycle)
=================================  ===========================  ==========================================

Names are case-insensitive (``"WarmupLinear"`` works, as in the reference's ``fit``).
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["SCHEDULES", "LearningRateFactor", "build_scheduler", "schedule_name"]

SCHEDULES: tuple[str, ...] = (
    "constantlr",
    "warmupconstant",
    "warmuplinear",
    "warmupcosine",
    "warmupcosinewithhardrestarts",
)
# The Hugging Face Trainer's names for the same curves.
_ALIASES = {
    "constant": "constantlr",
    "constant_with_warmup": "warmupconstant",
    "linear": "warmuplinear",
    "cosine": "warmupcosine",
    "cosine_with_restarts": "warmupcosinewithhardrestarts",
}


def schedule_name(name: str) -> str:
    """Return the canonical schedule name for ``name`` (any case, ``fit`` or trainer spelling).

    Raises:
        ValueError: For an unknown name, listing the valid ones.
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in SCHEDULES:
        valid = ", ".join([*SCHEDULES, *_ALIASES])
        raise ValueError(f"Unknown learning-rate schedule {name!r}; valid names: {valid}.")
    return key


class LearningRateFactor:
    """The factor applied to the peak learning rate at each optimizer step (a picklable callable).

    Args:
        name: A canonical schedule name (see :func:`schedule_name`).
        warmup_steps: Steps over which the factor rises linearly from 0 to 1.
        total_steps: Optimizer steps of the whole run; the decaying schedules reach 0 there.
        cycles: Cosine cycles after the warm-up: 0.5 (half a wave) for ``warmupcosine``, whole hard
            restarts for ``warmupcosinewithhardrestarts``.
    """

    def __init__(self, name: str, warmup_steps: int, total_steps: int, cycles: float | None = None) -> None:
        self.name = schedule_name(name)
        self.warmup_steps = max(0, int(warmup_steps))
        self.total_steps = max(1, int(total_steps))
        if cycles is None:
            cycles = 1.0 if self.name == "warmupcosinewithhardrestarts" else 0.5
        self.cycles = float(cycles)

    def __call__(self, step: int) -> float:
        """The factor at optimizer step ``step`` (0-based)."""
        if self.name == "constantlr":
            return 1.0
        if step < self.warmup_steps:
            return step / max(1, self.warmup_steps)
        if self.name == "warmupconstant":
            return 1.0
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        if self.name == "warmuplinear":
            return max(0.0, 1.0 - progress)
        if self.name == "warmupcosine":
            return max(0.0, 0.5 * (1.0 + math.cos(2.0 * math.pi * self.cycles * progress)))
        if progress >= 1.0:  # hard restarts: each cycle decays from 1 to 0, then jumps back to 1
            return 0.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((self.cycles * progress) % 1.0))))


def build_scheduler(optimizer: Optimizer, name: str, warmup_steps: int, total_steps: int) -> LambdaLR:
    """Return a :class:`~torch.optim.lr_scheduler.LambdaLR` following schedule ``name``.

    Args:
        optimizer: The optimizer whose learning rates (the peaks) are scaled.
        name: Schedule name (see the module table); case-insensitive.
        warmup_steps: Optimizer steps of linear warm-up.
        total_steps: Optimizer steps of the whole run.
    """
    return LambdaLR(optimizer, LearningRateFactor(name, warmup_steps, total_steps))
