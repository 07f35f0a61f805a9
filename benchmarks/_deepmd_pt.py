"""Run deepmd-kit's ``dp --pt`` beside torch 2.13 (benchmarks only, never the test suite).

The stand-ins live in :mod:`dpa2_bench.deepmd_pt` (see there why they are needed).

    python benchmarks/_deepmd_pt.py train input.json
"""

from __future__ import annotations

import sys

from dpa2_bench.deepmd_pt import install_stubs

__all__ = ["install_stubs"]

if __name__ == "__main__":
    install_stubs()
    from deepmd.pt.entrypoints.main import main

    main(sys.argv[1:])
