"""Neighbor-list build time and peak memory vs system size: dpa2_core vs deepmd-kit.

Run: python benchmarks/bench_neighbor_list.py [--sizes 1 2 4 8] [--repeat 3]
Systems: frame 0 of shared/data/water/data_0 (192 atoms, 12.44 Å cell) replicated
n×n×n; cutoff and nsel of the shared trained model (rcut 6 Å, nsel 120). Every
(builder, size) runs in a fresh subprocess, after imports, loading and a warm-up
build of a 3-atom box. Peak memory: growth of the peak RSS (``VmHWM``, reset just
before) over the RSS before the first build. Time: minimum over ``--repeat`` builds
(the first one is also reported on its own: it pays the page faults of fresh memory).
Writes a markdown table into docs/guides/neighbor_list.md (between markers) and a plot
docs/neighbor_list.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WATER = SHARED / "data" / "water" / "data_0"
MODEL_DP = SHARED / "models" / "water_dpa2_small.dp"
BUILDERS = ("dpa2_core", "vesin pairs only", "deepmd-kit", "dpa2_core dense reference")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def water_box(n: int):
    """Frame 0 replicated n×n×n: coord (N, 3), atype (N,), box (3, 3), float64."""
    coord = np.load(WATER / "set.000" / "coord.npy")[0].astype(np.float64).reshape(-1, 3)
    box = np.load(WATER / "set.000" / "box.npy")[0].astype(np.float64).reshape(3, 3)
    atype = np.loadtxt(WATER / "type.raw", dtype=np.int64)
    grid = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)
    shifts = grid.astype(np.float64) @ box
    return ((coord[None] + shifts[:, None]).reshape(-1, 3), np.tile(atype, n**3), box * n)


def make_builder(name: str, rcut: float, nsel: int):
    """A function (coord, atype, box) -> anything, for one builder."""
    import dpa2_core as dc

    config, _ = dc.load_deepmd(MODEL_DP)
    if name == "dpa2_core":
        return lambda c, t, b: dc.build_neighbor_list(c, t, config, b)
    if name == "dpa2_core dense reference":
        return lambda c, t, b: dc.build_neighbor_list(c, t, config, b, engine="reference")
    if name == "vesin pairs only":
        import vesin

        search = vesin.NeighborList(cutoff=rcut, full_list=True)
        return lambda c, t, b: search.compute(c, b, True, quantities="ijSd")
    from deepmd.dpmodel.utils.nlist import extend_input_and_build_neighbor_list

    return lambda c, t, b: extend_input_and_build_neighbor_list(
        c.reshape(1, -1), t[None], rcut, [nsel], mixed_types=True, box=b.reshape(1, 9))


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024  # kB
    raise KeyError(key)


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) so the next peak is the build's own."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def worker(name: str, n: int, repeat: int, rcut: float, nsel: int) -> dict:
    """Measure one (builder, size) in this (fresh) process."""
    build = make_builder(name, rcut, nsel)
    coord, atype, box = water_box(n)
    tiny = water_box(1)
    build(tiny[0][:3], tiny[1][:3], tiny[2])  # imports, thread pools, first-call costs
    before = _status_mib("VmRSS:")
    reset_peak()
    start = time.perf_counter()
    build(coord, atype, box)
    first = time.perf_counter() - start
    peak = _status_mib("VmHWM:") - before
    times = [first]
    for _ in range(repeat - 1):
        start = time.perf_counter()
        build(coord, atype, box)
        times.append(time.perf_counter() - start)
    return {"builder": name, "atoms": len(atype), "time_s": min(times), "first_s": first,
            "peak_mib": max(peak, 0.0)}


def measure(name: str, n: int, repeat: int, rcut: float, nsel: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, str(n), str(repeat), str(rcut),
           str(nsel)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def table(rows: list[dict], skipped: list[str]) -> str:
    lines = ["| atoms | builder | time (s) | first call (s) | peak memory (MiB) | vs deepmd-kit |",
             "|---:|---|---:|---:|---:|---:|"]
    ref = {r["atoms"]: r["time_s"] for r in rows if r["builder"] == "deepmd-kit"}
    for r in sorted(rows, key=lambda r: (r["atoms"], BUILDERS.index(r["builder"]))):
        speed = f"{ref[r['atoms']] / r['time_s']:.0f}×" if r["atoms"] in ref and \
            r["builder"].startswith("dpa2_core") else ""
        lines.append(f"| {r['atoms']:,} | {r['builder']} | {r['time_s']:.3f} | "
                     f"{r['first_s']:.3f} | {r['peak_mib']:.0f} | {speed} |")
    return "\n".join(lines + [""] + [f"- {s}" for s in skipped])


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in BUILDERS:
        sel = sorted((r for r in rows if r["builder"] == name), key=lambda r: r["atoms"])
        if not sel:
            continue
        n = [r["atoms"] for r in sel]
        axes[0].loglog(n, [r["time_s"] for r in sel], "o-", label=name)
        axes[1].loglog(n, [max(r["peak_mib"], 1.0) for r in sel], "o-", label=name)
    ours = sorted((r for r in rows if r["builder"] == "dpa2_core"), key=lambda r: r["atoms"])
    if ours:
        n = np.array([r["atoms"] for r in ours], dtype=float)
        for ax, key in zip(axes, ("time_s", "peak_mib"), strict=True):
            ax.loglog(n, ours[-1][key] * n / n[-1], "k:", lw=1, label="∝ atoms")
    for ax, what in zip(axes, ("build time (s)", "peak RSS growth (MiB)"), strict=True):
        ax.set_xlabel("atoms (replicated water)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Neighbor list (rcut 6 Å, nsel 120), 2-core CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_doc(path: Path, text: str) -> None:
    doc = path.read_text() if path.exists() else f"{BEGIN}\n{END}\n"
    head, rest = doc.split(BEGIN)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--deepmd-max-atoms", type=int, default=1536)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "guides" / "neighbor_list.md")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "neighbor_list.png")
    args = parser.parse_args()
    import dpa2_core as dc

    config, _ = dc.load_deepmd(MODEL_DP)
    rows, skipped = [], []
    for n in args.sizes:
        atoms = 192 * n**3
        for name in BUILDERS:
            if name == "deepmd-kit" and atoms > args.deepmd_max_atoms:
                skipped.append(f"deepmd-kit at {atoms:,} atoms: skipped (its dense builder "
                               f"holds nloc × 27·nloc displacement vectors: at least "
                               f"{atoms * 27 * atoms * 3 * 8 / 1e9:,.0f} GB here)")
                continue
            if name == "dpa2_core dense reference" and atoms > 192:
                continue
            reps = 1 if name == "deepmd-kit" and atoms > 192 else args.repeat
            rows.append(measure(name, n, reps, config.rcut, config.nsel))
            print(json.dumps(rows[-1]), flush=True)
    text = table(rows, skipped)
    print(text)
    write_doc(args.doc, text)
    plot(rows, args.plot)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        name, n, repeat, rcut, nsel = sys.argv[2:7]
        print(json.dumps(worker(name, int(n), int(repeat), float(rcut), int(nsel))))
    else:
        main()
