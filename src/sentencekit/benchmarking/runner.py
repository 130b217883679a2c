"""Time every inference path on the same texts in one process, alternating runs, and compare the outputs.

The procedure, in order:

1. Count the real tokens of each text set (after truncation at the model's ``max_seq_length``) with
   sentencekit's tokenizer; tokens/s uses these counts for every path. Count the model's FLOPs and time
   this CPU's fp32 matrix products, for the bound no fp32 path can pass (:mod:`.ceiling`).
2. Load every path's model (RSS growth while loading is recorded), and warm each up on the first
   ``warmup_texts`` texts of each set (first-call allocations, ONNX Runtime's lazy initialisation).
3. Take the RSS baseline, then run ``repeats`` rounds per text set; each round times every path once, starting
   at another path each round, so that load from other jobs spreads over all paths. An
   :class:`~sentencekit.benchmarking.rss.RssSampler` runs during each timed run.
4. Report the best run per path (and the median), the ratio to the baseline path's best run, and max |diff|
   and min cosine of the path's embeddings against the baseline's; with STSb pairs, each path's Spearman
   correlation.

On a shared machine compare the ratios measured in one run rather than absolute figures across runs; the load
average before and after is recorded for that reason.
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sentencekit.benchmarking.ceiling import ceiling_for, measure_ceiling
from sentencekit.benchmarking.metrics import max_abs_diff, min_cosine, stsb_spearman
from sentencekit.benchmarking.paths import batch_label, load_path, reference_available, select_paths
from sentencekit.benchmarking.rss import MIB, RssSampler, current_rss
from sentencekit.errors import InvalidInputError

if TYPE_CHECKING:
    from sentencekit.readers import ScoredPairs

__all__ = [
    "BenchConfig",
    "TextSet",
    "machine",
    "run_benchmark",
]

Encode = Callable[[list[str]], np.ndarray]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextSet:
    """Texts timed together, e.g. ``TextSet("short", "STSb test", sentences)``.

    Attributes:
        name: ``"short"`` or ``"long"`` (any word; it starts the label).
        source: Where the texts come from, shown in the label: ``"short (STSb test)"``.
        texts: The texts, encoded in this order.
    """

    name: str
    source: str
    texts: list[str]

    @property
    def label(self) -> str:
        """The key of this set in the report, e.g. ``"short (STSb test)"``."""
        return f"{self.name} ({self.source})"


@dataclass(frozen=True)
class BenchConfig:
    """Settings of a benchmark run.

    Attributes:
        paths: Path names to run (see :mod:`~sentencekit.benchmarking.paths`); empty: all that can run. The
            baseline path joins them.
        reference: Run sentence-transformers' fp32 path as the baseline when it is installed; ``False``
            leaves the reference out (the baseline is then sentencekit's torch fp32).
        repeats: Timed runs per path and text set; the best is reported. 2 evens out most noise on a quiet
            machine; raise it on a shared one.
        batch_size: Texts per forward pass, as in ``encode``. ``None`` (the default): each side's default,
            32 for sentence-transformers and the inference path's own plan for sentencekit (32 texts, or up
            to 256 texts within 2,048 tokens for bf16 on the CPU). A path may fix its own
            (:attr:`PathSpec.batch_size`).
        warmup_texts: Texts each path encodes once per set before timing; 64 covers two batches.
        rss_interval: Seconds between RSS samples; 10 ms costs nothing measurable and catches most peaks.
        ceiling: Count the model's FLOPs and time this CPU's matrix products (about 2 s) to report the
            fastest any fp32 path could run here (:mod:`~sentencekit.benchmarking.ceiling`).
    """

    paths: tuple[str, ...] = ()
    reference: bool = True
    repeats: int = 2
    batch_size: int | None = None
    warmup_texts: int = 64
    rss_interval: float = 0.01
    ceiling: bool = True

    def __post_init__(self) -> None:
        for name in ("repeats", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup_texts < 0 or self.rss_interval <= 0:
            raise InvalidInputError("warmup_texts must be >= 0 and rss_interval > 0")


@dataclass
class _Timings:
    seconds: list[float] = field(default_factory=list)
    peak_rss: int | None = None

    def add(self, seconds: float, peak: int | None) -> None:
        self.seconds.append(seconds)
        if peak is not None and (self.peak_rss is None or peak > self.peak_rss):
            self.peak_rss = peak


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / MIB, 1)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """The CPU, its vector extensions, and the versions of the libraries that run the paths."""
    import torch

    cpu, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                cpu = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    isa = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16"}
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": sorted(flags & isa),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": _version("transformers"),
        "onnxruntime": _version("onnxruntime"),
        "sentence_transformers": _version("sentence-transformers"),
    }


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _count_tokens(
    folder: str, sets: Sequence[TextSet], with_ceiling: bool
) -> tuple[list[list[int]], dict[str, Any] | None]:
    """Each set's token counts per text and, when asked, the model's FLOPs and the CPU's matmul rates."""
    from sentencekit.modules import Transformer

    counter = Transformer.load(folder)
    lengths = [[int(n) for n in counter.tokenize_unpadded(s.texts).lengths()] for s in sets]
    ceiling = None
    if with_ceiling:
        try:
            ceiling = measure_ceiling(counter)
        except Exception as exc:  # an architecture the FLOP counter cannot run: the report goes without it
            logger.warning("No fp32 bound for this model (%s: %s)", type(exc).__name__, exc)
    del counter
    gc.collect()
    return lengths, ceiling


def run_benchmark(
    model: str,
    sets: Sequence[TextSet],
    config: BenchConfig = BenchConfig(),  # frozen, so one shared default is safe
    stsb: ScoredPairs | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark and return its report (what ``--json`` writes).

    Args:
        model: Model name, Hub id or local folder.
        sets: Text sets to time, usually short and long texts.
        config: Paths, repeats, batch size.
        stsb: STSb-format pairs; adds each path's Spearman correlation. When a set named ``short`` holds every
            sentence of the pairs, its outputs are reused; otherwise the sentences are encoded once, untimed.
        log: Where progress lines go.

    Returns:
        A JSON-ready dict: settings, machine, ``baseline`` and per-path load details, and per text set
        ``datasets[label]["paths"][path]`` with tokens/s, sentences/s, ratio, accuracy and RSS figures.

    Raises:
        InvalidInputError: Without text sets, with an empty one, or with an unknown path name.
        MissingDependencyError: For a reference path when sentence-transformers is not installed.
    """
    from sentencekit.hub import resolve_model_path

    if not sets:
        raise InvalidInputError("No texts to time: give at least one set of short or long texts.")
    for text_set in sets:
        if not text_set.texts:
            raise InvalidInputError(f"The {text_set.label} texts are empty.")
    installed = reference_available()
    specs, baseline = select_paths(
        config.paths, reference_installed=installed, use_reference=config.reference
    )
    folder = str(resolve_model_path(model))
    started = time.perf_counter()
    lengths, ceiling = _count_tokens(folder, sets, config.ceiling)

    report: dict[str, Any] = {
        "model": model,
        "batch_size": config.batch_size,
        "repeats": config.repeats,
        "baseline": baseline,
        "reference_installed": installed,
        "machine": machine(),
        "ceiling": ceiling,
        "load_average_before": _load_average(),
        "rss_before_load_mib": _mib(current_rss()),
        "paths": {},
        "datasets": {},
    }
    encoders: dict[str, Encode] = {}
    for spec in specs:
        before = current_rss()
        encoders[spec.name], inference_path = load_path(spec, folder, config.batch_size)
        after = current_rss()
        growth = None if before is None or after is None else after - before
        report["paths"][spec.name] = {
            "inference_path": inference_path,
            "batch": batch_label(spec, config.batch_size),
            "load_rss_growth_mib": _mib(growth),
        }
        log(f"{spec.name:24s} -> {inference_path}")

    for text_set in sets:
        for encode in encoders.values():
            encode(text_set.texts[: config.warmup_texts])
    baseline_rss = current_rss()
    report["rss_baseline_mib"] = _mib(baseline_rss)

    for text_set, set_lengths in zip(sets, lengths, strict=True):
        outputs, timings = _time_paths(encoders, text_set.texts, config)
        n_tokens = sum(set_lengths)
        results = _results(outputs, timings, baseline, len(text_set.texts), n_tokens, baseline_rss)
        if stsb is not None and text_set.name == "short":
            _add_spearman(results, stsb, encoders, outputs, text_set.texts)
        report["datasets"][text_set.label] = {
            "texts": len(text_set.texts),
            "tokens": n_tokens,
            "load_average_after": _load_average(),
            "paths": results,
        }
        if ceiling is not None:
            bound = ceiling_for(ceiling, set_lengths, results[baseline]["tokens_per_s"])
            report["datasets"][text_set.label].update(bound)
    if stsb is not None and not any(s.name == "short" for s in sets):
        report["stsb_spearman"] = _spearman_only(encoders, stsb)
    report["load_average_after"] = _load_average()
    report["wall_s"] = round(time.perf_counter() - started, 1)
    return report


def _time_paths(
    encoders: dict[str, Encode], texts: list[str], config: BenchConfig
) -> tuple[dict[str, np.ndarray], dict[str, _Timings]]:
    """``repeats`` rounds; each round starts at another path, so a load change favours no path."""
    names = list(encoders)
    outputs: dict[str, np.ndarray] = {}
    timings = {name: _Timings() for name in names}
    for round_ in range(config.repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            with RssSampler(config.rss_interval) as sampler:
                start = time.perf_counter()
                outputs[name] = encoders[name](texts)
                seconds = time.perf_counter() - start
            timings[name].add(seconds, sampler.peak)
    return outputs, timings


def _results(
    outputs: dict[str, np.ndarray],
    timings: dict[str, _Timings],
    baseline: str,
    n_texts: int,
    n_tokens: int,
    baseline_rss: int | None,
) -> dict[str, dict[str, Any]]:
    reference = outputs[baseline]
    baseline_best = min(timings[baseline].seconds)
    results = {}
    for name, timing in timings.items():
        best = min(timing.seconds)
        peak = timing.peak_rss
        results[name] = {
            "tokens_per_s": round(n_tokens / best),
            "tokens_per_s_median": round(n_tokens / statistics.median(timing.seconds)),
            "sentences_per_s": round(n_texts / best, 1),
            "ratio_vs_baseline": round(baseline_best / best, 2),
            "max_abs_diff_vs_baseline": max_abs_diff(outputs[name], reference),
            "min_cosine_vs_baseline": min_cosine(outputs[name], reference),
            "peak_rss_mib": _mib(peak),
            "peak_rss_growth_mib": None
            if peak is None or baseline_rss is None
            else _mib(peak - baseline_rss),
        }
    return results


def _add_spearman(
    results: dict[str, dict[str, Any]],
    stsb: ScoredPairs,
    encoders: dict[str, Encode],
    outputs: dict[str, np.ndarray],
    texts: list[str],
) -> None:
    index = {text: i for i, text in enumerate(texts)}
    if all(s in index for s in (*stsb.sentences1, *stsb.sentences2)):
        for name, embeddings in outputs.items():
            results[name]["stsb_spearman"] = round(stsb_spearman(embeddings, index, *stsb), 5)
    else:
        for name, rho in _spearman_only(encoders, stsb).items():
            results[name]["stsb_spearman"] = rho


def _spearman_only(encoders: dict[str, Encode], stsb: ScoredPairs) -> dict[str, float]:
    """Each path's Spearman on the pairs, encoding their sentences once (untimed)."""
    sentences = list(dict.fromkeys((*stsb.sentences1, *stsb.sentences2)))
    index = {text: i for i, text in enumerate(sentences)}
    return {
        name: round(stsb_spearman(encode(sentences), index, *stsb), 5) for name, encode in encoders.items()
    }
