"""Peak memory of one contender, measured in a fresh process (peak RSS is per process).

``python -m dpa2_bench.memory '<json spec>'`` builds the case, reads the resident set
after setup, runs the contender (its warm-up and one call) and prints a JSON line with
the peak RSS and its increase over the setup; on CUDA also the allocator's peak.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from typing import Any

from .machine import rss_mb
from .runners import Unavailable, make_runner
from .structures import config_for, inputs_for, params_for

__all__ = ["measure", "peak_memory"]


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """In this process: setup, then the contender; RSS figures in MiB."""
    config = config_for(spec["config"], spec["dtype"])
    params = params_for(config)
    inp = inputs_for(config, spec["natoms"])
    device = spec.get("device", "cpu")
    if spec["backend"] == "torch":
        import torch

        if device != "cpu":
            torch.cuda.reset_peak_memory_stats()
    if spec["backend"] == "jax" or spec["who"] == "deepmd":
        import jax

        jax.config.update("jax_enable_x64", True)
    base = rss_mb()
    try:
        runner = make_runner(spec["backend"], spec["who"], config, params, inp, spec["task"],
                             device=device, compiled=spec.get("compiled", False))
        runner.call()
    except Unavailable as err:
        return {"error": str(err)}
    except MemoryError as err:
        return {"error": f"out of memory: {err}"}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out: dict[str, Any] = {"peak_rss_mb": round(peak, 1), "setup_rss_mb": round(base, 1),
                           "increase_mb": round(peak - base, 1)}
    if spec["backend"] == "torch" and device != "cpu":
        import torch

        out["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def peak_memory(spec: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """:func:`measure` in a child process; a failure (e.g. killed for memory) is reported."""
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run([sys.executable, "-m", "dpa2_bench.memory", json.dumps(spec)],
                              capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    return json.loads(lines[-1])


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
