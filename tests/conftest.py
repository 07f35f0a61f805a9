"""Shared fixtures: structures, small configs and the array backends every test can run on."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from oracle import WATER, water_frames  # noqa: E402

TINY = {
    "repinit": {"rcut": 4.5, "rcut_smth": 0.5, "nsel": 60, "neuron": [4, 8], "axis_neuron": 3,
                "tebd_dim": 4},
    "repformer": {"rcut": 3.5, "rcut_smth": 1.0, "nsel": 30, "nlayers": 2, "g1_dim": 12,
                  "g2_dim": 6, "axis_neuron": 2, "attn1_hidden": 5, "attn1_nhead": 2,
                  "attn2_hidden": 3, "attn2_nhead": 2},
    "ntypes": 2,
    "type_map": ["O", "H"],
}


def tiny_dict(repinit=None, repformer=None, **top) -> dict:
    """The TINY config dict with overrides merged into each section."""
    return {
        **TINY,
        "repinit": {**TINY["repinit"], **(repinit or {})},
        "repformer": {**TINY["repformer"], **(repformer or {})},
        **top,
    }


def random_stats(params: dict, seed: int = 0) -> dict:
    """Copy of ``params`` with non-trivial statistics (davg radial != 0, dstd != 1)."""
    rng = np.random.default_rng(seed)
    out = dict(params)
    for block in ("repinit", "three_body", "repformer"):
        if block not in params:
            continue
        p = dict(params[block])
        shape = p["davg"].shape
        p["davg"] = (rng.normal(0.0, 0.1, shape) + np.array([0.3, 0.0, 0.0, 0.0])).astype(
            p["davg"].dtype)
        p["dstd"] = rng.uniform(0.5, 1.5, shape).astype(p["dstd"].dtype)
        out[block] = p
    return out


def cluster(n: int = 24, seed: int = 0, types: int = 2):
    """A non-periodic random cluster with no atoms closer than 0.9 Å: (1, n, 3), (1, n)."""
    rng = np.random.default_rng(seed)
    pts = []
    while len(pts) < n:
        p = rng.uniform(0.0, 6.0, 3)
        if all(np.linalg.norm(p - q) > 0.9 for q in pts):
            pts.append(p)
    return np.asarray(pts)[None], rng.integers(0, types, (1, n))


def triclinic(n: int = 20, seed: int = 1, types: int = 2):
    """A small right-handed triclinic cell (shorter than the cutoff): coord, atype, box."""
    rng = np.random.default_rng(seed)
    box = np.array([[5.0, 0.0, 0.0], [1.2, 4.6, 0.0], [0.7, -0.9, 5.3]])
    pts = []
    while len(pts) < n:
        p = rng.uniform(0.0, 1.0, 3) @ box
        if all(np.linalg.norm(p - q) > 0.9 for q in pts):
            pts.append(p)
    return np.asarray(pts)[None], rng.integers(0, types, (1, n)), box[None]


STRUCTURES = {
    "water": lambda: water_frames(0, (0, 1)),
    "cluster": lambda: (*cluster(), None),
    "triclinic": triclinic,
}


@pytest.fixture(params=sorted(STRUCTURES))
def structure(request):
    return STRUCTURES[request.param]()


def _strict(x):
    import array_api_strict as xs

    xs.set_array_api_strict_flags(boolean_indexing=False, data_dependent_shapes=False)
    return xs.asarray(np.asarray(x))


def _torch(x):
    import torch

    return torch.from_numpy(np.array(x))


def _jax(x):
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax.numpy.asarray(np.asarray(x))


BACKENDS = {"numpy": np.asarray, "array_api_strict": _strict, "torch": _torch, "jax": _jax}


@pytest.fixture(params=sorted(BACKENDS))
def to_backend(request):
    """A converter from numpy to one array backend (skipped if that backend is absent)."""
    module = {"array_api_strict": "array_api_strict"}.get(request.param, request.param)
    pytest.importorskip(module)
    return BACKENDS[request.param]


_JITTED: dict = {}


def run_descriptor(params, config, coord_ext, atype_ext, nlist, mapping=None, *,
                   validate: bool = True):
    """``dpa2_core.descriptor``; on jax arrays the value checks run eagerly and the math
    under ``jax.jit`` (array-api-extra's ``lazy_xp_function`` pattern: eager jax compiles
    every primitive on its own, minutes for one call; eager equals jit is tested once,
    in tests/dpa2_jax/test_jax_parity.py)."""
    import dpa2_core as dc

    args = (coord_ext, atype_ext, nlist, mapping)
    if not type(coord_ext).__module__.startswith("jax"):
        return dc.descriptor(params, config, *args, validate=validate)
    import jax

    if validate:
        dc.model.checks.validate(config, *args)
    if config not in _JITTED:
        _JITTED[config] = jax.jit(lambda p, *a: dc.descriptor(p, config, *a, validate=False))
    return _JITTED[config](params, *args)


def neighbor_inputs(coord, atype, config, box=None):
    """(coord_ext, atype_ext, mapping, nlist) at ``config.rcut``/``config.nsel``."""
    from dpa2_core.neighbors.builder import build_neighbor_list

    return build_neighbor_list(coord, atype, config, box)


def cluster_nlist(coord: np.ndarray, atype: np.ndarray, rcut: float, nsel: int) -> np.ndarray:
    """Brute-force sorted list of an open-boundary structure: (nf, n, 3) -> (nf, n, nsel)."""
    nf, n, _ = coord.shape
    d = np.linalg.norm(coord[:, :, None] - coord[:, None], axis=-1)
    d = np.where(np.eye(n, dtype=bool) | (atype[:, None, :] < 0) | (atype[:, :, None] < 0),
                 np.inf, d)
    order = np.argsort(d, axis=-1, kind="stable")[..., :nsel]
    nlist = np.where(np.take_along_axis(d, order, -1) <= rcut, order, -1)
    pad = -np.ones((nf, n, nsel - nlist.shape[-1]), dtype=np.int64)
    return np.concatenate([nlist, pad], axis=-1)


def tiny_input(tmp: Path, steps: int = 4, systems=("data_0",), seed: int = 7,
               **training) -> Path:
    """A deepmd-kit training input with a tiny DPA-2 on the shared water data."""
    small = tiny_dict(repinit={"rcut": 4.0, "nsel": 48},
                      repformer={"rcut": 3.0, "nsel": 24, "update_g1_has_attn": False,
                                 "update_g2_has_attn": False})
    model = {"type_map": ["O", "H"],
             "descriptor": {"type": "dpa2", "repinit": small["repinit"],
                            "repformer": small["repformer"]},
             "fitting_net": {"neuron": [16, 16], "resnet_dt": True, "seed": 1},
             "data_stat_nbatch": 2}
    d = {"model": model,
         "learning_rate": {"type": "exp", "start_lr": 3e-3, "stop_lr": 3e-4, "decay_steps": 20},
         "loss": {"type": "ener", "start_pref_e": 0.2, "limit_pref_e": 1.0,
                  "start_pref_f": 100.0, "limit_pref_f": 1.0, "_comment": "ignored"},
         "training": {"training_data": {"systems": [str(WATER / s) for s in systems],
                                        "batch_size": 1},
                      "validation_data": {"systems": [str(WATER / "data_3")], "batch_size": 1},
                      "numb_steps": steps, "seed": seed, "disp_freq": 2, "save_freq": 2,
                      "stat_file": "ignored.hdf5", **training}}
    path = tmp / "input.json"
    path.write_text(json.dumps(d))
    return path


# CI sets DPA2_FORBID_SKIPS=1: a skipped test (the deepmd-kit oracle or a backend missing
# from the environment) then fails the run instead of passing quietly.
_SKIPPED: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("DPA2_FORBID_SKIPS") == "1" and _SKIPPED and exitstatus == 0:
        shown = "\n  ".join(_SKIPPED[:20])
        print(f"\nDPA2_FORBID_SKIPS=1 and {len(_SKIPPED)} test(s) skipped:\n  {shown}")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def water_pth(tmp_path_factory) -> Path:
    """The shared water model as deepmd-kit's PyTorch file, made by deepmd-kit itself
    (``dp convert-backend``; once per session)."""
    from md_helpers import MODEL_DP, convert_backend

    return convert_backend(MODEL_DP, tmp_path_factory.mktemp("deepmd") / "water.pth")


@pytest.fixture(scope="session")
def deepmd_results(water_pth) -> dict:
    """deepmd-kit's ``DP`` calculator on the shared model: energy, forces (and stress when
    periodic) of every structure of ``md_helpers.STRUCTURES`` (computed once)."""
    from md_helpers import STRUCTURES, deepmd_calculator

    dp = deepmd_calculator(water_pth)
    out = {}
    for name, make in STRUCTURES.items():
        atoms = make()
        atoms.calc = dp
        res = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        if any(atoms.pbc):
            res["stress"] = atoms.get_stress()
        out[name] = res
    return out
