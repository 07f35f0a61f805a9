"""Physical guarantees of the core descriptor (see docs/physics.md).

Symmetries (translation, rotation incl. improper, permutation, periodic images),
padding invariance, smoothness at every cutoff, forces and virial against finite
differences in torch and jax, float32 against float64. Gradients run under
``torch.autograd.detect_anomaly`` and ``jax_debug_nans``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import cluster, cluster_nlist, neighbor_inputs, triclinic
from hypothesis import given, settings
from hypothesis import strategies as st
from shims import SHIMS

import dpa2_core as dc
from dpa2_core.model.params import tree_map

pytestmark = pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")

PHYS = {
    "repinit": {"rcut": 4.0, "rcut_smth": 0.5, "nsel": 40, "neuron": [4, 8], "axis_neuron": 2,
                "tebd_dim": 4, "use_three_body": True, "three_body_sel": 20,
                "three_body_rcut": 3.5, "three_body_rcut_smth": 0.5},
    "repformer": {"rcut": 3.0, "rcut_smth": 1.0, "nsel": 20, "nlayers": 2, "g1_dim": 8,
                  "g2_dim": 4, "axis_neuron": 2, "attn1_hidden": 4, "attn2_hidden": 4,
                  "update_h2": True, "attn2_has_gate": True},
    "ntypes": 2,
    "type_map": ["O", "H"],
}
CUTOFFS = {"repinit": 4.0, "three_body": 3.5, "repformer": 3.0}
SETTINGS = settings(max_examples=6, deadline=None, derandomize=True)


def physical_stats(params: dict, seed: int, davg_zero: bool) -> dict:
    """Statistics of the form compute_input_stats produces, with random values: per type,
    the same in every slot, davg = (mu, 0, 0, 0), dstd = (s_r, s_a, s_a, s_a)."""
    rng = np.random.default_rng(seed)
    out = dict(params)
    for block in CUTOFFS:
        davg = params[block]["davg"]
        nt, nsel, _ = davg.shape
        mu = 0.0 if davg_zero else rng.uniform(0.05, 0.3, (nt, 1, 1))
        s_r, s_a = rng.uniform(0.1, 0.5, (nt, 1, 1)), rng.uniform(0.05, 0.3, (nt, 1, 1))
        zero = np.zeros((nt, nsel, 1))
        out[block] = {**params[block],
                      "davg": np.concatenate([zero + mu, zero, zero, zero], axis=-1),
                      "dstd": np.concatenate([zero + s_r] + [zero + s_a] * 3, axis=-1)}
    return out


def make(repinit=None, davg: str = "physical", **top):
    """(config, params) with computed-like statistics (davg radial != 0 unless 'zero')."""
    config = dc.DPA2Config.from_dict({**PHYS, **top,
                                      "repinit": {**PHYS["repinit"], **(repinit or {})}})
    return config, physical_stats(dc.init_params(config, seed=2), 3, davg == "zero")


# Configs whose symmetries hold exactly (see docs/physics.md on the padding residual).
SYMMETRIC = {
    "concat-davg0": lambda: make(davg="zero"),
    "strip-smooth": lambda: make({"tebd_input_mode": "strip"}),
    "strip-davg0-nonsmooth-direct": lambda: make(
        {"tebd_input_mode": "strip"}, davg="zero", smooth=False,
        repformer={**PHYS["repformer"], "direct_dist": True}),
}


def run(config, params, coord, atype, nlist=None, mapping=None, shim: str = "core"):
    """Outputs (numpy) of the core or of a shim (tests/shims.py) on an open structure."""
    if nlist is None:
        nlist = cluster_nlist(coord, atype, config.rcut, config.nsel)
    return SHIMS[shim](params, config, coord, atype, nlist, mapping)


shims = pytest.mark.parametrize("shim", sorted(SHIMS))


def random_orthogonal(seed: int, improper: bool) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) < 0) != improper:
        q = -q
    return q


def close(a, b, rtol: float = 1e-10, what: str = "") -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, what
    err = np.abs(a - b).max() if a.size else 0.0
    assert err <= rtol * max(np.abs(b).max(), 1.0), f"{what}: {err:.3e}"


def weighted(out):
    """g2 and h2 weighted by the switch: what a consumer of the pair channels sees."""
    return out.g2 * out.sw[..., None], out.h2 * out.sw[..., None]


# ---------------------------------------------------------------- symmetries
@shims
@pytest.mark.parametrize("case", ["concat-davg", "strip-nonsmooth-direct"])
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1), improper=st.booleans())
def test_rotation_translation(case, seed, improper, shim):
    """x' = x @ R + t: descriptor, g2 and sw invariant; rot_mat and h2 -> (.) @ R."""
    config, params = (make() if case == "concat-davg" else
                      make({"tebd_input_mode": "strip"}, smooth=False,
                           repformer={**PHYS["repformer"], "direct_dist": True}))
    coord, atype = cluster(12, seed=seed % 1000)
    rot = random_orthogonal(seed, improper)
    shift = np.random.default_rng(seed + 1).uniform(-20, 20, 3)
    ref = run(config, params, coord, atype, shim=shim)
    out = run(config, params, coord @ rot + shift, atype, shim=shim)
    close(out.descriptor, ref.descriptor, what="descriptor")
    close(out.g2, ref.g2, what="g2")
    close(out.sw, ref.sw, what="sw")
    close(out.rot_mat, ref.rot_mat @ rot, what="rot_mat")
    close(out.h2, ref.h2 @ rot, what="h2")


@shims
@pytest.mark.parametrize("case", sorted(SYMMETRIC))
@SETTINGS
@given(seed=st.integers(0, 2**31 - 1))
def test_permutation(case, seed, shim):
    """Relabelling atoms permutes every output (pair channels compared at real neighbors)."""
    config, params = SYMMETRIC[case]()
    coord, atype = cluster(12, seed=seed % 1000)
    perm = np.random.default_rng(seed).permutation(12)
    ref = run(config, params, coord, atype, shim=shim)
    out = run(config, params, coord[:, perm], atype[:, perm], shim=shim)
    close(out.descriptor, ref.descriptor[:, perm], what="descriptor")
    close(out.rot_mat, ref.rot_mat[:, perm], what="rot_mat")
    close(out.sw, ref.sw[:, perm], what="sw")
    for name, a, b in zip(("g2", "h2"), weighted(out), weighted(ref), strict=True):
        close(a, b[:, perm], what=name)


def test_padding_residual_reads_atom_zero():
    """Documented deepmd behaviour: with davg != 0 in concat mode the empty slots carry the
    type of extended atom 0, so swapping atom 0 with an atom of another type is not a pure
    relabelling, while swapping it with one of the same type is."""
    config, params = make()
    coord, atype = cluster(10, seed=4)
    atype = np.array([[0, 1, 0, 1, 0, 1, 1, 0, 1, 0]])
    ref = run(config, params, coord, atype)
    for other, same in ((2, True), (1, False)):
        perm = np.arange(10)
        perm[[0, other]] = perm[[other, 0]]
        out = run(config, params, coord[:, perm], atype[:, perm])
        err = np.abs(out.descriptor - ref.descriptor[:, perm]).max()
        assert (err < 1e-12) == same, (other, err)


@shims
def test_periodic_images_wrapping_and_rotation(shim):
    """Moving atoms by lattice vectors or translating a periodic cell changes nothing;
    rotating coordinates and cell together rotates rot_mat and h2."""
    config, params = make()
    coord, atype, box = triclinic(16, seed=5)
    rng = np.random.default_rng(0)

    def outputs(c, b):
        ce, ae, mp, nl = neighbor_inputs(c, atype, config, b)
        return SHIMS[shim](params, config, *(np.asarray(x) for x in (ce, ae, nl, mp)))

    ref = outputs(coord, box)
    images = rng.integers(-2, 3, (1, 16, 3)) @ box[0]
    for moved in (coord + images, coord + rng.uniform(-9, 9, 3)):
        out = outputs(moved, box)
        for name, a, b in zip(ref._fields, out, ref, strict=True):
            close(a, b, what=name)
    rot = random_orthogonal(7, improper=False)
    out = outputs(coord @ rot, box @ rot)
    close(out.descriptor, ref.descriptor, what="descriptor")
    close(out.rot_mat, ref.rot_mat @ rot, what="rot_mat")
    close(out.h2, ref.h2 @ rot, what="h2")


@shims
def test_padding_invariance(shim):
    """Extra -1 columns, a narrower list, a wider list (larger nsel) and appended virtual
    atoms (local or ghost, type -1) leave the real atoms' outputs unchanged (bit for bit
    in the core; a shim compiles each shape on its own, so to 1e-14 there)."""
    config, params = make()
    coord, atype = cluster(14, seed=6)
    nlist = cluster_nlist(coord, atype, config.rcut, config.nsel)
    ref = run(config, params, coord, atype, nlist, shim=shim)
    narrow = nlist[..., : int((nlist >= 0).sum(-1).max())]
    wide = cluster_nlist(coord, atype, config.rcut, config.nsel + 25)
    for variant in (narrow, wide):
        out = run(config, params, coord, atype, variant, shim=shim)
        for name, a, b in zip(ref._fields, out, ref, strict=True):
            if shim == "core":
                np.testing.assert_array_equal(a, b, err_msg=name)
            else:
                close(a, b, rtol=1e-14, what=name)
    # virtual atoms: 3 local ones (all -1 rows) and 2 ghosts with mapping -1
    extra = np.random.default_rng(1).uniform(0, 6, (1, 5, 3))
    coord_v = np.concatenate([coord, extra], axis=1)
    atype_v = np.concatenate([atype, -np.ones((1, 5), dtype=np.int64)], axis=1)
    nlist_v = np.concatenate([nlist, -np.ones((1, 3, config.nsel), dtype=np.int64)], axis=1)
    mapping = np.concatenate([np.arange(17), -np.ones(2, dtype=np.int64)])[None]
    out = run(config, params, coord_v, atype_v, nlist_v, mapping, shim=shim)
    for name, a, b in zip(ref._fields, out, ref, strict=True):
        close(a[:, :14], b, rtol=1e-14, what=name)


# ---------------------------------------------------------------- smoothness
BASE = np.array([[0.0, 0.0, 0.0], [1.0, 0.2, -0.1], [-0.3, 1.1, 0.4], [0.2, -0.5, 1.3]])
RAY = np.array([0.6, 0.64, 0.48])  # unit vector


def scan(config, params, rcuts, delta: float = 1e-7) -> dict:
    """For each cutoff, atom 4 (type 1) at distance rcut + k*delta, k = -2..2 (k = 0:
    exactly at rcut) from atom 0 (type 0): one frame per point, one batched call under
    torch's anomaly detection. Returns {rcut: largest change between neighboring points of
    (descriptor, d sum(descriptor**2)/d coord, g2*sw)} and checks everything is finite."""
    torch = pytest.importorskip("torch")
    tparams = tree_map(lambda _, a: torch.from_numpy(a), params)
    dist = (np.asarray(rcuts)[:, None] + delta * np.arange(-2, 3)).reshape(-1)
    nf = dist.shape[0]
    coord = np.concatenate([np.broadcast_to(BASE, (nf, 4, 3)), dist[:, None, None] * RAY],
                           axis=1)
    atype = np.tile([[0, 1, 0, 1, 1]], (nf, 1))
    nlist = cluster_nlist(coord, atype, config.rcut, config.nsel)
    c = torch.tensor(coord, requires_grad=True)
    with torch.autograd.detect_anomaly():
        out = dc.descriptor(tparams, config, c, torch.from_numpy(atype),
                            torch.from_numpy(nlist))
        (grad,) = torch.autograd.grad((out.descriptor ** 2).sum(), c)
    quantities = [x.detach().numpy() for x in (out.descriptor, grad, weighted(out)[0])]
    assert all(np.isfinite(q).all() for q in quantities)
    steps = [np.abs(np.diff(q.reshape(len(rcuts), 5, -1), axis=1)).max(axis=(1, 2))
             for q in quantities]  # per quantity: (n_cutoffs,)
    return {rc: np.asarray([st[i] for st in steps]) for i, rc in enumerate(rcuts)}


@pytest.mark.parametrize("case", ["concat-davg0", "strip-smooth"])
def test_smooth_at_cutoffs(case):
    """Value, coordinate gradient and sw-weighted g2 are continuous as a neighbor crosses
    the repinit, three-body and repformer cutoffs: steps of 1e-7 A move them by < 1e-6 (a
    jump would not shrink with the step), and everything is finite exactly at a cutoff."""
    config, params = SYMMETRIC[case]()
    for rcut, step in scan(config, params, sorted(CUTOFFS.values())).items():
        assert np.all(step < 1e-6), (rcut, step)


@pytest.mark.parametrize("setup, block", [
    (lambda: make(), "repinit"),  # concat with davg != 0: atom 0's type (padding residual)
    (lambda: make(davg="zero", smooth=False), "repformer"),  # smooth=False
])
def test_documented_discontinuities(setup, block):
    config, params = setup()
    assert scan(config, params, [CUTOFFS[block]])[CUTOFFS[block]][0] > 1e-5


# ---------------------------------------------------------------- forces, virial
@pytest.fixture(scope="module")
def periodic():
    """A periodic cell, its extended inputs, and finite-difference derivatives of the numpy
    energy E = sum(descriptor**2) along two atom displacements and two strains."""
    config, params = make(davg="zero")
    coord, atype, box = triclinic(12, seed=8)

    def energy(c, b):
        ce, ae, mp, nl = neighbor_inputs(c, atype, config, b)
        return float((dc.descriptor(params, config, ce, ae, nl, mp).descriptor ** 2).sum())

    rng = np.random.default_rng(0)
    checks = []
    for _ in range(2):
        v, eps = rng.normal(size=coord.shape), rng.normal(size=(3, 3))
        fd_force = derivative(lambda t, v=v: energy(coord + t * v, box))
        # strain x -> x (I + t eps), cell likewise: dE/dt = sum(-virial * eps)
        fd_strain = derivative(lambda t, e=eps: energy(coord @ (np.eye(3) + t * e),
                                                       box @ (np.eye(3) + t * e)))
        checks.append((v, fd_force, eps, fd_strain))
    inputs = tuple(np.asarray(x) for x in neighbor_inputs(coord, atype, config, box))
    return config, params, inputs, checks


def torch_grad(config, params, ce, ae, nl, mp):
    torch = pytest.importorskip("torch")
    tparams = tree_map(lambda _, a: torch.from_numpy(a), params)
    c = torch.tensor(ce, requires_grad=True)
    with torch.autograd.detect_anomaly():
        out = dc.descriptor(tparams, config, c, *(torch.from_numpy(x) for x in (ae, nl, mp)))
        (grad,) = torch.autograd.grad((out.descriptor ** 2).sum(), c)
    return grad.numpy()


def jax_grad(config, params, ce, ae, nl, mp):
    pytest.importorskip("jax")
    import jax

    jax.config.update("jax_enable_x64", True)
    jparams = tree_map(lambda _, a: jax.numpy.asarray(a), params)

    @jax.jit
    def grad(c, a, n, m):
        return jax.grad(lambda c: (dc.descriptor(jparams, config, c, a, n, m).descriptor
                                   ** 2).sum())(c)

    with jax.debug_nans(True):
        return np.asarray(grad(*(jax.numpy.asarray(x) for x in (ce, ae, nl, mp))))


@pytest.mark.parametrize("autograd", [torch_grad, jax_grad], ids=["torch", "jax"])
def test_forces_and_virial_match_finite_differences(periodic, autograd):
    config, params, (ce, ae, mp, nl), checks = periodic
    grad_ext = autograd(config, params, ce, ae, nl, mp)[0]  # (nall, 3)
    assert np.isfinite(grad_ext).all()
    real = mp[0] >= 0
    grad = np.zeros((nl.shape[1], 3))
    np.add.at(grad, mp[0][real], grad_ext[real])  # ghosts onto their atoms: F = -grad
    virial = -ce[0].T @ grad_ext  # W = -sum_ext x (x) dE/dx
    for v, fd_force, eps, fd_strain in checks:
        assert abs(fd_force - np.sum(grad * v[0])) <= 1e-8 * max(abs(fd_force), 1.0)
        assert abs(fd_strain - np.sum(-virial * eps)) <= 1e-8 * max(abs(fd_strain), 1.0)


def derivative(f, h: float = 3e-5) -> float:
    """Fourth-order central difference f'(0)."""
    return (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h)


# ---------------------------------------------------------------- precision
def test_float32_agrees_with_float64():
    """The float32 model matches the float64 one to ~1e-6 relative on every output."""
    config, params = make()
    config32 = dataclasses.replace(config, precision="float32")
    params32 = tree_map(lambda _, a: a.astype(np.float32), params)
    coord, atype = cluster(16, seed=9)
    ref = run(config, params, coord, atype)
    for c in (coord, coord.astype(np.float32)):
        out = run(config32, params32, c, atype)
        assert out.descriptor.dtype == c.dtype
        for name, a, b in zip(ref._fields, out, ref, strict=True):
            close(a, b, rtol=2e-5, what=name)

