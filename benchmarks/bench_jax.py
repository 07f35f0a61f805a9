"""Compile time and steady-state time of dpa2_jax's jit descriptor, vs deepmd-kit.

Run: python benchmarks/bench_jax.py [--repeat N] [--presets medium large]. Every
contender gets the same inputs (deepmd-kit's own neighbor list of the 192-atom water
frame, float64) and parameters. Reported: trace (Python -> jaxpr -> HLO) and XLA
compile time of the first call, then the minimum over repeats of a compiled call
(``block_until_ready``), for the descriptor and for descriptor + forces (gradient of a
scalar of the descriptor with respect to the local coordinates, through the ghosts).
References: deepmd-kit's numpy ``DescrptDPA2.call``, our numpy core, and deepmd-kit's
own JAX backend (``deepmd.jax``, flax nnx, under ``nnx.jit``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from oracle import MODEL_DP, deepmd_descriptor, deepmd_inputs, water_frames  # noqa: E402

import dpa2_core as dc  # noqa: E402
import dpa2_jax as dj  # noqa: E402  (sets its XLA CPU flag before JAX starts)
from dpa2_core.presets import preset  # noqa: E402
from dpa2_jax.model import Extension, extend_coord  # noqa: E402

jax.config.update("jax_enable_x64", True)


def best_of(fn, repeat: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


def compiled(fn, *args) -> tuple[float, float, object]:
    """(trace + lower seconds, XLA compile seconds, executable)."""
    start = time.perf_counter()
    lowered = fn.lower(*args)
    traced = time.perf_counter()
    exe = lowered.compile()
    return traced - start, time.perf_counter() - traced, exe


def inputs(config):
    coord, atype, box = water_frames(0, (0,))
    ce, ae, nl, mp = deepmd_inputs(coord, atype, box, config.rcut, config.nsel)
    ext = Extension(ae, mp, nl, ce - coord[0][mp])
    return coord, (ce, ae, nl, mp), jax.tree.map(jnp.asarray, ext)


def ours(config, params, repeat: int) -> dict:
    coord, (ce, ae, nl, mp), ext = inputs(config)
    jp = dj.to_jax(params)
    args = tuple(jnp.asarray(x) for x in (ce, ae, nl, mp))
    fwd = jax.jit(lambda p, *a: dj.descriptor(p, config, *a).descriptor)
    tr, co, exe = compiled(fwd, jp, *args)
    row = {"fwd_trace": tr, "fwd_compile": co, "fwd": best_of(lambda: exe(jp, *args), repeat)}

    def scalar(c, p):
        d = dj.descriptor(p, config, extend_coord(c, ext), ext.atype_ext, ext.nlist,
                          ext.mapping).descriptor
        return jnp.sum(d * d)

    grad = jax.jit(jax.value_and_grad(scalar))
    c = jnp.asarray(coord)
    tr, co, exe_g = compiled(grad, c, jp)
    row.update(grad_trace=tr, grad_compile=co, grad=best_of(lambda: exe_g(c, jp), repeat))
    ref = deepmd_descriptor(dc.dump_deepmd(config, params))
    row["deepmd_np"] = best_of(lambda: ref.call(ce.reshape(1, -1), ae, nl, mp), repeat)
    row["core_np"] = best_of(lambda: dc.descriptor(params, config, ce, ae, nl, mp), repeat)
    want = ref.call(ce.reshape(1, -1), ae, nl, mp)[0]
    row["err"] = float(np.abs(np.asarray(exe(jp, *args)) - want).max() / np.abs(want).max())
    return row


def deepmd_jax(config, params, repeat: int) -> dict:
    """deepmd-kit's own JAX backend; importing it sets jax_enable_x64 (and TF32 matmuls,
    irrelevant on CPU), so it runs after our measurements."""
    try:
        from deepmd.jax.descriptor.dpa2 import DescrptDPA2
        from deepmd.jax.env import nnx
    except Exception as err:  # noqa: BLE001 - report, do not fail the benchmark
        return {"djax_error": repr(err)}
    _, (ce, ae, nl, mp), _ = inputs(config)
    model = DescrptDPA2.deserialize(dc.dump_deepmd(config, params))
    fn = nnx.jit(lambda m, *a: m.call(*a)[0])
    args = tuple(jnp.asarray(x) for x in (ce.reshape(1, -1), ae, nl, mp))
    start = time.perf_counter()
    jax.block_until_ready(fn(model, *args))
    first = time.perf_counter() - start
    return {"djax_first": first, "djax": best_of(lambda: fn(model, *args), repeat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--presets", nargs="*", default=["medium"],
                        help="water-example presets besides the shared trained model")
    args = parser.parse_args()
    models = {"shared trained model (small, 3 layers)": dc.load_deepmd(MODEL_DP)}
    for name in args.presets:
        config = preset(name)
        models[f"{name} preset ({config.repformer.nlayers} layers)"] = (
            config, dc.init_params(config))
    rows = {name: ours(c, p, args.repeat) for name, (c, p) in models.items()}
    for name, (c, p) in models.items():
        rows[name].update(deepmd_jax(c, p, args.repeat))
    print_tables(rows)


def print_tables(rows: dict) -> None:
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, float64, 192-atom water frame\n")
    print("| model | trace (s) | XLA compile (s) | jit call (s) | deepmd numpy (s) | "
          "speed-up vs deepmd numpy | dpa2_core numpy (s) | deepmd.jax first call (s) | "
          "deepmd.jax jit call (s) | ours / deepmd.jax | max rel. diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        dj_first = f"{r['djax_first']:.2f}" if "djax" in r else "n/a"
        dj_call = f"{r['djax']:.3f}" if "djax" in r else "n/a"
        ratio = f"{r['fwd'] / r['djax']:.2f}" if "djax" in r else "n/a"
        print(f"| {name} | {r['fwd_trace']:.2f} | {r['fwd_compile']:.2f} | {r['fwd']:.3f} | "
              f"{r['deepmd_np']:.3f} | {r['deepmd_np'] / r['fwd']:.1f}× | {r['core_np']:.3f} | "
              f"{dj_first} | {dj_call} | {ratio} | {r['err']:.1e} |")
    print("\ndescriptor + forces (jax.value_and_grad w.r.t. local coordinates):\n")
    print("| model | trace (s) | XLA compile (s) | jit call (s) | call / descriptor call |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['grad_trace']:.2f} | {r['grad_compile']:.2f} | {r['grad']:.3f} | "
              f"{r['grad'] / r['fwd']:.1f} |")
    for name, r in rows.items():
        if "djax_error" in r:
            print(f"\ndeepmd.jax unavailable for {name}: {r['djax_error']}")


if __name__ == "__main__":
    main()
