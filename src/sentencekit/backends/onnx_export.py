"""ONNX files of a model: their names, where they are cached, and the reference's export functions.

Files live in the ``onnx/`` sub-folder of a model folder, named as the reference names them:

=================================  ==========================================================================
``onnx/model.onnx``                fp32 export (``torch.onnx``, dynamic batch and sequence axes); exact
``onnx/model_O2.onnx``             ``model.onnx`` with ONNX Runtime's transformer fusions (fused attention,
                                   LayerNorm and GELU); exact, and what ``backend="onnx"`` runs by default
``onnx/model_O1.onnx``, ``O3``     ``model.onnx`` optimized by ONNX Runtime at the basic level, and
                                   ``model_O2.onnx`` at the "all" level (``O3`` may use layouts specific to
                                   the CPU it was made on)
``onnx/model_qint8_<cpu>.onnx``    ``model_O2.onnx`` with int8 weights and activations quantized per token
                                   at run time; ``<cpu>``: ``arm64``, ``avx2``, ``avx512`` or
                                   ``avx512_vnni``; approximate
``onnx/model_int8_weights.onnx``   ``model.onnx`` with int8 weights behind ``DequantizeLinear``, for
                                   OpenVINO's dynamic quantization (:mod:`sentencekit.backends.onnx_weights`);
                                   approximate; a sentencekit file, not the reference's
=================================  ==========================================================================

Each file sentencekit writes has a sidecar ``<file>.sentencekit.json`` holding the *model fingerprint*, a
sha256 of the model's weights and the export layout. A file whose sidecar records another fingerprint is
stale and is produced again. A file without a sidecar (copied by hand, or written by the reference) is used
as it is when asked for by name (``backend="onnx"``), but never by the paths sentencekit chooses itself (the
default exact path, ``backend="auto"``): nothing ties such a file to the current weights (a model fine-tuned
and saved over an old export keeps the old graph), so those paths make their own file in the sentencekit
cache and leave the foreign one untouched.
Files are written into the model folder when sentencekit may write there; packaged models, Hugging Face cache
snapshots and read-only folders get theirs in ``<sentencekit cache>/onnx/<fingerprint>/`` instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sentencekit.backends.onnx_convert import (
    OPTIMIZATION_LEVELS,
    QUANTIZATION_CONFIGS,
    ExportSource,
    compress_file,
    export_fp32,
    fuse_file,
    optimize_file,
    quantize_file,
)
from sentencekit.errors import ModelFormatError
from sentencekit.modules import Transformer

__all__ = [
    "DEFAULT_FILE",
    "EXPORT_FILE",
    "INT8_WEIGHTS_FILE",
    "export_dynamic_quantized_onnx_model",
    "export_optimized_onnx_model",
    "find_or_export",
    "model_fingerprint",
    "normalize_file_name",
    "onnx_cache_root",
    "recorded_field",
]

logger = logging.getLogger(__name__)

# The plain export, which every other file is made from.
EXPORT_FILE = "model.onnx"
# What backend="onnx" runs when no file_name is given: the fastest exact graph.
DEFAULT_FILE = "model_O2.onnx"
# The plain export with int8 weights, which OpenVINO runs with activations quantized at run time.
INT8_WEIGHTS_FILE = "model_int8_weights.onnx"
SIDECAR_SUFFIX = ".sentencekit.json"
# Bumped when the export itself changes (exporter, fusions, quantized operators), so old files are redone.
EXPORT_LAYOUT = "sentencekit-onnx/5"


@dataclass(frozen=True)
class _Recipe:
    """How to produce a named ONNX file.

    ``kind`` is ``"export"``, ``"fuse"``, ``"optimize"``, ``"quantize"`` or ``"compress"``; ``source``: the
    file it starts from.
    """

    kind: str
    option: str = ""
    source: str = ""


def _recipe(name: str) -> _Recipe | None:
    if name == EXPORT_FILE:
        return _Recipe("export")
    if name == DEFAULT_FILE:
        return _Recipe("fuse", source=EXPORT_FILE)
    if name == INT8_WEIGHTS_FILE:
        return _Recipe("compress", source=EXPORT_FILE)
    stem = name.removesuffix(".onnx")
    if stem.startswith("model_") and stem[len("model_") :] in OPTIMIZATION_LEVELS:
        level = stem[len("model_") :]
        return _Recipe("optimize", level, EXPORT_FILE if level == "O1" else DEFAULT_FILE)
    if stem.startswith("model_qint8_") and stem[len("model_qint8_") :] in QUANTIZATION_CONFIGS:
        return _Recipe("quantize", stem[len("model_qint8_") :], DEFAULT_FILE)
    return None


def producible_files() -> list[str]:
    """The ONNX file names sentencekit can write itself."""
    return (
        [EXPORT_FILE]
        + [f"model_{level}.onnx" for level in OPTIMIZATION_LEVELS]
        + [f"model_qint8_{config}.onnx" for config in QUANTIZATION_CONFIGS]
        + [INT8_WEIGHTS_FILE]
    )


def normalize_file_name(file_name: str | None) -> str:
    """``"onnx/model.onnx"`` or ``"model.onnx"`` -> ``"model.onnx"`` (a name inside the ``onnx/`` folder).

    Raises:
        ValueError: For a name that is not a plain ``.onnx`` file name.
    """
    if file_name is None:
        return DEFAULT_FILE
    name = str(file_name).replace("\\", "/").removeprefix("./").removeprefix("onnx/")
    if not name.endswith(".onnx") or "/" in name or name.startswith("."):
        raise ValueError(
            f"file_name={file_name!r} is not an ONNX file in the model's onnx/ folder; pass e.g. "
            f"'onnx/model.onnx' or 'onnx/model_qint8_avx512_vnni.onnx'. sentencekit can write: "
            f"{producible_files()}."
        )
    return name


def model_fingerprint(source: ExportSource | Transformer) -> str:
    """sha256 over the model's class, inputs, output, variant and weights.

    Weights count by name, dtype, shape and bytes, in name order.
    """
    if isinstance(source, Transformer):
        source = ExportSource.of_transformer(source)
    digest = hashlib.sha256(EXPORT_LAYOUT.encode())
    inputs = list(source.input_names)
    # the encoder's fingerprint leaves out the output it always had, so that names stay stable
    output = "" if source.output == "last_hidden_state" else f"|{source.output}"
    variant = f"|{source.variant}" if source.variant else ""
    digest.update(f"{type(source.model).__name__}|{inputs}{output}{variant}".encode())
    with torch.no_grad():
        for name, tensor in sorted(source.model.state_dict().items()):
            data = tensor.detach().to("cpu").contiguous().reshape(-1)
            digest.update(f"{name}|{data.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def onnx_cache_root() -> Path:
    """The folder holding one sub-folder of exports per model fingerprint (see :func:`onnx_cache_dir`)."""
    from sentencekit.packaged import default_cache_dir

    return default_cache_dir().parent / "onnx"


def onnx_cache_dir(fingerprint: str) -> Path:
    """Where files go for models whose folder sentencekit must not write to."""
    return onnx_cache_root() / fingerprint[:32]


def _may_write(folder: Path) -> bool:
    """Whether export files may be added to ``folder`` (not a packaged model, not a shared Hub cache)."""
    from sentencekit.hub import hf_cache_dir
    from sentencekit.packaged import MANIFEST_NAME

    if (folder / MANIFEST_NAME).exists():  # the packaged cache: its manifest describes what was unpacked
        return False
    with contextlib.suppress(ValueError, OSError):
        folder.resolve().relative_to(hf_cache_dir().resolve())
        return False
    return os.access(folder, os.W_OK)


def recorded_field(path: Path, key: str) -> str | None:
    """Field ``key`` of the sidecar sentencekit wrote beside ONNX file ``path``; ``None`` without one."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    try:
        return str(json.loads(sidecar.read_text(encoding="utf-8"))[key])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _recorded_fingerprint(path: Path) -> str | None:
    return recorded_field(path, "fingerprint")


def find_or_export(
    source: ExportSource | Transformer,
    folder: Path | None,
    file_name: str | None = None,
    *,
    trust_unrecorded: bool = True,
) -> Path:
    """Return the path of ONNX file ``file_name`` for this model, producing it when needed.

    Looks in ``folder/onnx/`` and then in the sentencekit cache; a missing or stale file that sentencekit
    knows how to produce (see the module docstring) is exported, optimized or quantized.
    ``trust_unrecorded=False`` (the paths sentencekit picks by itself) skips a ``folder/onnx/`` file that has
    no sidecar and makes its own in the sentencekit cache, leaving that file as it is.

    Raises:
        ModelFormatError: When the file is absent and its name is not one sentencekit can produce.
        MissingDependencyError: When the ``onnx`` extra is needed and not installed.
    """
    if isinstance(source, Transformer):
        source = ExportSource.of_transformer(source)
    name = normalize_file_name(file_name)
    fingerprint = model_fingerprint(source)
    local = folder / "onnx" / name if folder is not None else None
    foreign = False
    if local is not None and local.is_file():
        recorded = _recorded_fingerprint(local)
        if recorded is None and trust_unrecorded:
            logger.info(
                "Using %s as it is (not written by sentencekit, so not checked against the weights)", local
            )
            return local
        if recorded is None:
            foreign = True
            logger.info(
                "Not using %s for the path sentencekit chooses: it was not written by sentencekit, so "
                "nothing ties it to these weights (pass backend='onnx' with model_kwargs={'file_name': "
                "...} to use it as it is).",
                local,
            )
        elif recorded == fingerprint:
            return local
        else:
            logger.info("%s was exported from other weights; exporting it again.", local)
    cached = onnx_cache_dir(fingerprint) / name
    if cached.is_file() and _recorded_fingerprint(cached) == fingerprint:
        return cached
    recipe = _recipe(name)
    if recipe is None:
        where = str(local.parent) if local is not None else "no model folder"
        present = sorted(p.name for p in local.parent.glob("*.onnx")) if local is not None else []
        raise ModelFormatError(
            f"ONNX file {name!r} was not found ({where}; present: {present or 'none'}), and it is not a file "
            f"sentencekit can produce. Pass one of {producible_files()} as model_kwargs['file_name'], or put "
            "the file in the model's onnx/ folder."
        )
    # a foreign file keeps its place: ours goes to the cache
    writable = folder is not None and local is not None and not foreign and _may_write(folder)
    targets = [local.parent] if writable and local is not None else []
    targets.append(cached.parent)
    for target in targets:
        try:
            return _produce(source, folder, target / name, recipe, fingerprint, trust_unrecorded)
        except PermissionError as exc:
            logger.info("Cannot write to %s (%s); using the sentencekit cache.", target, exc)
    raise ModelFormatError(f"Cannot write {name} to any of {[str(t) for t in targets]}.")


def _produce(
    source: ExportSource,
    folder: Path | None,
    path: Path,
    recipe: _Recipe,
    fingerprint: str,
    trust_unrecorded: bool,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if recipe.kind == "export":
        logger.info("Exporting the model to %s (once per model).", path)
        _atomic(path, lambda tmp: export_fp32(source, tmp))
    else:
        start = find_or_export(source, folder, recipe.source, trust_unrecorded=trust_unrecorded)
        if recipe.kind == "fuse":
            _atomic(path, lambda tmp: fuse_file(start, tmp, source))
        elif recipe.kind == "optimize":
            _atomic(path, lambda tmp: optimize_file(start, tmp, recipe.option))
        elif recipe.kind == "compress":
            _atomic(path, lambda tmp: compress_file(start, tmp, source))
        else:
            _atomic(path, lambda tmp: quantize_file(start, tmp, recipe.option, source))
    sidecar = {"fingerprint": fingerprint, "layout": EXPORT_LAYOUT, "recipe": [recipe.kind, recipe.option]}
    path.with_name(path.name + SIDECAR_SUFFIX).write_text(
        json.dumps(sidecar, indent=2) + "\n", encoding="utf-8"
    )
    return path


def _atomic(path: Path, write: Any) -> None:
    """Write through a temporary name in the same folder, then rename: readers never see half a file."""
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".onnx", dir=path.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        data = tmp.with_name(tmp.name + ".data")
        if data.exists():  # external weights are referenced by file name from inside the graph
            raise ModelFormatError(
                f"{path.name} needs external weight data, which sentencekit does not cache yet "
                "(models over 1.5 GB)."
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --- the reference's export functions -----------------------------------------------------------------------


def _save_to(model: Any, model_name_or_path: str | os.PathLike[str], name: str, push_to_hub: bool) -> Path:
    if push_to_hub:
        raise ValueError(
            "push_to_hub is not supported: export to a local folder, then upload it with "
            "huggingface_hub.upload_folder."
        )
    transformer = model.transformer
    produced = find_or_export(transformer, None, name)
    target = Path(model_name_or_path) / "onnx" / name
    if produced != target:
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", SIDECAR_SUFFIX):
            _atomic(
                target.with_name(target.name + suffix), _copier(produced.with_name(produced.name + suffix))
            )
    logger.info("Saved %s", target)
    return target


def _copier(source: Path) -> Any:
    def write(tmp: Path) -> None:
        tmp.write_bytes(source.read_bytes())

    return write


def export_optimized_onnx_model(
    model: Any,
    optimization_config: str,
    model_name_or_path: str | os.PathLike[str],
    push_to_hub: bool = False,
    create_pr: bool = False,
    file_suffix: str | None = None,
) -> Path:
    """Save an ONNX Runtime-optimized copy of ``model``'s transformer as ``onnx/model_<level>.onnx``.

    The graph is optimized ahead of time, so later loads skip that work. Optimization does not change the
    results beyond float rounding (max |diff| ~1e-6 on all-MiniLM-L6-v2).

    Args:
        model: A :class:`~sentencekit.SentenceTransformer` (any backend; the export uses its torch weights).
        optimization_config: ``"O1"`` (basic), ``"O2"`` (extended: fused attention, layer norm and GELU) or
            ``"O3"`` (all, including layouts specific to this CPU). ``"O4"`` (fp16, for GPUs) is not offered.
        model_name_or_path: The model folder to write into (``onnx/`` is created there).
        push_to_hub: Not supported (raises); upload the folder yourself.
        create_pr: Accepted for compatibility; unused.
        file_suffix: Must be the level itself when given (other names could not be found again).

    Returns:
        The written file.

    Example:
        >>> model = SentenceTransformer("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> export_optimized_onnx_model(model, "O2", "my-model")  # doctest: +SKIP
        >>> SentenceTransformer("my-model", backend="onnx", model_kwargs={"file_name": "onnx/model_O2.onnx"})
    """
    if optimization_config not in OPTIMIZATION_LEVELS:
        raise ValueError(
            f"optimization_config must be one of {sorted(OPTIMIZATION_LEVELS)} on CPU, "
            f"got {optimization_config!r}."
        )
    if file_suffix not in (None, optimization_config):
        raise ValueError(f"file_suffix must be {optimization_config!r} (or None), got {file_suffix!r}.")
    return _save_to(model, model_name_or_path, f"model_{optimization_config}.onnx", push_to_hub)


def export_dynamic_quantized_onnx_model(
    model: Any,
    quantization_config: str,
    model_name_or_path: str | os.PathLike[str],
    push_to_hub: bool = False,
    create_pr: bool = False,
    file_suffix: str | None = None,
) -> Path:
    """Save ``model``'s transformer with int8 MatMul weights as ``onnx/model_qint8_<config>.onnx``.

    Weights are quantized per output channel ahead of time, activations per token at run time
    (:mod:`sentencekit.backends.onnx_quantize`). This is an approximation: see ``docs/fast_inference.md`` for
    the measured loss (all-MiniLM-L6-v2: min cosine to fp32 0.990 on STSb sentences, 0.997 on SciFact
    abstracts; all-mpnet-base-v2: 0.991). The feed-forward output projections are smoothed with activation
    ranges measured on built-in calibration texts.

    Args:
        model: A :class:`~sentencekit.SentenceTransformer` (any backend; the export uses its torch weights).
        quantization_config: The CPU to target: ``"avx512_vnni"``, ``"avx512"``, ``"avx2"`` or ``"arm64"``.
        model_name_or_path: The model folder to write into (``onnx/`` is created there).
        push_to_hub: Not supported (raises); upload the folder yourself.
        create_pr: Accepted for compatibility; unused.
        file_suffix: Must be ``"qint8_<config>"`` when given.

    Returns:
        The written file.

    Example:
        >>> model = SentenceTransformer("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> export_dynamic_quantized_onnx_model(model, "avx512_vnni", "my-model")  # doctest: +SKIP
    """
    if quantization_config not in QUANTIZATION_CONFIGS:
        raise ValueError(
            f"quantization_config must be one of {sorted(QUANTIZATION_CONFIGS)}, got {quantization_config!r}."
        )
    suffix = f"qint8_{quantization_config}"
    if file_suffix not in (None, suffix):
        raise ValueError(f"file_suffix must be {suffix!r} (or None), got {file_suffix!r}.")
    return _save_to(model, model_name_or_path, f"model_{suffix}.onnx", push_to_hub)
