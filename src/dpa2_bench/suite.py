"""The suite: every (config, dtype, size, backend, task) case, ours beside deepmd-kit's."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .machine import describe, matmul_rate, release_memory
from .memory import peak_memory
from .report import markdown, write_json, write_markdown
from .runners import Runner, Unavailable, make_runner
from .structures import config_for, inputs_for, params_for

__all__ = ["DESCRIPTION", "add_arguments", "alternate", "main", "parse", "run", "run_suite"]

TASKS = {"numpy": ("forward",), "torch": ("forward", "force"), "jax": ("forward", "force")}


DESCRIPTION = ("dpa2 against deepmd-kit 3.2.0, side by side in one process: alternating "
               "runs, medians, ratios ours/deepmd, parity of the outputs")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def alternate(runners: Sequence[Runner], repeat: int, clock: str = "wall") -> list[list[float]]:
    """Seconds of ``repeat`` calls of each runner, interleaved ``a b a b ...``.

    ``clock="cpu"``: process CPU time, the stable measure on a shared machine when every
    library runs one thread (``--threads 1`` and ``OMP_NUM_THREADS=1``).
    """
    now = CLOCKS[clock]
    times: list[list[float]] = [[] for _ in runners]
    for _ in range(repeat):
        for i, r in enumerate(runners):
            start = now()
            r.call()
            times[i].append(now() - start)
    return times


def _parity(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _case(config_name: str, dtype: str, natoms: int, backend: str, task: str, *,
          compiled: bool, repeat: int, deepmd: bool, flops: bool, device: str,
          log: Callable[[str], None], clock: str = "wall") -> dict[str, Any]:
    config = config_for(config_name, dtype)
    params = params_for(config)
    inp = inputs_for(config, natoms)
    row: dict[str, Any] = {"config": config_name, "dtype": dtype, "natoms": natoms,
                           "backend": backend + (" compiled" if compiled else ""),
                           "task": task, "nall": int(inp.ext.mapping.shape[1])}
    runners: list[Runner] = []
    for who in ("ours", "deepmd") if deepmd else ("ours",):
        try:
            runners.append(make_runner(backend, who, config, params, inp, task, device=device,
                                       compiled=compiled))
        except Unavailable as err:
            row[f"{who}_error"] = str(err)
            log(f"  {who}: not measured: {err}")
    if not runners or runners[0].name.startswith("deepmd"):
        return row
    start = time.perf_counter()
    runners[0].call()
    once = time.perf_counter() - start
    n = repeat if once < 5.0 else max(1, min(repeat, 3))
    times = alternate(runners, n, clock)
    for r, t in zip(runners, times, strict=True):
        who = "ours" if r.name.startswith("dpa2") else "deepmd"
        row[f"{who}_name"] = r.name
        row[f"{who}_s"] = statistics.median(t)
        row[f"{who}_all_s"] = [round(x, 5) for x in t]
        if r.compile_s is not None:
            row[f"{who}_compile_s"] = r.compile_s
        if flops:
            try:
                f = r.flops()
            except Exception as err:  # noqa: BLE001 - counting is optional
                log(f"  {r.name}: no FLOP count ({err!r})")
                f = None
            if f:
                row[f"{who}_gflop"] = f / 1e9
    if "deepmd_s" in row:
        row["ratio"] = row["ours_s"] / row["deepmd_s"]
        row["max_rel_diff"] = _parity(runners[0].output(), runners[1].output())
    del runners
    release_memory()
    return row


def _memory(row: dict[str, Any], device: str, deepmd: bool) -> None:
    backend, compiled = row["backend"].split(" ")[0], row["backend"].endswith("compiled")
    for who in ("ours", "deepmd") if deepmd else ("ours",):
        if f"{who}_s" not in row:
            continue
        spec = {k: row[k] for k in ("config", "dtype", "natoms", "task")}
        spec.update(backend=backend, who=who, device=device, compiled=compiled)
        row[f"{who}_memory"] = peak_memory(spec)


def _deepmd_installed(log: Callable[[str], None]) -> bool:
    try:
        import deepmd as _  # noqa: F401
    except ImportError:
        log("deepmd-kit is not installed: timing dpa2 alone (pip install "
            "deepmd-kit==3.2.0 for the side-by-side ratios)")
        return False
    return True


def _roofline(row: dict[str, Any], rate: float) -> None:
    """The fraction of the measured matmul rate (GFLOP/s) each contender reached."""
    for who in ("ours", "deepmd"):
        if f"{who}_gflop" in row and f"{who}_s" in row:
            row[f"{who}_roofline"] = row[f"{who}_gflop"] / row[f"{who}_s"] / rate


def run_suite(
    sizes: Sequence[int] = (192, 1536),
    dtypes: Sequence[str] = ("float64", "float32"),
    backends: Sequence[str] = ("numpy", "torch", "jax"),
    configs: Sequence[str] = ("medium",),
    tasks: Sequence[str] | None = None,
    *,
    repeat: int = 5,
    compile: bool = False,
    memory: bool = False,
    flops: bool = True,
    deepmd: bool = True,
    device: str = "cpu",
    threads: int | None = None,
    clock: str = "wall",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every case; the JSON-able result (``machine``, ``settings``, ``rows``).

    ``tasks`` restricts the tasks ("forward", "force"); ``compile`` adds ``torch.compile``d
    torch rows; ``memory`` measures peak RSS of each contender in a fresh process;
    ``threads`` sets torch's intra-op threads (default: torch's own choice); ``clock``
    "wall" or "cpu" (process time: stable on a loaded machine with one thread).
    """
    if threads:
        with contextlib.suppress(ImportError):
            import torch

            torch.set_num_threads(threads)
    deepmd = deepmd and _deepmd_installed(log)
    settings = {"sizes": list(sizes), "dtypes": list(dtypes), "backends": list(backends),
                "configs": list(configs), "repeat": repeat, "device": device, "clock": clock,
                "threads": threads,
                "scalar": "force = gradient of sum(D**2) w.r.t. local coordinates"}
    result: dict[str, Any] = {"machine": describe(), "settings": settings, "rows": []}
    result["machine"]["matmul_gflops"] = {dt: matmul_rate(dt, device=device) / 1e9
                                          for dt in dtypes}
    variants = [(b, False) for b in backends]
    if compile and "torch" in backends:
        variants.append(("torch", True))
    for config_name, dtype, natoms, (backend, compiled) in itertools.product(
            configs, dtypes, sizes, variants):
        for task in TASKS[backend]:
            if tasks and task not in tasks:
                continue
            log(f"{config_name} {dtype} {natoms} {backend}{' compiled' if compiled else ''} "
                f"{task} ...")
            row = _case(config_name, dtype, natoms, backend, task, compiled=compiled,
                        repeat=repeat, deepmd=deepmd, flops=flops, device=device, log=log,
                        clock=clock)
            if memory:
                _memory(row, device, deepmd)
            _roofline(row, result["machine"]["matmul_gflops"][dtype])
            result["rows"].append(row)
            log("  " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in row.items()
                                 if k.endswith(("_s", "ratio", "diff"))))
    return result


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``dpa2 bench`` (and of ``python -m dpa2_bench``)."""
    p.add_argument("--sizes", type=int, nargs="+", default=[192, 1536], metavar="N",
                   help="atoms, 192 * k**3")
    p.add_argument("--dtype", nargs="+", default=["float64", "float32"],
                   choices=["float64", "float32"], metavar="DTYPE",
                   help="float64, float32")
    p.add_argument("--backends", nargs="+", default=["numpy", "torch", "jax"],
                   choices=["numpy", "torch", "jax"], metavar="NAME",
                   help="numpy, torch, jax")
    p.add_argument("--configs", nargs="+", default=["medium"], choices=["small", "medium"],
                   metavar="NAME", help="small, medium")
    p.add_argument("--tasks", nargs="+", default=None, choices=["forward", "force"],
                   metavar="TASK", help="forward, force (forward+force); default: all a "
                   "backend has")
    p.add_argument("--repeat", type=int, default=5, help="timed calls per contender")
    p.add_argument("--compile", action="store_true", help="also torch.compile'd torch")
    p.add_argument("--memory", action="store_true", help="peak RSS, one process per run")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP counts")
    p.add_argument("--no-deepmd", action="store_true", help="time dpa2 alone")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--clock", default="wall", choices=sorted(CLOCKS),
                   help="wall, or cpu: process time (with --threads 1)")
    p.add_argument("--json", default=None, help="write the result here")
    p.add_argument("--md", default=None, help="write the Markdown report here")
    return p


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dpa2 bench", description=DESCRIPTION)
    return add_arguments(p).parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Run the suite the parsed options ask for; write ``--json`` and ``--md`` (the
    Markdown on stdout without either); 0 on success."""
    result = run_suite(args.sizes, args.dtype, args.backends, args.configs, args.tasks,
                       repeat=args.repeat, compile=args.compile, memory=args.memory,
                       flops=not args.no_flops, deepmd=not args.no_deepmd,
                       device=args.device, threads=args.threads, clock=args.clock)
    if args.json:
        write_json(args.json, result)
    if args.md:
        write_markdown(args.md, result)
    if not (args.json or args.md):
        print(markdown(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run, then write ``--json`` and ``--md``; 0 on success."""
    return run(parse(argv))
