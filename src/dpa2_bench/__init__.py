"""dpa2_bench: the benchmark suite of dpa2 against deepmd-kit 3.2.0 (issue 10, "Fast").

Side by side in one process: every contender of a case gets the same inputs (our own
neighbor list and ghost extension of a water box) and the same parameters; runs alternate
between contenders and the median of several is reported. ``run_suite`` returns the
JSON-able result; ``main(argv)`` is the command line (``python -m dpa2_bench`` or
``python benchmarks/bench_suite.py``). This package imports the core and both shims; the
core never imports it.
"""

from .suite import main, run_suite

__all__ = ["main", "run_suite"]
