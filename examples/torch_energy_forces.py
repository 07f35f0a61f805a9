"""Energies, forces and virial of a trained deepmd-kit DPA-2 model with dpa2_torch.

Loads deepmd-kit's water model (the .dp file, or the PyTorch training checkpoint of the
same model), evaluates the bundled 192-atom water frame, and shows the descriptor module
on its own (a float32 copy, and ``torch.compile``).

    python examples/torch_energy_forces.py [--model ../shared/models/water_dpa2_small.dp]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from dpa2_core.presets import water_frame
from dpa2_torch import DescrptDPA2, EnergyModel

MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / "water_dpa2_small.dp"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(MODEL), help=".dp/.yaml/.json or deepmd .pt checkpoint")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow start)")
    args = p.parse_args()

    coord, atype, box, symbols = water_frame()  # (192, 3), (192,), (3, 3)
    c, a, b = (torch.from_numpy(x)[None] for x in (coord, atype, box))
    model = EnergyModel.from_deepmd(args.model).eval()
    out = model(c, a, b)
    print(f"energy {out['energy'].item():.6f} eV for {len(atype)} atoms ({symbols})")
    print(f"max |force| {out['force'].abs().max().item():.4f} eV/Å")
    print(f"virial diagonal {out['virial'][0].diagonal().tolist()} eV")

    desc: DescrptDPA2 = model.descriptor
    d64 = desc.forward_structure(c[0], a[0], b[0]).descriptor
    d32 = DescrptDPA2.from_params(desc.config, desc.numpy_params()).float()
    diff = (d32.forward_structure(c[0].float(), a[0], b[0].float()).descriptor - d64).abs()
    print(f"descriptor {tuple(d64.shape)}; float32 copy differs by {diff.max().item():.1e}")

    if args.compile:
        from dpa2_torch.neighbors import extend_coord, neighbors_for

        nb = neighbors_for(c, a, desc.config, b)
        inputs = (extend_coord(c, nb), nb.atype_ext, nb.nlist, nb.mapping)
        compiled = torch.compile(desc, fullgraph=True)
        start = time.perf_counter()
        compiled(*inputs)
        print(f"torch.compile: first call {time.perf_counter() - start:.1f} s")
        for name, fn in (("eager", desc), ("compiled", compiled)):
            start = time.perf_counter()
            for _ in range(3):
                fn(*inputs)
            print(f"{name}: {(time.perf_counter() - start) / 3 * 1e3:.0f} ms per descriptor call")


if __name__ == "__main__":
    main()
