"""``CrossEncoder(backend="auto")``: the fastest scorer on this CPU whose logits stay close to fp32's.

Candidates, fastest first as measured on a 2-core Xeon with AMX (a MiniLM reranker, 1,000 SciFact pairs):

1. **openvino bf16** (:class:`~sentencekit.backends.openvino_scorer.OpenVinoScorer`), on CPUs with AMX when
   the ``openvino`` extra is installed: 2.95x the exact default there;
2. **torch bf16** (:class:`TorchHalfScorer`), where the CPU multiplies bf16 in hardware (avx512_bf16, AMX): a
   bf16 copy of the classifier, one batch per core: 2.35x;
3. the exact default (ONNX Runtime fp32), which needs no check.

A candidate is kept when, on :data:`PROBE_PAIRS`, none of its logits moved by more than
:data:`PROBE_MAX_LOGIT_ERROR` of the spread of fp32's logits over those pairs. The torch model stays loaded
and scores whenever the candidate declines (training, changed weights, off the CPU).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sentencekit.backends.cpu import cpu_info, physical_cores
from sentencekit.backends.onnx_scorer import OnnxScorer, classifier_source
from sentencekit.backends.openvino import openvino_installed
from sentencekit.backends.probe import PROBE_TEXTS
from sentencekit.cross_encoder.first_token import first_token_view, views_agree
from sentencekit.modules.transformer import HALF_CPU_BATCH_TOKENS

__all__ = ["PROBE_MAX_LOGIT_ERROR", "PROBE_PAIRS", "TorchHalfScorer", "choose_fast_scorer", "logit_error"]

logger = logging.getLogger(__name__)

# Largest logit change a candidate may show on the probe pairs, as a fraction of the spread (max - min) of
# fp32's logits over them. Corpora see larger changes than the probe: a MiniLM reranker trained on STSb had
# 0.30% on the probe and 1.98% at worst over the 1,379 STSb test pairs (OpenVINO bf16), so the bound leaves
# that margin.
PROBE_MAX_LOGIT_ERROR = 0.01
# Each probe text beside another (sentence and paragraph, sentence and sentence), and four beside themselves.
PROBE_PAIRS: tuple[tuple[str, str], ...] = (
    *zip(PROBE_TEXTS, reversed(PROBE_TEXTS), strict=True),
    *((text, text) for text in PROBE_TEXTS[:4]),
)


class _HalfSession:
    """A bf16 copy of a sequence classifier, with the session methods the scorer calls.

    The copy scores through its first-token view (:mod:`sentencekit.cross_encoder.first_token`) when the
    fp32 model's view gives its logits: the same logits, with a sixth less work for a 6-layer model.
    """

    precision = "bf16"

    def __init__(self, model: torch.nn.Module, input_names: list[str]) -> None:
        view = first_token_view(model)
        shortcut = view is not None and views_agree(model, view, torch.device("cpu"))
        half = copy.deepcopy(model).to(torch.bfloat16).eval()
        half_view = first_token_view(half) if shortcut else None
        self.model = half_view if half_view is not None else half
        self._names = list(input_names)

    def get_inputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name=name) for name in self._names]

    def run(self, _output_names: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        # the batch threads are new threads: inference mode is per thread, so it is set here
        with torch.inference_mode():
            logits = self.model(**{name: torch.from_numpy(value) for name, value in feeds.items()}).logits
        return [logits.float().numpy()]


class TorchHalfScorer(OnnxScorer):
    """Scores with a bf16 copy of the classifier, one batch per physical core (each on one torch thread).

    The fp32 model stays as it is (training and ``save`` use it); the copy costs half its weights in memory
    and is made again after a deep copy or unpickling.
    """

    runtime_name = "torch bf16"

    def __init__(self, model: torch.nn.Module, input_names: list[str]) -> None:
        self._input_names = list(input_names)
        super().__init__(model, Path("torch-bf16"), provider="torch")
        self.batch_workers = physical_cores()

    def _open_session(self) -> _HalfSession:
        return _HalfSession(self.model, self._input_names)

    @property
    def default_batch_tokens(self) -> int | None:
        """2,048 padded tokens per batch, as the bf16 encoders on the CPU."""
        return HALF_CPU_BATCH_TOKENS

    @property
    def inference_path(self) -> str:
        """``"torch bf16"``."""
        return "torch bf16"


def logit_error(candidate: Tensor, reference: Tensor) -> float:
    """Largest ``|candidate - reference|`` per label over the spread of ``reference``'s logits of that label.

    A constant reference column (no spread) makes any change count as infinite.
    """
    candidate, reference = candidate.float(), reference.float()
    spread = reference.max(dim=0).values - reference.min(dim=0).values
    change = (candidate - reference).abs().max(dim=0).values
    ratio = torch.where(spread > 0, change / spread.clamp_min(1e-30), torch.where(change > 0, torch.inf, 0.0))
    return float(ratio.max())


def _open_openvino(model: torch.nn.Module, folder: Path | None, input_names: list[str]) -> OnnxScorer:
    from sentencekit.backends.onnx_export import EXPORT_FILE, find_or_export
    from sentencekit.backends.openvino_scorer import OpenVinoScorer

    path = find_or_export(classifier_source(model, input_names), folder, EXPORT_FILE, trust_unrecorded=False)
    return OpenVinoScorer(model, path, {"INFERENCE_PRECISION_HINT": "bf16"})


def choose_fast_scorer(
    model: torch.nn.Module, tokenizer: Any, max_length: int, folder: Path | None, input_names: list[str]
) -> tuple[str, str, OnnxScorer] | None:
    """The first candidate (see the module docstring) this CPU offers that passes the probe.

    Args:
        model: The cross-encoder's torch sequence classifier (fp32, on the CPU).
        tokenizer: Its tokenizer.
        max_length: Its most tokens per pair.
        folder: The model's folder, where an ``onnx/model.onnx`` may already be.
        input_names: The classifier's inputs (``token_type_ids`` among them or not).

    Returns:
        ``(backend, inference_path, scorer)``, or ``None`` (logged) to keep the exact path.
    """
    from sentencekit.cross_encoder.scoring import ScorePlan, score_pairs

    plan = ScorePlan(batch_size=16, device=torch.device("cpu"), max_length=max_length)
    with_types = "token_type_ids" in input_names

    def score(scorer: Any) -> Tensor:
        with torch.inference_mode():
            return score_pairs(scorer, tokenizer, list(PROBE_PAIRS), plan, with_types)

    info = cpu_info()
    candidates: list[tuple[str, str, Callable[[], OnnxScorer]]] = []
    if info.bf16_before_int8 and openvino_installed():
        candidates.append(("openvino", "OpenVINO", partial(_open_openvino, model, folder, input_names)))
    if info.native_bf16:
        candidates.append(("torch", "torch bf16", partial(TorchHalfScorer, model, input_names)))
    if not candidates:
        logger.info("backend='auto': no faster cross-encoder path on this CPU (it has no native bf16)")
        return None
    reference = score(model)
    for backend, name, make in candidates:
        try:
            scorer = make()
        except Exception as exc:  # any failure: the next candidate
            logger.info("backend='auto': %s is not available (%s: %s)", name, type(exc).__name__, exc)
            continue
        path = scorer.inference_path
        error = logit_error(score(scorer), reference)
        if error <= PROBE_MAX_LOGIT_ERROR:
            logger.info(
                "backend='auto': %s (largest probe logit change %.2f%% of their spread)", path, 100 * error
            )
            return backend, path, scorer
        logger.info(
            "backend='auto': %s changes a probe logit by %.1f%% of their spread (> %.0f%%); not used",
            path,
            100 * error,
            100 * PROBE_MAX_LOGIT_ERROR,
        )
    return None
