"""The benchmark suite of issue 10 (thin wrapper of :mod:`dpa2_bench`).

    python benchmarks/bench_suite.py --sizes 192 1536 --dtype float64 float32 \
        --backends numpy torch jax --json out.json --md out.md [--compile] [--memory]

Side by side with deepmd-kit 3.2.0 in one process (a message when it is missing).
12,288 atoms (``--sizes 12288``) is slow and opt-in.
"""

from __future__ import annotations

import sys

from dpa2_bench import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
