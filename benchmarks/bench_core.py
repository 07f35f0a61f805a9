"""Side-by-side timing of dpa2_core.descriptor against deepmd-kit's numpy DescrptDPA2.call.

Run: python benchmarks/bench_core.py [--repeat N]. Both get identical inputs (deepmd-kit's
own neighbor list of a 192-atom water frame) and parameters; the minimum over repeats is
reported, after one warm-up call each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from oracle import MODEL_DP, deepmd_descriptor, deepmd_inputs, water_frames  # noqa: E402

import dpa2_core as dc  # noqa: E402
from dpa2_core.presets import preset  # noqa: E402


def best_of(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(name: str, config, params, repeat: int) -> tuple[str, float, float, float]:
    coord, atype, box = water_frames(0, (0,))
    ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, config.nsel)
    theirs = deepmd_descriptor(dc.dump_deepmd(config, params))
    t_ref = best_of(lambda: theirs.call(ce.reshape(1, -1), ae, nl, mp), repeat)
    t_ours = best_of(lambda: dc.descriptor(params, config, ce, ae, nl, mp), repeat)
    ref = theirs.call(ce.reshape(1, -1), ae, nl, mp)[0]
    ours = dc.descriptor(params, config, ce, ae, nl, mp).descriptor
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    return name, t_ref, t_ours, err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = [compare("shared trained model (small, 3 layers)", *dc.load_deepmd(MODEL_DP),
                    args.repeat)]
    for name in ("small", "medium"):
        config = preset(name)
        rows.append(compare(f"{name} preset", config, dc.init_params(config), args.repeat))
    print("| model | deepmd-kit (s) | dpa2_core (s) | speed-up | max rel. diff |")
    print("|---|---|---|---|---|")
    for name, t_ref, t_ours, err in rows:
        print(f"| {name} | {t_ref:.3f} | {t_ours:.3f} | {t_ref / t_ours:.2f}× | {err:.1e} |")


if __name__ == "__main__":
    main()
