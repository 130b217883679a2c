"""Small helpers that sentence-transformers keeps in ``sentence_transformers.util``, under the same names.

They exist so that code written for the reference keeps working after the import switch:

==============================  ==================================================================
name                            what it does
==============================  ==================================================================
:func:`pytorch_cos_sim`         the reference's old name for :func:`~sentencekit.util.cos_sim`
:func:`truncate_embeddings`     keep the first ``truncate_dim`` components (Matryoshka)
:func:`batch_to_device`         move the tensors of a tokenizer batch to a device
:func:`get_device_name`         ``"cuda"``, ``"mps"``, ``"npu"`` or ``"cpu"``: the best device here
:func:`import_from_string`      ``"package.module.Name"`` -> the object it names
:func:`fullname`                an object's class as ``"package.module.Name"``
:class:`LoggingHandler`         a logging handler that writes around tqdm progress bars
==============================  ==================================================================
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import torch

from sentencekit.encoding.gpu import default_device
from sentencekit.similarity import cos_sim

__all__ = [
    "LoggingHandler",
    "batch_to_device",
    "fullname",
    "get_device_name",
    "import_from_string",
    "pytorch_cos_sim",
    "truncate_embeddings",
]

pytorch_cos_sim = cos_sim

_Embeddings = TypeVar("_Embeddings", np.ndarray, torch.Tensor)


def truncate_embeddings(embeddings: _Embeddings, truncate_dim: int | None) -> _Embeddings:
    """The first ``truncate_dim`` components of each embedding (all of them for ``None``).

    A view, not a copy, as in the reference; the result is not normalized again.

    Raises:
        ValueError: For a ``truncate_dim`` that is not a positive integer.
    """
    if truncate_dim is None:
        return embeddings
    if isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int) or truncate_dim < 1:
        raise ValueError(f"truncate_dim must be a positive integer or None, got {truncate_dim!r}.")
    return embeddings[..., :truncate_dim]


def select_max_active_dims(embeddings: np.ndarray | torch.Tensor, max_active_dims: int | None) -> Any:
    """Keep each row's ``max_active_dims`` largest-magnitude values and zero the rest (``None``: unchanged).

    Takes a dense numpy array or tensor and returns a new dense tensor; the input is not changed.
    """
    from sentencekit.encoding.loop import check_max_active_dims, keep_top_dims

    check_max_active_dims(max_active_dims)
    if max_active_dims is None:
        return embeddings

    tensor = torch.as_tensor(embeddings)
    return keep_top_dims(tensor.to_dense() if tensor.is_sparse else tensor, max_active_dims)


def batch_to_device(batch: Mapping[str, Any], target_device: torch.device | str) -> dict[str, Any]:
    """``batch`` with each tensor moved to ``target_device``; other values are kept as they are."""
    return {
        key: value.to(target_device) if isinstance(value, torch.Tensor) else value
        for key, value in batch.items()
    }


def get_device_name() -> str:
    """The best accelerator here, as the reference names it: ``"cuda"``, ``"mps"``, ``"npu"`` or ``"cpu"``.

    Models load on :func:`~sentencekit.encoding.gpu.default_device`, which is the same but for Ascend NPUs.
    """
    device = default_device()
    npu = getattr(torch, "npu", None)
    if device == "cpu" and npu is not None and npu.is_available():
        return "npu"
    return device


def import_from_string(dotted_path: str) -> Any:
    """The object that ``"package.module.Name"`` names, importing its module.

    Raises:
        ImportError: When the path has no dot, the module cannot be imported, or it has no such name; the
            message names which.
    """
    module_path, _, name = dotted_path.rpartition(".")
    if not module_path or not name:
        raise ImportError(f"{dotted_path!r} is not a dotted path such as 'package.module.Name'.")
    module = importlib.import_module(module_path)
    try:
        return getattr(module, name)
    except AttributeError:
        raise ImportError(f"Module {module_path!r} has no attribute {name!r}.") from None


def fullname(obj: object) -> str:
    """The class of ``obj`` (or ``obj`` itself when it is a class) as ``"package.module.Name"``.

    Builtins have no module prefix (``"str"``), as in the reference.
    """
    cls = obj if isinstance(obj, type) else type(obj)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class LoggingHandler(logging.Handler):
    """A handler that prints records through ``tqdm.write``, so log lines do not break progress bars.

    Example:
        >>> import logging
        >>> logging.basicConfig(level=logging.INFO, handlers=[LoggingHandler()])
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Write one formatted record above any running progress bar."""
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record))
            self.flush()
        except Exception:  # a handler must not raise; logging reports it on stderr
            self.handleError(record)
