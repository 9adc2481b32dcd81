"""What machine a measurement ran on: benchmarks print it beside their numbers."""

from __future__ import annotations

import os
import platform
from pathlib import Path

SIMD = (
    "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
    "amx_tile", "amx_bf16", "neon",
)  # fmt: skip


def _cpuinfo() -> tuple[str, set[str]]:
    """The CPU's model name and feature flags from ``/proc/cpuinfo`` (no flags without it)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, flags


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``avx2``, ``amx_bf16``...); empty where the OS does not say."""
    return _cpuinfo()[1]


def cpu_description() -> str:
    """Return e.g. ``AMD EPYC, 2 cores, avx2 avx512f`` from ``/proc/cpuinfo`` where it exists."""
    model, flags = _cpuinfo()
    simd = " ".join(f for f in SIMD if f in flags)
    return f"{model}, {os.cpu_count()} cores" + (f", {simd}" if simd else "")
