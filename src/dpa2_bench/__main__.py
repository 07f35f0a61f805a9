"""``python -m dpa2_bench``: the benchmark suite's command line."""

import sys

from .suite import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
