"""OnnxTransformer: the Transformer module with its encoder run by ONNX Runtime.

Only the encoder's forward pass moves to ONNX Runtime. Tokenization, token-length-sorted batching (the encode
loop in :mod:`sentencekit.encoding.loop`), pooling and normalization are those of the torch path, so both
backends batch the same way and differ only in how the token embeddings are computed.

Loading::

    SentenceTransformer("all-MiniLM-L6-v2", backend="onnx")  # onnx/model_O2.onnx (fused), made on first use
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
from sentencekit.backends.cpu import physical_cores
from sentencekit.backends.onnx_export import SIDECAR_SUFFIX, find_or_export, normalize_file_name
from sentencekit.errors import ModelFormatError
from sentencekit.modules import Transformer
from sentencekit.modules.base import Features

__all__ = [
    "BATCH_TOKENS",
    "ONNX_MODEL_KWARGS",
    "OnnxTransformer",
    "known_kwargs",
    "open_session",
    "split_onnx_kwargs",
    "to_onnx",
    "weights_state",
]

logger = logging.getLogger(__name__)

# What model_kwargs may hold with backend="onnx" (the torch loading options do not apply to the ONNX graph).
ONNX_MODEL_KWARGS = {
    "file_name": "ONNX file in the model's onnx/ folder, e.g. 'onnx/model_qint8_avx512_vnni.onnx'",
    "provider": "ONNX Runtime execution provider (default 'CPUExecutionProvider')",
    "num_threads": "batches run at the same time, one CPU thread each (default: the physical cores)",
}
_CPU = "CPUExecutionProvider"
# Most padded tokens per batch when the caller sets no max_batch_tokens. One thread runs a batch, so a small
# one keeps its activations (and a long text's attention scores) in cache: all-MiniLM-L6-v2 on SciFact
# abstracts, one core, 512 against batches of 32 x 256 tokens: int8 1.27x, fp32 1.24x; short texts, whose
# batches of 32 hold ~450 tokens, are unaffected.
BATCH_TOKENS = 512


def known_kwargs(model_kwargs: dict[str, Any] | None, valid: dict[str, str], backend: str) -> dict[str, Any]:
    """A copy of ``model_kwargs`` when every key is one of ``valid`` (key: what it means).

    Raises:
        ValueError: For other keys, naming them and listing the valid ones for ``backend``.
    """
    options = dict(model_kwargs or {})
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = "; ".join(f"{key}: {why}" for key, why in valid.items())
        raise ValueError(f"model_kwargs {unknown} do not apply to backend='{backend}'. Valid keys: {listed}.")
    return options


def split_onnx_kwargs(model_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """Check ``model_kwargs`` given with ``backend="onnx"`` and return them.

    Raises:
        ValueError: For keys the ONNX backend does not take, listing the valid ones, or a bad ``num_threads``.
    """
    options = known_kwargs(model_kwargs, ONNX_MODEL_KWARGS, "onnx")
    normalize_file_name(options.get("file_name"))  # fail early on a malformed name
    threads = options.get("num_threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"model_kwargs['num_threads'] must be a positive integer, got {threads!r}.")
    return options


def open_session(path: Path, provider: str = _CPU) -> Any:
    """An ONNX Runtime session for ``path`` that runs each call on the calling thread alone.

    On CPU, callers run several batches at once (one per core) instead of splitting every operator across
    threads: a transformer layer on a batch of short texts is a chain of small operators, and the
    synchronization after each costs more than it saves (all-MiniLM-L6-v2 on STSb sentences, 2 cores: 1.3x
    to 1.8x more throughput, the more so the busier the machine).

    Raises:
        ModelFormatError: When ONNX Runtime cannot load the file.
    """
    ort = require("onnxruntime", extra="onnx", purpose="backend='onnx'")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if provider == _CPU:
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        # residual Add + LayerNormalization stay apart (onnx_convert.fuse_file: the fused kernel is slower)
        return ort.InferenceSession(
            str(path), options, providers=[provider], disabled_optimizers=["SkipLayerNormFusion"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        raise ModelFormatError(
            f"ONNX Runtime cannot load {path} ({type(exc).__name__}: {exc}). Delete it to have it "
            "exported again, or pick another model_kwargs['file_name']."
        ) from exc


# Attribute counting the optimizer steps that updated a parameter. Fused optimizer kernels (torch.optim.AdamW
# with fused=True, the training loop's default) write the weights without bumping their in-place version.
_STEPS_ATTRIBUTE = "_sentencekit_optimizer_steps"
_step_hook: Any = None


def _count_optimizer_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            setattr(parameter, _STEPS_ATTRIBUTE, getattr(parameter, _STEPS_ATTRIBUTE, 0) + 1)


def weights_state(model: torch.nn.Module) -> tuple[tuple[int, int, int, int], ...]:
    """Identity, in-place version, storage and optimizer steps of every parameter.

    Changes whenever the weights can have: in-place writes bump the version, and a global optimizer hook
    (installed on first use) counts the steps of optimizers that write without bumping it (fused kernels).
    """
    global _step_hook
    if _step_hook is None:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        _step_hook = register_optimizer_step_post_hook(_count_optimizer_step)
    return tuple(
        (id(p), p._version, p.data_ptr(), getattr(p, _STEPS_ATTRIBUTE, 0)) for p in model.parameters()
    )


class OnnxTransformer(Transformer):
    """A :class:`~sentencekit.modules.Transformer` whose encoder runs in an ONNX Runtime session.

    The torch encoder stays loaded: :meth:`save` writes it (and copies the ONNX file into the saved folder's
    ``onnx/``), new ONNX files are exported from it, and it takes over whenever the session would not give
    what torch gives: in training mode or with gradients on, when every layer's output is asked for, when the
    model was moved off the CPU, and for good once the weights changed after the graph was made (training,
    ``load_state_dict``, pruned layers). So the module never returns stale embeddings.

    Attributes:
        onnx_path: The ONNX file the session runs.
        session: The ``onnxruntime.InferenceSession`` (opened again after unpickling or deep-copying).
        batch_workers: Batches the encode loop may run at once (each on its own thread).
        implicit: Chosen by sentencekit (the default exact path, ``backend="auto"``) rather than asked for
            with ``backend="onnx"``; :meth:`save` then writes the torch model only.
    """

    onnx_path: Path
    session: Any
    batch_workers: int
    implicit: bool
    _provider: str
    _session_options: dict[str, str] | None
    _onnx_inputs: list[str]
    _onnx_sha256: str | None
    _weights: tuple[tuple[int, int, int, int], ...]
    _stale: bool

    @classmethod
    def from_transformer(
        cls,
        transformer: Transformer,
        onnx_path: Path,
        provider: str = _CPU,
        num_threads: int | None = None,
        session_options: dict[str, str] | None = None,
    ) -> OnnxTransformer:
        """Take over ``transformer``'s encoder, tokenizer and settings, and open ``onnx_path``.

        ``session_options`` go to the runtime that opens the file (none for ONNX Runtime; OpenVINO's
        compile options for :class:`~sentencekit.backends.openvino.OpenVinoTransformer`).

        Raises:
            ModelFormatError: When the file cannot be opened or needs inputs the tokenizer cannot give.
        """
        if transformer.output_hidden_states:
            raise ModelFormatError(
                "This model needs every layer's hidden states (WeightedLayerPooling), which the ONNX backend "
                "does not produce; use backend='torch'."
            )
        session = cls._open_session(onnx_path, provider, session_options)
        # Same object, new class: every attribute (and the nn.Module registry) is the transformer's.
        module = cls.__new__(cls)
        module.__dict__.update(transformer.__dict__)
        module.onnx_path = Path(onnx_path)
        module.session = session
        module.implicit = False
        module._provider = provider
        module._session_options = session_options
        module.batch_workers = cls._batch_workers(provider, num_threads)
        module._onnx_inputs = [i.name for i in session.get_inputs()]
        missing = set(module._onnx_inputs) - {"input_ids", "attention_mask", "token_type_ids"}
        if missing:
            raise ModelFormatError(
                f"{onnx_path} expects inputs {sorted(missing)} that sentencekit cannot give."
            )
        module._onnx_sha256 = None
        module._weights = weights_state(module.auto_model)
        module._stale = False
        return module

    @classmethod
    def _open_session(cls, path: Path, provider: str, options: dict[str, str] | None) -> Any:
        """The runtime for ``path`` (an ONNX Runtime session here; subclasses may run the graph elsewhere)."""
        return open_session(path, provider)

    @classmethod
    def _batch_workers(cls, provider: str, num_threads: int | None) -> int:
        """Batches run side by side: one per physical core on the CPU, else 1."""
        return (num_threads or physical_cores()) if provider == _CPU else 1

    def uses_session(self) -> bool:
        """Whether the next forward pass runs in ONNX Runtime (else in torch, see the class docstring)."""
        return not torch.is_grad_enabled() and self._session_ready()

    def _session_ready(self) -> bool:
        """The session's conditions other than the gradient mode, which belongs to the calling thread."""
        if self.auto_model.training or self.output_hidden_states or self._stale:
            return False
        if self._weights_changed():
            self._stale = True
            logger.warning(
                "The encoder's weights changed after %s was made; encoding with torch from now on (exact). "
                "Load the model again to use ONNX Runtime with the new weights.",
                self.onnx_path.name,
            )
            return False
        if self.session is None:
            try:
                self.session = self._open_session(self.onnx_path, self._provider, self._session_options)
            except Exception as exc:  # the file went away (another machine, a cleaned cache): torch is exact
                logger.warning("Cannot reopen %s (%s); encoding with torch.", self.onnx_path, exc)
                self._stale = True
                return False
        return self.auto_model.device.type == "cpu"

    def _weights_changed(self) -> bool:
        return weights_state(self.auto_model) != self._weights

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the session (sessions cannot be copied); it is reopened on first use."""
        if not self._stale and self._weights_changed():
            self._stale = True  # a copy must not trust weights that changed before it was made
        state = dict(self.__dict__)
        state["session"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        # the copy's parameters are new objects holding the weights the graph was made from
        self._weights = weights_state(self.auto_model)

    @property
    def parallel_batches(self) -> int:
        """Batches the encode loop may run at once: ``batch_workers`` with the session, 1 with torch."""
        return self.batch_workers if self._session_ready() else 1

    @property
    def default_batch_tokens(self) -> int | None:
        """Token budget per batch when the caller gives none: :data:`BATCH_TOKENS` on CPU, else none."""
        return BATCH_TOKENS if self._provider == _CPU and self._session_ready() else None

    def forward(self, features: Features) -> Features:
        """Run the encoder; adds ``token_embeddings`` (fp32, on the device of ``input_ids``)."""
        if not self.uses_session():
            return super().forward(features)
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
        """Save the torch encoder and tokenizer, and copy the ONNX file (with its sidecar) into ``onnx/``.

        A module sentencekit chose by itself (:attr:`implicit`) saves the torch model only.
        """
        super().save(path)
        if self.implicit:
            return
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


def to_onnx(
    transformer: Transformer, folder: Path | None, options: dict[str, Any], *, implicit: bool = False
) -> OnnxTransformer:
    """Find (or export) the ONNX file ``options`` names for ``transformer`` and wrap it.

    ``implicit``: sentencekit chose this path itself, so only files it wrote for these weights are used
    (see :func:`~sentencekit.backends.onnx_export.find_or_export`).
    """
    path = find_or_export(transformer, folder, options.get("file_name"), trust_unrecorded=not implicit)
    logger.info("ONNX backend: %s", path)
    return OnnxTransformer.from_transformer(
        transformer, path, provider=options.get("provider", _CPU), num_threads=options.get("num_threads")
    )
