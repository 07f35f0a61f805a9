"""Where the time goes: torch.profiler of torch forward+force, cProfile of numpy forward.

    python benchmarks/profile_paths.py [--natoms 192] [--config medium] [--dtype float64]
                                       [--what torch numpy] [--rows 25]

Prints the torch operator table (self CPU time) and the numpy core functions by
cumulative time; results are summarised in ``benchmarks/PROFILE.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

from dpa2_bench.runners import make_runner
from dpa2_bench.structures import config_for, inputs_for, params_for

__all__: list[str] = []


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--natoms", type=int, default=192)
    p.add_argument("--config", default="medium")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--what", nargs="+", default=["torch", "numpy"])
    p.add_argument("--rows", type=int, default=25)
    args = p.parse_args()
    config = config_for(args.config, args.dtype)
    params = params_for(config)
    inp = inputs_for(config, args.natoms)
    if "torch" in args.what:
        from torch.profiler import ProfilerActivity, profile

        r = make_runner("torch", "ours", config, params, inp, "force")
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            r.call()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
        print(prof.key_averages(group_by_input_shape=True).table(
            sort_by="self_cpu_time_total", row_limit=args.rows))
    if "numpy" in args.what:
        r = make_runner("numpy", "ours", config, params, inp, "forward")
        prof = cProfile.Profile()
        prof.enable()
        r.call()
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.rows)


if __name__ == "__main__":
    main()
