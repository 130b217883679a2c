"""Batch streams: each objective's supply of batches, and the order in which objectives take turns.

A stream hands out batches pass after pass (a pass is one sweep over its data) and can report and restore its
position, so that training resumed from a checkpoint sees exactly the batches it would have seen:

* :class:`PlanStream` (the trainers): each pass is planned from a seed derived from ``(seed, objective,
  epoch, pass)``, so a position is just three numbers;
* :class:`LoaderStream` (``fit``): iterates a user's ``DataLoader``; before each pass it records the random
  generator states the loader draws its order from, and on restore it replays them and skips ahead.

:func:`epoch_order` says which objective supplies each batch of an epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["BatchStream", "LoaderStream", "PlanStream", "epoch_order", "seeded_generator"]

logger = logging.getLogger(__name__)


def seeded_generator(*keys: int) -> torch.Generator:
    """A ``torch.Generator`` seeded from several integers, well mixed (``numpy.random.SeedSequence``)."""
    seed = int(np.random.SeedSequence([abs(int(k)) for k in keys]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed % (2**63))


def epoch_order(lengths: list[int], mode: str, rounds: int | None, seed: int, epoch: int) -> list[int]:
    """The objective that supplies each batch of one epoch.

    Args:
        lengths: Batches per pass of each objective.
        mode: ``"round_robin"``: objectives take turns, one batch each, for ``rounds`` rounds (default: until
            the smallest has given all its batches). ``"proportional"``: every batch of every objective,
            interleaved at random, so larger datasets are sampled more often.
        rounds: Rounds per epoch for ``"round_robin"`` (``fit``'s ``steps_per_epoch``).
        seed: Seed of the ``"proportional"`` interleaving (combined with ``epoch``).
        epoch: The epoch.
    """
    count = len(lengths)
    if mode == "round_robin" or count == 1:
        turns = rounds if rounds is not None else min(lengths)
        return [objective for _ in range(turns) for objective in range(count)]
    order = [objective for objective, length in enumerate(lengths) for _ in range(length)]
    permutation = torch.randperm(len(order), generator=seeded_generator(seed, epoch, 1)).tolist()
    return [order[i] for i in permutation]


class BatchStream:
    """Base class: batches pass after pass, with a position that can be saved and restored."""

    def __init__(self) -> None:
        self.epoch = 0
        self.pass_index = 0
        self.offset = 0  # batches already handed out in the current pass

    def batches_per_pass(self) -> int:
        """Batches in one pass of the current epoch."""
        raise NotImplementedError

    def start_epoch(self, epoch: int) -> None:
        """Begin ``epoch`` with a fresh pass."""
        self.epoch, self.pass_index, self.offset = epoch, 0, 0

    def next_batch(self) -> Any:
        """The next batch, starting a new pass when the current one is used up."""
        raise NotImplementedError

    def position(self) -> dict[str, Any]:
        """Where the stream stands, to be stored in a checkpoint."""
        return {"epoch": self.epoch, "pass": self.pass_index, "offset": self.offset}

    def restore(self, position: dict[str, Any]) -> None:
        """Continue from a position :meth:`position` returned (possibly in another process)."""
        self.epoch, self.pass_index, self.offset = position["epoch"], position["pass"], position["offset"]


class PlanStream(BatchStream):
    """Batches planned from a seed: ``plan(epoch, pass)`` lists row indices, ``fetch(rows)`` builds a batch.

    Args:
        plan: Returns the batches (lists of row indices) of one pass; must depend on its arguments only.
        fetch: Collates the rows of one batch.
    """

    def __init__(
        self, plan: Callable[[int, int], list[list[int]]], fetch: Callable[[list[int]], Any]
    ) -> None:
        super().__init__()
        self._plan_fn = plan
        self._fetch = fetch
        self._plan: list[list[int]] | None = None

    def _current_plan(self) -> list[list[int]]:
        if self._plan is None:
            self._plan = self._plan_fn(self.epoch, self.pass_index)
            if not self._plan:
                raise ValueError(
                    "A training dataset yields no batch: it is smaller than one batch (drop_last)."
                )
        return self._plan

    def batches_per_pass(self) -> int:  # noqa: D102
        return len(self._current_plan())

    def start_epoch(self, epoch: int) -> None:  # noqa: D102
        super().start_epoch(epoch)
        self._plan = None

    def next_batch(self) -> Any:  # noqa: D102
        plan = self._current_plan()
        if self.offset >= len(plan):
            self.pass_index, self.offset, self._plan = self.pass_index + 1, 0, None
            plan = self._current_plan()
        rows = plan[self.offset]
        self.offset += 1
        return self._fetch(rows)

    def restore(self, position: dict[str, Any]) -> None:  # noqa: D102
        super().restore(position)
        self._plan = None


class LoaderStream(BatchStream):
    """Batches of a ``torch.utils.data.DataLoader``, in the order the loader itself produces.

    Args:
        loader: The data loader; its ``collate_fn`` may have a ``skipping`` flag (see
            :class:`~sentencekit.training.collate.ExampleCollator`) that makes fast-forwarding cheap.
    """

    def __init__(self, loader: Any) -> None:
        super().__init__()
        self.loader = loader
        self._iterator: Iterator[Any] | None = None
        self._pass_rng: dict[str, Any] | None = None

    def batches_per_pass(self) -> int:  # noqa: D102
        return len(self.loader)

    def _generators(self) -> dict[str, torch.Generator]:
        found = {}
        for name, owner in (("loader", self.loader), ("sampler", getattr(self.loader, "sampler", None))):
            generator = getattr(owner, "generator", None)
            if isinstance(generator, torch.Generator):
                found[name] = generator
        return found

    def _begin_pass(self) -> None:
        self._pass_rng = {
            "global": torch.get_rng_state(),
            **{name: g.get_state() for name, g in self._generators().items()},
        }
        self._iterator = iter(self.loader)
        self.offset = 0

    def start_epoch(self, epoch: int) -> None:  # noqa: D102
        super().start_epoch(epoch)
        self._iterator = None

    def next_batch(self) -> Any:  # noqa: D102
        if self._iterator is None:
            self._begin_pass()
        assert self._iterator is not None
        try:
            batch = next(self._iterator)
        except StopIteration:
            self.pass_index += 1
            self._begin_pass()
            batch = next(self._iterator)
        self.offset += 1
        return batch

    def position(self) -> dict[str, Any]:  # noqa: D102
        return {**super().position(), "rng": self._pass_rng}

    def restore(self, position: dict[str, Any]) -> None:  # noqa: D102
        super().restore(position)
        self._iterator = None
        rng = position.get("rng")
        if rng is None:  # the pass had not begun
            return
        torch.set_rng_state(rng["global"])
        for name, generator in self._generators().items():
            if name in rng:
                generator.set_state(rng[name])
        offset = position["offset"]
        self._iterator = iter(self.loader)
        self._pass_rng = rng
        collate: Any = getattr(self.loader, "collate_fn", None)
        cheap = hasattr(collate, "skipping") and getattr(self.loader, "num_workers", 0) == 0
        if cheap:
            collate.skipping = True
        try:
            for _ in range(offset):
                next(self._iterator)
        finally:
            if cheap:
                collate.skipping = False
        self.offset = offset
        logger.debug("Skipped %d batches of pass %d to resume", offset, self.pass_index)
