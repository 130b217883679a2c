"""The ONNX Runtime path of CrossEncoder: its sequence classifier exported, fused and run as a session.

Same files and rules as the bi-encoder's (:mod:`sentencekit.backends.onnx_export`): ``onnx/model_O2.onnx``
(fused fp32, exact) by default, ``model_kwargs={"file_name": ...}`` for another, made once per model
fingerprint (the classifier's weights and its ``logits`` output, so the files never mix with an encoder's).
The torch model stays loaded: it is what training updates and what ``save`` writes, and it scores instead of
the session whenever the session could be stale (see :class:`OnnxScorer`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor, nn

from sentencekit.backends.cpu import physical_cores
from sentencekit.backends.onnx import BATCH_TOKENS, open_session, weights_state
from sentencekit.backends.onnx_convert import ExportSource
from sentencekit.backends.select import BackendPlan, torch_path, why_not_onnx
from sentencekit.encoding.batching import pad_token_ids

__all__ = ["OnnxScorer", "attach_scorer"]

logger = logging.getLogger(__name__)

_CPU = "CPUExecutionProvider"


def classifier_source(model: nn.Module, input_names: list[str]) -> ExportSource:
    """What to export of a Hugging Face sequence classifier: its ``logits`` for these inputs.

    BERT-style classifiers are exported as their first-token view, whose last layer computes the one token
    the head reads (:mod:`sentencekit.cross_encoder.first_token`, keys and values unfolded), when the view
    gives the model's logits.
    """
    from sentencekit.cross_encoder.first_token import first_token_view, views_agree

    view = first_token_view(model, fold=False)
    variant = ""
    if view is not None and views_agree(model, view, next(model.parameters()).device):
        model, variant = view, "first-token"
    config: Any = model.config
    vocab = max(int(getattr(config, "vocab_size", 100)), 10)

    def example() -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(0)
        rows = [torch.randint(5, vocab, (n,), generator=generator).tolist() for n in (12, 7, 4)]
        types = [[0] * (len(r) // 2) + [1] * (len(r) - len(r) // 2) for r in rows]
        pad = int(getattr(config, "pad_token_id", 0) or 0)
        features = pad_token_ids(rows, types if "token_type_ids" in input_names else None, pad, left=False)
        return features

    return ExportSource(model, tuple(input_names), "logits", example, variant=variant)


class OnnxScorer:
    """Scores tokenized pairs with an ONNX Runtime session; called like the torch model (``.logits``).

    It declines (:meth:`ready` is false, and the caller scores with torch) while the torch model is in
    training mode or off the CPU, and for good once its weights changed after the graph was made.

    Attributes:
        onnx_path: The ONNX file the session runs.
        batch_workers: Batches the scoring loop may run at once, one thread each.
    """

    runtime_name = "ONNX Runtime"  # what scores when the scorer may, in log messages

    def __init__(
        self, model: nn.Module, onnx_path: Path, provider: str = _CPU, num_threads: int | None = None
    ) -> None:
        self.model = model
        self.onnx_path = Path(onnx_path)
        self.provider = provider
        self.session: Any = self._open_session()
        self.batch_workers = (num_threads or physical_cores()) if provider == _CPU else 1
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._weights = weights_state(model)
        self._stale = False

    def _open_session(self) -> Any:
        """The runtime session for :attr:`onnx_path` (ONNX Runtime here; subclasses run others)."""
        return open_session(self.onnx_path, self.provider)

    def ready(self) -> bool:
        """Whether the session may score now (else torch must)."""
        if self._stale or self.model.training:
            return False
        if weights_state(self.model) != self._weights:
            self._stale = True
            logger.warning(
                "The cross-encoder's weights changed after %s was made; scoring with torch from now on "
                "(exact). Load the model again to use %s with the new weights.",
                self.onnx_path.name,
                self.runtime_name,
            )
            return False
        if self.session is None:
            try:
                self.session = self._open_session()
            except Exception as exc:  # the file went away: torch is exact
                logger.warning("Cannot reopen %s (%s); scoring with torch.", self.onnx_path, exc)
                self._stale = True
                return False
        return next(self.model.parameters()).device.type == "cpu"

    @property
    def inference_path(self) -> str:
        """``"onnx int8"`` or ``"onnx fp32"``, after the file's name (subclasses name their own runtime)."""
        return "onnx int8" if "qint8" in self.onnx_path.name else "onnx fp32"

    @property
    def parallel_batches(self) -> int:
        """Batches the scoring loop may run at once."""
        return self.batch_workers

    @property
    def default_batch_tokens(self) -> int | None:
        """Token budget per batch when ``predict`` gets none (``backends.onnx.BATCH_TOKENS``)."""
        return BATCH_TOKENS if self.provider == _CPU else None

    def __call__(self, **features: Tensor) -> SimpleNamespace:
        """Logits of a tokenized batch, as ``SimpleNamespace(logits=...)`` (fp32, on the inputs' device)."""
        input_ids = features["input_ids"]
        feeds = {}
        for name in self._inputs:
            value = features.get(name)
            feeds[name] = (value if value is not None else torch.zeros_like(input_ids)).cpu().numpy()
        logits = torch.from_numpy(self.session.run(None, feeds)[0]).to(input_ids.device, torch.float32)
        return SimpleNamespace(logits=logits)

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the session, which is reopened on first use."""
        if not self._stale and weights_state(self.model) != self._weights:
            self._stale = True
        return {**self.__dict__, "session": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._weights = weights_state(self.model)


def attach_scorer(
    plan: BackendPlan, model: nn.Module, input_names: list[str], folder: Path | None, device: str
) -> tuple[str, str, OnnxScorer | None]:
    """Make the scorer ``plan`` asks for; return ``(backend, inference_path, scorer or None)``.

    ``backend=None`` and ``"auto"`` use the fused fp32 graph when they can and torch otherwise, logging why
    (``"auto"`` then looks for a faster approximate scorer: :mod:`sentencekit.backends.fast_scorer`);
    ``"onnx"`` and ``"openvino"`` raise what loading raises.
    """
    from sentencekit.backends.onnx_export import find_or_export

    if plan.backend == "torch":
        return "torch", torch_path(model), None
    if plan.backend in (None, "auto"):
        why_not = why_not_onnx(device, plan.torch_model_kwargs)
        if why_not:
            logger.info("Cross-encoder inference path: torch (%s)", why_not)
            return "torch", torch_path(model), None
    source = classifier_source(model, input_names)  # checks the first-token view: only when a file is used
    if plan.backend == "openvino":
        from sentencekit.backends.openvino import openvino_file
        from sentencekit.backends.openvino_scorer import OpenVinoScorer

        ov_scorer = OpenVinoScorer(
            model,
            openvino_file(source, folder, plan.onnx_options.get("file_name")),
            plan.onnx_options.get("ov_config"),
        )
        return "openvino", ov_scorer.inference_path, ov_scorer
    if plan.backend == "onnx":
        path = find_or_export(source, folder, plan.onnx_options.get("file_name"))
        scorer = OnnxScorer(
            model, path, plan.onnx_options.get("provider", _CPU), plan.onnx_options.get("num_threads")
        )
        return "onnx", scorer.inference_path, scorer
    try:
        scorer = OnnxScorer(model, find_or_export(source, folder, None, trust_unrecorded=False))
    except Exception as exc:  # any failure to export, check or open: torch is exact and always there
        logger.warning(
            "The faster exact path (ONNX Runtime) is not available for this cross-encoder, using torch: "
            "%s: %s",
            type(exc).__name__,
            exc,
        )
        return "torch", torch_path(model), None
    logger.info("Cross-encoder inference path: %s (%s)", scorer.inference_path, scorer.onnx_path.name)
    return "onnx", scorer.inference_path, scorer
