"""Shared pieces of the artifact tests: the exported model, the three systems, and a
subprocess in which dpa2 cannot be imported (what a deployment host sees)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import cluster, random_stats, tiny_dict
from oracle import water_frames

import dpa2_core as dc
from dpa2_core.io.deepmd_model import DeepmdModel
from dpa2_core.model.fitting import FittingConfig, init_fitting_params
from dpa2_core.neighbors.builder import build_neighbor_list

SYSTEMS = ("water192", "box1536", "cluster")

# Installed first in the host process: any import of our packages fails.
BLOCKER = textwrap.dedent('''
    import importlib.abc, sys
    OURS = ("dpa2_core", "dpa2_torch", "dpa2_jax", "dpa2_cli")
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in OURS:
                raise ImportError(f"{name}: blocked (a host without dpa2)")
    sys.meta_path.insert(0, Blocker())
    for name in OURS:
        try:
            __import__(name)
        except ImportError:
            continue
        raise SystemExit(f"{name} imported despite the blocker")
''')
# The host's whole program after the blocker: read inputs, run every artifact, save.
HOST_TAIL = textwrap.dedent('''
    import json
    import numpy as np
    inputs = np.load(sys.argv[1])
    jobs = json.loads(sys.argv[2])
    out = {}
    for tag, path in jobs.items():
        program, meta = load(path)
        out[f"{tag}/metadata"] = np.asarray(json.dumps(meta))
        for system in SYSTEMS:
            args = [inputs[f"{system}/{name}"] for name in
                    ("coord_ext", "atype_ext", "nlist", "mapping")]
            result = run(program, meta, args)
            for o in meta["outputs"]:  # the contract read back from the artifact
                out[f"{tag}/{system}/{o['name']}"] = np.asarray(result[o["name"]],
                                                                 dtype=np.float64)
    np.savez(sys.argv[3], **out)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in OURS)
    if leaked:
        raise SystemExit(f"imported without being asked: {leaked}")
''')


def tiny_model(seed: int = 0) -> DeepmdModel:
    """A whole energy model (numpy) of the TINY descriptor with non-trivial statistics,
    a (8, 8) fitting net and a non-zero ``out_bias``."""
    config = dc.DPA2Config.from_dict(tiny_dict())
    params = random_stats(dc.init_params(config, seed), seed)
    fcfg = FittingConfig.from_input({"neuron": [8, 8]}, config.ntypes, config.dim_out)
    out_bias = np.random.default_rng(seed).normal(size=config.ntypes)
    return DeepmdModel(config, params, fcfg, init_fitting_params(fcfg, seed), out_bias)


def structures() -> dict[str, tuple]:
    """(coord (1, n, 3), atype (1, n), box (1, 3, 3) or None) of the three systems: the
    192-atom water frame, it replicated 2x2x2 (1,536 atoms) and a cluster (no ghosts)."""
    coord, atype, box = water_frames(0, (0,))
    shifts = np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    big = np.concatenate([coord[0] + s @ box[0] for s in shifts])[None]
    c, a = cluster(24)
    return {"water192": (coord, atype, box),
            "box1536": (big, np.tile(atype, (1, 8)), 2 * box),
            "cluster": (c, a, None)}


def lower_inputs(config, systems: dict) -> dict[str, np.ndarray]:
    """``{"<system>/<input>": array}``: the artifact inputs, built by the core's builder."""
    out = {}
    for name, (coord, atype, box) in systems.items():
        ce, ae, mp, nl = build_neighbor_list(coord, atype, config, box)
        out.update({f"{name}/coord_ext": np.asarray(ce), f"{name}/atype_ext": np.asarray(ae),
                    f"{name}/nlist": np.asarray(nl), f"{name}/mapping": np.asarray(mp)})
    return out


def local_force(force_ext: np.ndarray, mapping: np.ndarray, nloc: int) -> np.ndarray:
    """Sum the extended rows onto their local atom (what a host does with force_ext)."""
    out = np.zeros((force_ext.shape[0], nloc, 3))
    for f in range(force_ext.shape[0]):
        np.add.at(out[f], mapping[f], force_ext[f])
    return out


def run_host(tmp_path: Path, loader: str, inputs: dict, jobs: dict[str, str],
             timeout: float = 300) -> dict[str, np.ndarray]:
    """Run ``BLOCKER + loader + HOST_TAIL`` in a fresh interpreter outside the repository
    (no PYTHONPATH): ``loader`` defines ``load(path) -> (program, metadata)`` and
    ``run(program, metadata, [coord_ext, atype_ext, nlist, mapping]) -> dict``."""
    script = tmp_path / "host.py"
    script.write_text(BLOCKER + f"SYSTEMS = {SYSTEMS!r}\n" + textwrap.dedent(loader)
                      + HOST_TAIL)
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "inputs.npz"),
                           json.dumps(jobs), str(tmp_path / "out.npz")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(tmp_path / "out.npz") as f:
        return {k: (json.loads(str(f[k])) if k.endswith("/metadata") else f[k]) for k in f}


def check_calculator_on_artifact(calculator: type, path: str, dtype: str, tol: float) -> None:
    """``calculator(path)`` on an exported artifact gives what ``calculator`` gives on the
    eager model it was exported from (periodic water and a small triclinic box), runs in
    the artifact's precision, and refuses another precision or a head."""
    from md_helpers import small_triclinic, water

    for make in (water, small_triclinic):
        ref, got = make(), make()
        ref.calc = calculator(tiny_model(), dtype=dtype)
        got.calc = calculator(path)
        assert got.calc.dtype_name == dtype
        assert got.get_potential_energies().shape == (len(got),)
        for prop in ("get_potential_energy", "get_potential_energies", "get_forces",
                     "get_stress"):
            want = np.asarray(getattr(ref, prop)())
            have = np.asarray(getattr(got, prop)())
            scale = max(float(np.abs(want).max()), 1e-300)
            assert float(np.abs(have - want).max()) <= tol * scale, (make.__name__, prop)
    other = "float32" if dtype == "float64" else "float64"
    name = Path(path).name
    with pytest.raises(ValueError, match=rf"dtype='{other}': {name} is a {dtype} artifact"):
        calculator(path, dtype=other)
    with pytest.raises(ValueError, match=rf"head='h': {name} is an exported single model"):
        calculator(path, head="h")
