"""OnnxTransformer: the Transformer module with its encoder run by ONNX Runtime.

Only the encoder's forward pass moves to ONNX Runtime. Tokenization, token-length-sorted batching (the encode
loop in :mod:`sentencekit.encoding.loop`), pooling and normalization are those of the torch path, so both
backends batch the same way and differ only in how the token embeddings are computed.

Loading::

    SentenceTransformer("all-MiniLM-L6-v2", backend="onnx")  # onnx/model.onnx, exported on first use
    SentenceTransformer(
        "all-MiniLM-L6-v2",
        backend="onnx",
        model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx"},  # int8, approximate
    )
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from sentencekit._optional import require
from sentencekit.backends.onnx_export import SIDECAR_SUFFIX, find_or_export, normalize_file_name
from sentencekit.errors import ModelFormatError
from sentencekit.modules import Transformer
from sentencekit.modules.base import Features

__all__ = ["ONNX_MODEL_KWARGS", "OnnxTransformer", "split_onnx_kwargs", "to_onnx"]

logger = logging.getLogger(__name__)

# What model_kwargs may hold with backend="onnx" (the torch loading options do not apply to the ONNX graph).
ONNX_MODEL_KWARGS = {
    "file_name": "ONNX file in the model's onnx/ folder, e.g. 'onnx/model_qint8_avx512_vnni.onnx'",
    "provider": "ONNX Runtime execution provider (default 'CPUExecutionProvider')",
}


def split_onnx_kwargs(model_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``model_kwargs`` given with ``backend="onnx"`` and return them.

    Raises:
        ValueError: For keys the ONNX backend does not take, listing the valid ones.
    """
    options = dict(model_kwargs or {})
    unknown = sorted(set(options) - set(ONNX_MODEL_KWARGS))
    if unknown:
        valid = "; ".join(f"{key}: {why}" for key, why in ONNX_MODEL_KWARGS.items())
        raise ValueError(f"model_kwargs {unknown} do not apply to backend='onnx'. Valid keys: {valid}.")
    normalize_file_name(options.get("file_name"))  # fail early on a malformed name
    return options


class OnnxTransformer(Transformer):
    """A :class:`~sentencekit.modules.Transformer` whose encoder runs in an ONNX Runtime session.

    The torch encoder stays loaded: :meth:`save` writes it (and copies the ONNX file into the saved folder's
    ``onnx/``), and new ONNX files are exported from it.

    Attributes:
        onnx_path: The ONNX file the session runs.
        session: The ``onnxruntime.InferenceSession``.
    """

    onnx_path: Path
    session: Any
    _onnx_inputs: list[str]
    _onnx_sha256: str | None

    @classmethod
    def from_transformer(
        cls, transformer: Transformer, onnx_path: Path, provider: str = "CPUExecutionProvider"
    ) -> OnnxTransformer:
        """Take over ``transformer``'s encoder, tokenizer and settings, and open ``onnx_path``.

        Raises:
            ModelFormatError: When the file cannot be opened or needs inputs the tokenizer cannot give.
        """
        if transformer.output_hidden_states:
            raise ModelFormatError(
                "This model needs every layer's hidden states (WeightedLayerPooling), which the ONNX backend "
                "does not produce; use backend='torch'."
            )
        ort = require("onnxruntime", extra="onnx", purpose="backend='onnx'")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(onnx_path), options, providers=[provider])
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelFormatError(
                f"ONNX Runtime cannot load {onnx_path} ({type(exc).__name__}: {exc}). Delete it to have it "
                "exported again, or pick another model_kwargs['file_name']."
            ) from exc
        # Same object, new class: every attribute (and the nn.Module registry) is the transformer's.
        module = cls.__new__(cls)
        module.__dict__.update(transformer.__dict__)
        module.onnx_path = Path(onnx_path)
        module.session = session
        module._onnx_inputs = [i.name for i in session.get_inputs()]
        missing = set(module._onnx_inputs) - {"input_ids", "attention_mask", "token_type_ids"}
        if missing:
            raise ModelFormatError(
                f"{onnx_path} expects inputs {sorted(missing)} that sentencekit cannot give."
            )
        module._onnx_sha256 = None
        return module

    def forward(self, features: Features) -> Features:
        """Run the ONNX encoder; adds ``token_embeddings`` (fp32, on the device of ``input_ids``)."""
        input_ids = features["input_ids"]
        feeds = {}
        for name in self._onnx_inputs:
            value = features.get(name)
            if value is None:  # a graph with segment ids, a tokenizer without: one segment
                value = torch.zeros_like(input_ids)
            feeds[name] = value.cpu().numpy()
        hidden = self.session.run(None, feeds)[0]
        features["token_embeddings"] = torch.from_numpy(hidden).to(input_ids.device, torch.float32)
        return features

    def save(self, path: str | Path) -> None:
        """Save the torch encoder and tokenizer, and copy the ONNX file (with its sidecar) into ``onnx/``."""
        super().save(path)
        target = Path(path) / "onnx"
        target.mkdir(parents=True, exist_ok=True)
        sidecar = self.onnx_path.with_name(self.onnx_path.name + SIDECAR_SUFFIX)
        for source in (self.onnx_path, sidecar):
            if source.is_file() and source.resolve() != (target / source.name).resolve():
                shutil.copyfile(source, target / source.name)

    def cache_identity(self) -> dict[str, str]:
        """What the embedding cache must tell apart beyond the weights: which ONNX graph (fp32, int8, ...)."""
        if self._onnx_sha256 is None:
            digest = hashlib.sha256()
            with open(self.onnx_path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
            self._onnx_sha256 = digest.hexdigest()
        return {"backend": "onnx", "onnx_sha256": self._onnx_sha256}

    def __repr__(self) -> str:
        return (
            f"OnnxTransformer({{'max_seq_length': {self.max_seq_length}, "
            f"'do_lower_case': {self.do_lower_case}, 'onnx_file': '{self.onnx_path.name}'}})"
        )


def to_onnx(transformer: Transformer, folder: Path | None, options: dict[str, Any]) -> OnnxTransformer:
    """Find (or export) the ONNX file ``options`` names for ``transformer`` and wrap it."""
    path = find_or_export(transformer, folder, options.get("file_name"))
    logger.info("ONNX backend: %s", path)
    return OnnxTransformer.from_transformer(
        transformer, path, provider=options.get("provider", "CPUExecutionProvider")
    )
