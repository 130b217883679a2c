"""What this CPU offers the inference paths: physical cores, and native bf16 and int8 dot products.

Read once per process from ``/proc/cpuinfo`` (Linux); elsewhere the answers fall back to what the standard
library knows (logical cores, no instruction-set flags), which keeps ``backend="auto"`` conservative.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuInfo", "cpu_info", "physical_cores"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CpuInfo:
    """The few facts about the CPU that decide which path is fast.

    Attributes:
        physical_cores: Cores this process may run on, hyper-threads not counted.
        native_bf16: bf16 matrix products in hardware (``avx512_bf16`` or AMX); without it torch emulates
            bf16 and it is slower than fp32.
        int8_dot: int8 dot-product instructions (``avx512_vnni``, ``avx_vnni``, AMX, or arm64's ``asimddp``).
        flags: The instruction-set flags found, for logs and benchmark reports.
    """

    physical_cores: int
    native_bf16: bool
    int8_dot: bool
    flags: frozenset[str]

    @property
    def bf16_before_int8(self) -> bool:
        """Whether ``backend="auto"`` tries bf16 before ONNX int8: on CPUs with AMX tiles for bf16.

        Measured on a 2-core Xeon with AMX (tokens/s, STSb sentences / SciFact abstracts, each path with its
        own batch plan): all-MiniLM-L6-v2 torch bf16 26,981 / 30,233, int8 26,226 / 21,188; all-mpnet-base-v2
        bf16 6,046 / 3,942, int8 5,816 / 4,121. bf16 is level or faster, and far closer to fp32 (min cosine
        0.9998 against 0.990). On a Zen 5 with avx512_bf16 and no AMX, int8 was the faster of the two
        (before bf16 had a batch plan of its own).
        """
        return "amx_bf16" in self.flags

    @property
    def int8_file(self) -> str:
        """The name of the int8 ONNX file that suits this CPU (``model_qint8_<config>.onnx``)."""
        return f"model_qint8_{self.quantization_config}.onnx"

    @property
    def quantization_config(self) -> str:
        """The ``model_qint8_<config>.onnx`` variant that suits this CPU."""
        if platform.machine().lower() in ("arm64", "aarch64"):
            return "arm64"
        if "avx512_vnni" in self.flags or "avx_vnni" in self.flags or "amx_int8" in self.flags:
            return "avx512_vnni"
        return "avx512" if "avx512f" in self.flags else "avx2"


_FLAGS_OF_INTEREST = frozenset(
    {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "asimddp"}
)


def _read_cpuinfo() -> tuple[set[str], int | None]:
    """Flags of the first CPU, and the number of distinct (package, core) pairs among the allowed CPUs."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set(), None
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    flags: set[str] = set()
    cores: set[tuple[str, str]] = set()
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        if not flags:
            flags = set((fields.get("flags") or fields.get("Features") or "").split())
        processor = fields.get("processor", "")
        if allowed is not None and processor.isdigit() and int(processor) not in allowed:
            continue
        if "core id" in fields:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return flags, (len(cores) or None)


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's :class:`CpuInfo` (computed once)."""
    flags, cores = _read_cpuinfo()
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    info = CpuInfo(
        physical_cores=max(1, min(cores or logical, logical)),
        native_bf16=bool({"avx512_bf16", "amx_bf16"} & flags),
        int8_dot=bool({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"} & flags),
        flags=frozenset(flags & _FLAGS_OF_INTEREST),
    )
    logger.debug("CPU: %s", info)
    return info


def physical_cores() -> int:
    """Physical cores this process may use (at least 1)."""
    return cpu_info().physical_cores
