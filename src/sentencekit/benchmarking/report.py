"""The benchmark report as text tables, a JSON file and a PNG chart (the chart needs matplotlib)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentencekit.benchmarking.paths import REFERENCE_FP32
from sentencekit.errors import MissingDependencyError

__all__ = [
    "baseline_note",
    "ceiling_note",
    "check_chart_dependency",
    "format_tables",
    "write_chart",
    "write_json",
]

_MATPLOTLIB_HINT = "pip install matplotlib (or pip install 'sentencekit[bench]')"


def baseline_note(report: dict[str, Any]) -> str:
    """One line saying what the ratios and the accuracy columns are measured against."""
    if report["baseline"] == REFERENCE_FP32:
        version = report["machine"].get("sentence_transformers")
        return f"ratio, max|diff|, min cos: against the reference (sentence-transformers {version}) in fp32"
    if not report["reference_installed"]:
        return (
            "sentence-transformers is not installed: no reference paths; ratio, max|diff|, min cos are "
            f"against {report['baseline']} (NOT the reference)"
        )
    return f"ratio, max|diff|, min cos: against {report['baseline']} (the reference was left out)"


def batch_note(report: dict[str, Any]) -> str:
    """How the run batched its texts: one count for every path, or each library's default."""
    if report.get("batch_size") is not None:
        return f"batch {report['batch_size']}"
    return "batches: each library's default (the reference's 32; sentencekit's path plan)"


def ceiling_note(report: dict[str, Any], data: dict[str, Any]) -> str:
    """The fp32 bound of one text set, in a line under its table."""
    ceiling = report["ceiling"]
    attention = "" if ceiling["flops"]["attention_counted"] else ", attention not counted"
    return (
        f"no fp32 path can pass {data['fp32_ceiling_tokens_per_s']} tok/s here "
        f"({data['fp32_ceiling_vs_baseline']:.2f}x the baseline): "
        f"{data['flops_per_token'] / 1e6:.2f} MFLOP per token{attention}, "
        f"at the best fp32 matmul rate measured, {ceiling['fp32_matmul_gflops']} GFLOP/s "
        f"(bf16: {ceiling['bf16_matmul_gflops']})"
    )


def _cell(value: Any, spec: str, width: int) -> str:
    return f"{'n/a':>{width}s}" if value is None else f"{value:{width}{spec}}"


def format_tables(report: dict[str, Any]) -> str:
    """One table per text set: speed, ratio, agreement with the baseline, Spearman and peak RSS."""
    lines = [baseline_note(report)]
    for name, info in report.get("paths", {}).items():
        lines.append(f"  {name:24s} runs {info['inference_path']}, batch {info.get('batch', '?')}")
    for label, data in report["datasets"].items():
        lines += [
            "",
            f"{label}: {data['texts']} texts, {data['tokens']} tokens, {batch_note(report)}",
            f"{'path':24s} {'tok/s':>8s} {'sent/s':>8s} {'ratio':>6s} {'max|diff|':>10s} {'min cos':>9s} "
            f"{'Spearman':>9s} {'peak MiB':>9s} {'+MiB':>7s}",
        ]
        for name, r in data["paths"].items():
            rho = f"{r['stsb_spearman']:.4f}" if "stsb_spearman" in r else ""
            lines.append(
                f"{name:24s} {r['tokens_per_s']:8d} {r['sentences_per_s']:8.1f} "
                f"{r['ratio_vs_baseline']:6.2f} {r['max_abs_diff_vs_baseline']:10.2e} "
                f"{r['min_cosine_vs_baseline']:9.5f} {rho:>9s} {_cell(r['peak_rss_mib'], '.1f', 9)} "
                f"{_cell(r['peak_rss_growth_mib'], '.1f', 7)}"
            )
        if "fp32_ceiling_tokens_per_s" in data:
            lines.append(ceiling_note(report, data))
    lines += [
        "",
        f"RSS with every model loaded and warmed up: {report['rss_baseline_mib']} MiB; peak MiB is the whole "
        "process during the path's runs, +MiB its growth over that baseline",
        f"load average before {report['load_average_before']}, after {report['load_average_after']}",
    ]
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write the report as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def check_chart_dependency() -> None:
    """Fail before a long run when the chart cannot be drawn.

    Raises:
        MissingDependencyError: If matplotlib is not installed; the message names the pip command.
    """
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError(f"Writing the PNG chart needs matplotlib: {_MATPLOTLIB_HINT}.")


def _color(name: str, baseline: str) -> str:
    if name == baseline:
        return "#999999"  # grey: the 1.00x bar the others are measured against
    return "#d08c3a" if name.startswith("reference") else "#3572a5"


def write_chart(report: dict[str, Any], path: Path) -> None:
    """Draw tokens/s per path, one panel per text set side by side, each bar labelled with its ratio.

    Raises:
        MissingDependencyError: If matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(f"Writing the PNG chart needs matplotlib: {_MATPLOTLIB_HINT}.") from exc

    datasets = report["datasets"]
    n_paths = max(len(data["paths"]) for data in datasets.values())
    figure = Figure(figsize=(5.5 * len(datasets), 1.2 + 0.45 * n_paths), layout="constrained")
    axes = figure.subplots(1, len(datasets), squeeze=False)[0]
    for ax, (label, data) in zip(axes, datasets.items(), strict=True):
        names = list(data["paths"])[::-1]  # first path on top
        speeds = [data["paths"][name]["tokens_per_s"] for name in names]
        colors = [_color(name, report["baseline"]) for name in names]
        bars = ax.barh(names, speeds, color=colors)
        ratios = [f"{data['paths'][name]['ratio_vs_baseline']:.2f}x" for name in names]
        ax.bar_label(bars, labels=ratios, padding=3, fontsize=8)
        ax.set_xlim(0, max(speeds) * 1.2)
        ax.set_title(f"{label}\n{data['texts']} texts, {data['tokens']} tokens", fontsize=9)
        ax.set_xlabel("tokens/s (best run)")
        ax.tick_params(labelsize=8)
    figure.suptitle(f"{report['model']}, {batch_note(report)}; ratio vs {report['baseline']}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
