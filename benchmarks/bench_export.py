"""Exported artifacts vs eager models vs deepmd-kit's PyTorch backend: energy + forces.

One process, side by side (absolute times swing 2x on a shared host; read the ratios):
the lower call (coord_ext, atype_ext, nlist, mapping) -> energy and forces of the whole
model at 192 atoms (a water frame) and 1,536 atoms (it replicated 2x2x2), for

* ``.pte``  (``torch.export.load(...).module()``), ``.pt2`` (AOTInductor, optional),
  ``.jaxexport`` (``jax.export.deserialize(...).call``, jitted),
* eager: :func:`dpa2_torch.export.lower_forward` (autograd) and
  :func:`dpa2_jax.export.lower_forward` under ``jax.jit``,
* deepmd-kit 3.2.0 ``deepmd.pt`` ``forward_lower`` (with the stand-ins of ``_deepmd_pt``).

Export times are printed too. ``.pt2`` needs an AOTInductor compile (many minutes on a
2-core host): ``--pt2`` builds it, ``--pt2-file PATH`` reuses one.

    python benchmarks/bench_export.py [--model M.dp] [--repeat 5] [--threads 2] [--pt2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _deepmd_pt import install_stubs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT.parent / "shared" / "models" / "water_dpa2_small.dp"
WATER = ROOT.parent / "shared" / "data" / "water" / "data_0"


def best_of(fn, repeat: int) -> float:
    fn()  # warm-up (jax compile, first-call allocations)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def systems() -> dict[int, tuple]:
    coord = np.load(WATER / "set.000" / "coord.npy")[:1].reshape(1, -1, 3).astype(np.float64)
    box = np.load(WATER / "set.000" / "box.npy")[:1].reshape(1, 3, 3).astype(np.float64)
    atype = np.loadtxt(WATER / "type.raw", dtype=np.int64)[None]
    shifts = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    big = np.concatenate([coord[0] + s @ box[0] for s in shifts])[None]
    return {192: (coord, atype, box), 1536: (big, np.tile(atype, (1, 8)), 2 * box)}


def deepmd_runner(model_path: Path):
    install_stubs()
    import torch
    from deepmd.pt.model.model import BaseModel

    from dpa2_core.io.deepmd_files import read_deepmd_file

    model = BaseModel.deserialize(read_deepmd_file(model_path)["model"]).eval()

    def run(args):
        ce, ae, nl, mp = (torch.from_numpy(a) for a in args)
        out = model.forward_lower(ce.reshape(ce.shape[0], -1).requires_grad_(False), ae, nl,
                                  mp)
        return out["energy"].detach(), out["extended_force"].detach()

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=MODEL)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pt2", action="store_true", help="also build and time a .pt2")
    p.add_argument("--pt2-file", type=Path, default=None, help="reuse this .pt2")
    args = p.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    import torch

    torch.set_num_threads(args.threads)
    import dpa2_jax as dj
    import dpa2_torch as dt
    from dpa2_core.io.loader import load_model
    from dpa2_core.neighbors.builder import build_neighbor_list
    from dpa2_jax.export import lower_forward as jax_lower
    from dpa2_torch.export import lower_forward as torch_lower

    record = load_model(args.model)
    folder = Path(tempfile.mkdtemp(prefix="bench_export_"))
    export_s = {}
    t = time.perf_counter()
    dt.export_model(record, folder / "m.pte")
    export_s[".pte"] = time.perf_counter() - t
    t = time.perf_counter()
    dj.export_model(record, folder / "m.jaxexport")
    export_s[".jaxexport"] = time.perf_counter() - t
    pt2 = args.pt2_file
    if args.pt2 and pt2 is None:
        pt2 = folder / "m.pt2"
        t = time.perf_counter()
        dt.export_model(record, pt2)
        export_s[".pt2"] = time.perf_counter() - t
    runners = {".pte": dt.load_exported(folder / "m.pte"),
               ".jaxexport": dj.load_exported(folder / "m.jaxexport")}
    if pt2 is not None:
        runners[".pt2"] = dt.load_exported(pt2)
    eager_torch = dt.load_model(record).eval()
    config, params = dj.from_record(record)
    jitted = jax.jit(jax_lower, static_argnums=1)
    deepmd = deepmd_runner(args.model)

    print(f"model {args.model.name}; torch threads {args.threads}; best of {args.repeat}")
    print("export time: " + ", ".join(f"{k} {v:.1f} s" for k, v in export_s.items()))
    print(f"{'atoms':>6} {'variant':<22} {'seconds':>9} {'vs eager torch':>15}")
    for n, (coord, atype, box) in systems().items():
        lower = [np.asarray(x) for x in build_neighbor_list(coord, atype, record.config, box)]
        ce, ae, mp, nl = lower
        args4 = (ce, ae, nl, mp)
        tensors = tuple(torch.from_numpy(a) for a in args4)
        ref = torch_lower(eager_torch, *tensors)
        cases = {
            "eager torch (autograd)": lambda t=tensors: torch_lower(eager_torch, *t),
            "eager jax (jit)": lambda a=args4: jax.block_until_ready(
                jitted(params, config, *a)),
            "deepmd-kit pt": lambda a=args4: deepmd(a),
        }
        for k, r in runners.items():
            cases[f"exported {k}"] = (lambda r=r, a=args4: r(*a))
        times = {k: best_of(fn, args.repeat) for k, fn in cases.items()}
        base = times["eager torch (autograd)"]
        for k, s in times.items():
            print(f"{n:>6} {k:<22} {s:>9.4f} {base / s:>14.2f}x")
        for k, r in runners.items():  # the numbers agree (a benchmark of wrong code is moot)
            e = r(*args4)["energy"]
            assert np.allclose(e, ref["energy"].numpy(), rtol=1e-10), k


if __name__ == "__main__":
    main()
