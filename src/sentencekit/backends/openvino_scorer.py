"""``CrossEncoder(backend="auto")`` with AMX: the classifier's ONNX export compiled by OpenVINO in bf16.

The cross-encoder's counterpart of :mod:`sentencekit.backends.openvino`. With the ``openvino`` extra installed
and AMX on the CPU, ``"auto"`` compiles the plain export (``onnx/model.onnx``, the classifier's logits) in
bf16, scores :data:`PROBE_PAIRS` with it and with torch fp32, and keeps it when no logit moved by more than
:data:`PROBE_MAX_LOGIT_ERROR` of the spread of fp32's logits over those pairs. Otherwise, and on every other
CPU, ``"auto"`` is the exact default. The torch model stays loaded and takes over whenever the scorer
declines (training, changed weights, off the CPU), as with the ONNX Runtime scorer.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sentencekit.backends.cpu import cpu_info, physical_cores
from sentencekit.backends.onnx import BATCH_TOKENS
from sentencekit.backends.onnx_scorer import OnnxScorer, classifier_source
from sentencekit.backends.openvino import PROVIDER, CompiledEncoder, openvino_installed
from sentencekit.backends.probe import PROBE_TEXTS
from sentencekit.modules.transformer import HALF_CPU_BATCH_TOKENS

__all__ = ["PROBE_MAX_LOGIT_ERROR", "PROBE_PAIRS", "OpenVinoScorer", "choose_fast_scorer", "logit_error"]

logger = logging.getLogger(__name__)

# Largest logit change a candidate may show on the probe pairs, as a fraction of the spread (max - min) of
# fp32's logits over them. Corpora see larger changes than the probe: a MiniLM reranker trained on STSb had
# 0.30% on the probe and 1.98% at worst over the 1,379 STSb test pairs, so the bound leaves that margin.
PROBE_MAX_LOGIT_ERROR = 0.01
# Each probe text beside another (sentence and paragraph, sentence and sentence), and four beside themselves.
PROBE_PAIRS: tuple[tuple[str, str], ...] = (
    *zip(PROBE_TEXTS, reversed(PROBE_TEXTS), strict=True),
    *((text, text) for text in PROBE_TEXTS[:4]),
)


class OpenVinoScorer(OnnxScorer):
    """An :class:`~sentencekit.backends.onnx_scorer.OnnxScorer` whose graph OpenVINO runs.

    In f32 unless ``ov_config`` (OpenVINO compile options) says otherwise; ``backend="auto"`` asks for bf16.
    """

    def __init__(
        self, model: torch.nn.Module, onnx_path: Path, ov_config: dict[str, Any] | None = None
    ) -> None:
        self.ov_config = dict(ov_config or {})
        super().__init__(model, onnx_path, provider=PROVIDER)
        self.batch_workers = physical_cores()

    def _open_session(self) -> CompiledEncoder:
        return CompiledEncoder(self.onnx_path, physical_cores(), self.ov_config, output_ndim=2)

    @property
    def default_batch_tokens(self) -> int | None:
        """2,048 padded tokens per batch in bf16, as the bf16 encoders on the CPU; 512 in f32."""
        return (
            HALF_CPU_BATCH_TOKENS
            if getattr(self.session, "precision", "") in ("bf16", "f16")
            else BATCH_TOKENS
        )

    @property
    def inference_path(self) -> str:
        """``"openvino bf16"`` (or ``"openvino f32"`` where OpenVINO did not compile bf16)."""
        return f"openvino {getattr(self.session, 'precision', 'unknown')}"


def logit_error(candidate: Tensor, reference: Tensor) -> float:
    """Largest ``|candidate - reference|`` per label over the spread of ``reference``'s logits of that label.

    A constant reference column (no spread) makes any change count as infinite.
    """
    candidate, reference = candidate.float(), reference.float()
    spread = reference.max(dim=0).values - reference.min(dim=0).values
    change = (candidate - reference).abs().max(dim=0).values
    ratio = torch.where(spread > 0, change / spread.clamp_min(1e-30), torch.where(change > 0, torch.inf, 0.0))
    return float(ratio.max())


def _score(scorer: Any, tokenizer: Any, max_length: int, input_names: list[str]) -> Tensor:
    from sentencekit.cross_encoder.scoring import ScorePlan, score_pairs

    plan = ScorePlan(batch_size=16, device=torch.device("cpu"), max_length=max_length)
    with torch.inference_mode():
        return score_pairs(scorer, tokenizer, list(PROBE_PAIRS), plan, "token_type_ids" in input_names)


def choose_fast_scorer(
    model: torch.nn.Module, tokenizer: Any, max_length: int, folder: Path | None, input_names: list[str]
) -> tuple[str, str, OnnxScorer] | None:
    """The OpenVINO bf16 scorer when this CPU has AMX, the extra is installed and the probe accepts it.

    Args:
        model: The cross-encoder's torch sequence classifier (fp32, on the CPU).
        tokenizer: Its tokenizer.
        max_length: Its most tokens per pair.
        folder: The model's folder, where an ``onnx/model.onnx`` may already be.
        input_names: The classifier's inputs (``token_type_ids`` among them or not).

    Returns:
        ``(backend, inference_path, scorer)``, or ``None`` (logged) to keep the exact path.
    """
    from sentencekit.backends.onnx_export import EXPORT_FILE, find_or_export

    if not (cpu_info().bf16_before_int8 and openvino_installed()):
        logger.info("backend='auto': no faster cross-encoder path on this machine (AMX and openvino needed)")
        return None
    try:
        source = classifier_source(model, input_names)
        path = find_or_export(source, folder, EXPORT_FILE, trust_unrecorded=False)
        scorer = OpenVinoScorer(model, path, {"INFERENCE_PRECISION_HINT": "bf16"})
    except Exception as exc:  # any failure: the exact path stays
        logger.info("backend='auto': OpenVINO is not available (%s: %s)", type(exc).__name__, exc)
        return None
    error = logit_error(
        _score(scorer, tokenizer, max_length, input_names), _score(model, tokenizer, max_length, input_names)
    )
    if error > PROBE_MAX_LOGIT_ERROR:
        logger.info(
            "backend='auto': %s changes a probe logit by %.1f%% of their spread (> %.0f%%); not used",
            scorer.inference_path,
            100 * error,
            100 * PROBE_MAX_LOGIT_ERROR,
        )
        return None
    logger.info(
        "backend='auto': %s (largest probe logit change %.2f%% of their spread)",
        scorer.inference_path,
        100 * error,
    )
    return "openvino", scorer.inference_path, scorer
