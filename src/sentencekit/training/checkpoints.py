"""Checkpoints: a model folder plus everything needed to continue training exactly where it stopped.

``<dir>/checkpoint-<global step>/`` holds the saved model (loadable like any model folder), a readable
``trainer_state.json`` and ``training_state.pt`` (optimizer, schedule, loss scaler, parameters of the losses,
random generator states and data positions). A checkpoint is written under a temporary name and renamed when
complete, so a run killed while saving leaves the previous checkpoints intact.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "TRAINING_STATE_FILE",
    "checkpoint_folders",
    "latest_checkpoint",
    "load_model_weights",
    "loss_extra_state",
    "read_training_state",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

logger = logging.getLogger(__name__)

TRAINING_STATE_FILE = "training_state.pt"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_folders(folder: str | Path) -> list[Path]:
    """Complete checkpoints in ``folder``, oldest (lowest step) first."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _NAME.match(child.name)
        if match and (child / TRAINING_STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint with the highest step in ``folder``, or ``None``."""
    folders = checkpoint_folders(folder)
    return folders[-1] if folders else None


def save_checkpoint(
    folder: str | Path,
    step: int,
    model: Any,
    state: dict[str, Any],
    summary: dict[str, Any],
    total_limit: int = 0,
) -> Path:
    """Write ``checkpoint-<step>`` atomically, then delete the oldest beyond ``total_limit``.

    Args:
        folder: The folder of checkpoints.
        step: Global optimizer step, the checkpoint's name.
        model: The model; saved with its own ``save``.
        state: Everything else needed to resume (pickled with ``torch.save``).
        summary: JSON-serialisable facts written to ``trainer_state.json`` for people to read.
        total_limit: Checkpoints to keep; 0 keeps all.

    Returns:
        The checkpoint folder.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{step}"
    staging = root / f".incomplete-checkpoint-{step}"
    shutil.rmtree(staging, ignore_errors=True)
    model.save(staging)
    torch.save(state, staging / TRAINING_STATE_FILE)
    (staging / "trainer_state.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    logger.info("Saved checkpoint %s", final)
    if total_limit > 0:
        for old in checkpoint_folders(root)[:-total_limit]:
            shutil.rmtree(old, ignore_errors=True)
            logger.info("Deleted old checkpoint %s (save_total_limit=%d)", old, total_limit)
    return final


def read_training_state(checkpoint: str | Path) -> dict[str, Any]:
    """Read ``training_state.pt`` of a checkpoint written by :func:`save_checkpoint`.

    The file is unpickled (it holds random generator states), so only resume from checkpoints you trust.

    Raises:
        FileNotFoundError: If ``checkpoint`` is not a checkpoint folder.
    """
    path = Path(checkpoint) / TRAINING_STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{checkpoint} is not a training checkpoint (no {TRAINING_STATE_FILE}); pass a checkpoint-<step> "
            "folder, or True to take the latest one in the output folder."
        )
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state


def load_model_weights(model: nn.Module, folder: str | Path) -> None:
    """Copy the weights of the model saved in ``folder`` into ``model`` (same architecture)."""
    saved = type(model)(str(folder), device="cpu")
    model.load_state_dict(saved.state_dict())


def loss_extra_state(loss: nn.Module, model: nn.Module) -> dict[str, torch.Tensor]:
    """The entries of a loss's state dict that are not the model's (a classifier head, ...)."""
    model_tensors = {t.data_ptr() for t in model.state_dict().values()}
    return {k: v for k, v in loss.state_dict().items() if v.data_ptr() not in model_tensors}


def rng_state() -> dict[str, Any]:
    """The states of Python's, numpy's and torch's global random generators (CUDA too when present)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore generator states from :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
