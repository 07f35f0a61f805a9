"""What the benchmark ran on: CPU, cores, memory, library versions, load, matmul rate."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import platform
import time
from importlib import metadata
from typing import Any

__all__ = ["describe", "matmul_rate", "release_memory", "rss_mb"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def release_memory() -> None:
    """Collect garbage and hand glibc's freed heap back to the system.

    A finished 12,288-atom case leaves ~14 GB freed but resident in this process; the
    memory measurement's child process would otherwise share the machine with it and be
    killed for memory. A no-op where glibc is missing.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_mb() -> float:
    """Current resident set size of this process, MiB (0 where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe() -> dict[str, Any]:
    """JSON-able description of this machine and the software versions."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": _mem_total_gb(),
        "platform": platform.platform(), "python": platform.python_version(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "versions": {n: _version(n) for n in ("numpy", "torch", "jax", "jaxlib",
                                              "deepmd-kit", "flax")},
    }
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def matmul_rate(dtype: str = "float64", n: int = 1024, repeat: int = 5,
                device: str = "cpu") -> float:
    """Measured square-matmul rate of torch (numpy where torch is missing), FLOP/s (best)."""
    try:
        import torch

        t = getattr(torch, dtype)
        a = torch.randn(n, n, dtype=t, device=device)
        b = torch.randn(n, n, dtype=t, device=device)

        def mm():
            out = a @ b
            if device != "cpu":
                torch.cuda.synchronize()
            return out
    except ImportError:
        import numpy as np

        a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
        b = a.T.copy()

        def mm():
            return a @ b
    mm()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        mm()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best
