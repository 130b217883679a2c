"""The CPU inference benchmark behind ``sentencekit bench`` and ``benchmarks/inference_speed.py``.

Every path (sentencekit's default, torch fp32 and bf16, ``auto``; sentence-transformers in fp32 and bf16 when
it is installed) encodes the same texts in one process, runs alternating, and is compared with a baseline path
(the reference's fp32, else sentencekit's torch fp32) on speed (tokens/s, sentences/s, ratio), agreement
(max |diff|, min cosine), STSb Spearman, and peak RSS. Each text set also gets the speed no fp32 path
can pass on this CPU: the model's counted FLOPs over the best fp32 matmul rate measured.

==========================================  ======================================================
module                                      content
==========================================  ======================================================
:mod:`~sentencekit.benchmarking.paths`      the paths and how each is loaded; the baseline rule
:mod:`~sentencekit.benchmarking.runner`     :func:`run_benchmark`, :class:`BenchConfig`, :class:`TextSet`
:mod:`~sentencekit.benchmarking.rss`        :class:`RssSampler`: peak resident memory, and what it means
:mod:`~sentencekit.benchmarking.metrics`    max |diff|, min cosine, Spearman (numpy only)
:mod:`~sentencekit.benchmarking.ceiling`    FLOPs per token and the fp32 bound no exact path passes
:mod:`~sentencekit.benchmarking.report`     text tables, JSON, the PNG chart (matplotlib)
==========================================  ======================================================

Example::

    from sentencekit.benchmarking import BenchConfig, TextSet, format_tables, run_benchmark

    sets = [TextSet("short", "my queries", queries), TextSet("long", "my documents", documents)]
    report = run_benchmark("all-MiniLM-L6-v2", sets, BenchConfig(paths=("sentencekit default",)))
    print(format_tables(report))
"""

from __future__ import annotations

from sentencekit.benchmarking.paths import PATH_NAMES
from sentencekit.benchmarking.report import format_tables, write_chart, write_json
from sentencekit.benchmarking.rss import RssSampler
from sentencekit.benchmarking.runner import BenchConfig, TextSet, run_benchmark

__all__ = [
    "BenchConfig",
    "PATH_NAMES",
    "RssSampler",
    "TextSet",
    "format_tables",
    "run_benchmark",
    "write_chart",
    "write_json",
]
