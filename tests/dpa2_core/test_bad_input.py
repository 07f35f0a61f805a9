"""Degenerate and invalid inputs on numpy, array-api-strict, torch and jax arrays.

Each case either raises a ValueError naming the argument or gives the finite result
documented in docs/physics.md. A hypothesis fuzz test over random small structures and
random valid configs checks that nothing else ever happens, gradients included.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import cluster, cluster_nlist, random_stats, run_descriptor
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shims import SHIMS

import dpa2_core as dc
import dpa2_core.model.checks
from dpa2_core._compat import to_numpy
from dpa2_core.model.params import tree_map

pytestmark = pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")

SMALL = {
    "repinit": {"rcut": 4.0, "rcut_smth": 0.5, "nsel": 12, "neuron": [4, 8], "axis_neuron": 2,
                "tebd_dim": 4, "use_three_body": True, "three_body_sel": 8,
                "three_body_rcut": 3.0, "three_body_rcut_smth": 0.5},
    "repformer": {"rcut": 3.0, "rcut_smth": 1.0, "nsel": 8, "nlayers": 2, "g1_dim": 8,
                  "g2_dim": 4, "axis_neuron": 2, "attn1_hidden": 4, "attn2_hidden": 4,
                  "update_h2": True},
    "ntypes": 2,
    "type_map": ["O", "H"],
}
COINCIDE = "coord_ext: atom .* coincide"
# One structure with every degenerate geometry: atoms 0 and 1 coincide, atom 2 sits at
# exactly the repinit cutoff of atom 0, atom 3 exactly at the repformer/three-body one,
# atom 4 is isolated (no neighbor at all; same type as atom 0), atom 5 is ordinary.
DEGENERATE = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [4.0, 0.0, 0.0],
                        [0.0, 3.0, 0.0], [30.0, 30.0, 30.0], [0.6, 0.8, 0.0]]])
DEGENERATE_TYPES = np.array([[0, 1, 1, 0, 0, 1]])


def make(protection: float = 0.0):
    config = dc.DPA2Config.from_dict({**SMALL, "env_protection": protection})
    return config, random_stats(dc.init_params(config, seed=1), seed=2)


def call(to_backend, config, params, coord, atype, nlist=None, mapping=None, *,
         eager: bool = False, **kw):
    """The descriptor on ``to_backend`` arrays (jax: checks eager, math under jit; see
    conftest.run_descriptor), or the public call as is (``eager``: inputs that must
    raise before any math)."""
    if nlist is None:
        nlist = cluster_nlist(np.asarray(coord), np.asarray(atype), config.rcut, config.nsel)
    conv = [None if x is None else to_backend(x) for x in (coord, atype, nlist, mapping)]
    params = tree_map(lambda _, x: to_backend(x), params)
    run = dc.descriptor if eager else run_descriptor
    return run(params, config, *conv, **kw)


def assert_finite(out) -> None:
    for name, x in zip(out._fields, out, strict=True):
        assert np.isfinite(to_numpy(x)).all(), name


# ------------------------------------------------------------------ clear errors
def _cases():
    coord, atype = cluster(6, seed=3)
    dup = coord.copy()
    dup[0, 1] = dup[0, 0]
    nlist = cluster_nlist(coord, atype, 4.0, 12)
    selfish = nlist.copy()
    selfish[0, 2, 0] = 2
    return {
        "nan coord": ({"coord": np.where(np.arange(6)[None, :, None] == 2, np.nan, coord)},
                      "coord_ext: contains NaN or inf"),
        "inf coord": ({"coord": np.where(np.arange(6)[None, :, None] == 4, np.inf, coord)},
                      "coord_ext: contains NaN or inf"),
        "coincident atoms": ({"coord": dup}, COINCIDE),
        "lists itself": ({"nlist": selfish}, "nlist: atom 2 of frame 0 lists itself"),
        "type too large": ({"atype": np.full((1, 6), 2)}, "atype_ext: types must be < ntypes"),
        "empty structure": ({"coord": np.zeros((1, 0, 3)), "atype": np.zeros((1, 0), int),
                             "nlist": np.zeros((1, 0, 12), int)}, "nlist: needs at least one"),
        "no frames": ({"coord": np.zeros((0, 6, 3)), "atype": np.zeros((0, 6), int),
                       "nlist": np.zeros((0, 6, 12), int)}, "nlist: needs at least one"),
        "frame counts": ({"coord": np.zeros((2, 6, 3))}, "coord_ext: expected shape"),
        "coord width": ({"coord": np.zeros((1, 6, 4))}, "coord_ext: expected shape"),
        "atype shape": ({"atype": np.zeros((1, 6, 1), int)}, "atype_ext: expected shape"),
        "nlist frames": ({"nlist": np.full((2, 6, 12), -1)}, "nlist: expected shape"),
        "nloc > nall": ({"nlist": np.full((1, 7, 12), -1)}, "nlist: expected shape"),
        "integer coord": ({"coord": np.zeros((1, 6, 3), dtype=np.int64)},
                          "coord_ext: must be a floating"),
        "float nlist": ({"nlist": nlist.astype(np.float64)}, "nlist: must be an integer"),
        "nlist past nall": ({"nlist": np.where(nlist >= 0, nlist, 6)}, "nlist: entries must"),
        "mapping shape": ({"mapping": np.zeros((1, 5), int)}, "mapping: expected shape"),
    }, (coord, atype, nlist)


CASES, BASE_INPUTS = _cases()


@pytest.mark.parametrize("case", sorted(CASES))
def test_clear_error(case, to_backend):
    override, message = CASES[case]
    config, params = make()
    coord, atype, nlist = BASE_INPUTS
    args = {"coord": coord, "atype": atype, "nlist": nlist, **override}
    with pytest.raises(ValueError, match=message):
        call(to_backend, config, params, args["coord"], args["atype"], args["nlist"],
             args.get("mapping"), eager=True)


@pytest.mark.parametrize("shim", ["torch", "jax"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_clear_error_through_the_shims(case, shim):
    """The torch module (CPU, eager) and dpa2_jax.jit_descriptor raise the same errors."""
    override, message = CASES[case]
    config, params = make()
    coord, atype, nlist = BASE_INPUTS
    args = {"coord": coord, "atype": atype, "nlist": nlist, **override}
    with pytest.raises(ValueError, match=message):
        SHIMS[shim](params, config, args["coord"], args["atype"], args["nlist"],
                    args.get("mapping"))


# ------------------------------------------------------------------ documented results
def test_degenerate_structure_is_finite(to_backend):
    """With env_protection > 0 coincident atoms are allowed; isolated atoms, neighbors at
    exactly a cutoff and single atoms give finite outputs."""
    config, params = make(protection=0.1)
    out = call(to_backend, config, params, DEGENERATE, DEGENERATE_TYPES)
    assert_finite(out)
    single = call(to_backend, config, params, DEGENERATE[:, :1], DEGENERATE_TYPES[:, :1])
    assert_finite(single)
    # an isolated atom equals a lone atom of its type (empty slots read the type of atom 0,
    # which is the same here: see docs/physics.md on the padding residual)
    lone = call(to_backend, config, params, DEGENERATE[:, 4:5], DEGENERATE_TYPES[:, 4:5])
    np.testing.assert_allclose(to_numpy(out.descriptor)[0, 4], to_numpy(lone.descriptor)[0, 0],
                               rtol=1e-12, atol=1e-12)


def test_coincident_atoms_without_validation_give_zero_rows(to_backend):
    """validate=False (what jit/compile tracing does) with env_protection = 0: finite; the
    coincident pair contributes a zero environment-matrix row instead of inf."""
    config, params = make()
    out = call(to_backend, config, params, DEGENERATE, DEGENERATE_TYPES, validate=False)
    assert_finite(out)
    with pytest.raises(ValueError, match=COINCIDE):
        call(to_backend, config, params, DEGENERATE, DEGENERATE_TYPES)


@pytest.mark.parametrize("protection", [0.0, 0.1])
def test_degenerate_gradients_are_finite_torch(protection):
    torch = pytest.importorskip("torch")
    config, params = make(protection)
    tparams = tree_map(lambda _, x: torch.from_numpy(x), params)
    coord = torch.tensor(DEGENERATE, requires_grad=True)
    nlist = cluster_nlist(DEGENERATE, DEGENERATE_TYPES, config.rcut, config.nsel)
    with torch.autograd.detect_anomaly():
        out = dc.descriptor(tparams, config, coord, torch.from_numpy(DEGENERATE_TYPES),
                            torch.from_numpy(nlist), validate=protection > 0)
        loss = sum((x ** 2).sum() for x in out)
        (grad,) = torch.autograd.grad(loss, coord)
    assert torch.isfinite(grad).all()


def test_degenerate_gradients_are_finite_jax():
    """Under jax.jit (no value checks) with env_protection = 0 and jax_debug_nans."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    config, params = make()
    jparams = tree_map(lambda _, x: jax.numpy.asarray(x), params)
    nlist = jax.numpy.asarray(cluster_nlist(DEGENERATE, DEGENERATE_TYPES, config.rcut,
                                            config.nsel))
    atype = jax.numpy.asarray(DEGENERATE_TYPES)

    def loss(c):
        return sum((x ** 2).sum() for x in dc.descriptor(jparams, config, c, atype, nlist))

    with jax.debug_nans(True):
        value, grad = jax.jit(jax.value_and_grad(loss))(jax.numpy.asarray(DEGENERATE))
    assert np.isfinite(float(value)) and np.isfinite(np.asarray(grad)).all()


# ------------------------------------------------------------------ fuzz
ACTIVATIONS = ["tanh", "relu", "relu6", "softplus", "sigmoid", "gelu", "gelu_tf", "linear",
               "silu", "silut:3.0", "custom_silu:5.0"]


@st.composite
def configs(draw):
    rcut = draw(st.floats(1.5, 5.0))
    rcut_f = rcut * draw(st.floats(0.4, 0.95))
    nsel = draw(st.integers(3, 14))
    nsel_f = draw(st.integers(1, nsel - 1))
    three = draw(st.booleans())
    repinit = {"rcut": rcut, "rcut_smth": rcut * draw(st.floats(0.0, 0.9)), "nsel": nsel,
               "neuron": [3, 6], "axis_neuron": 2, "tebd_dim": draw(st.sampled_from([2, 3])),
               "tebd_input_mode": draw(st.sampled_from(["concat", "strip"])),
               "set_davg_zero": draw(st.booleans()), "use_three_body": three}
    if three:
        r3 = rcut_f + draw(st.floats(0.0, 1.0)) * (rcut - rcut_f)
        repinit.update(three_body_rcut=r3, three_body_rcut_smth=r3 * draw(st.floats(0, 0.9)),
                       three_body_sel=draw(st.integers(nsel_f, nsel)), three_body_neuron=[2, 4])
    repinit.update(activation_function=draw(st.sampled_from(ACTIVATIONS)),
                   type_one_side=draw(st.booleans()), resnet_dt=draw(st.booleans()))
    flags = ("update_g1_has_conv", "update_g1_has_drrd", "update_g1_has_grrg",
             "update_g1_has_attn", "update_g2_has_g1g1", "update_g2_has_attn",
             "g1_out_conv", "g1_out_mlp", "use_sqrt_nnei", "direct_dist", "update_h2",
             "attn2_has_gate")
    repformer = {"rcut": rcut_f, "rcut_smth": rcut_f * draw(st.floats(0.0, 0.9)),
                 "nsel": nsel_f, "nlayers": draw(st.integers(1, 2)), "g1_dim": 6, "g2_dim": 4,
                 "axis_neuron": 2, "attn1_hidden": 3, "attn1_nhead": 2, "attn2_hidden": 3,
                 "attn2_nhead": 2, **{k: draw(st.booleans()) for k in flags},
                 "update_style": draw(st.sampled_from(["res_avg", "res_incr", "res_residual"])),
                 "activation_function": draw(st.sampled_from(ACTIVATIONS))}
    d = {"repinit": repinit, "repformer": repformer, "ntypes": 2, "type_map": ["O", "H"],
         "smooth": draw(st.booleans()), "env_protection": draw(st.sampled_from([0.0, 0.05])),
         "exclude_types": draw(st.sampled_from([[], [[0, 1]], [[1, 1]]])),
         "concat_output_tebd": draw(st.booleans()), "use_econf_tebd": draw(st.booleans()),
         "use_tebd_bias": draw(st.booleans()), "add_tebd_to_repinit_out": draw(st.booleans())}
    try:
        return dc.DPA2Config.from_dict(d)
    except ValueError:  # a flag combination deepmd-kit itself cannot run
        assume(False)


def fuzz_inputs(config, seed, n, size, duplicate, virtual):
    """(coord, atype, nlist, params) of a random small open structure."""
    rng = np.random.default_rng(seed)
    coord = rng.uniform(0.0, size, (1, n, 3))
    if duplicate and n > 1:
        coord = np.concatenate([coord[:, :-1], coord[:, :1]], axis=1)
    atype = rng.integers(0, 2, (1, n))
    if virtual:
        atype = np.where(np.arange(n) == n - 1, -1, atype)
    params = random_stats(dc.init_params(config, seed=seed % 97), seed=seed % 89)
    nlist = cluster_nlist(coord, atype, config.rcut, config.nsel + rng.integers(0, 3))
    return coord, atype, nlist, params


FUZZ = dict(config=configs(), seed=st.integers(0, 2**31 - 1), n=st.integers(1, 7),
            size=st.floats(0.3, 6.0), duplicate=st.booleans(), virtual=st.booleans())


@settings(max_examples=150, deadline=None, derandomize=True)
@given(**FUZZ)
def test_fuzz_no_surprises(config, seed, n, size, duplicate, virtual):
    """Random structures (possibly with coincident or virtual atoms) and random configs:
    either the documented coincident-atom error, or finite outputs and gradients."""
    torch = pytest.importorskip("torch")
    coord, atype, nlist, params = fuzz_inputs(config, seed, n, size, duplicate, virtual)
    tparams = tree_map(lambda _, x: torch.from_numpy(x), params)
    c = torch.tensor(coord, requires_grad=True)
    try:
        out = dc.descriptor(tparams, config, c, torch.from_numpy(atype),
                            torch.from_numpy(nlist))
    except ValueError as err:
        assert config.env_protection == 0 and "coincide" in str(err)
        out = dc.descriptor(tparams, config, c, torch.from_numpy(atype),
                            torch.from_numpy(nlist), validate=False)
    assert_finite(out)
    (grad,) = torch.autograd.grad(sum((x ** 2).sum() for x in out), c)
    assert torch.isfinite(grad).all()


@settings(max_examples=8, deadline=None, derandomize=True)
@given(**FUZZ)
def test_fuzz_no_surprises_jax(config, seed, n, size, duplicate, virtual):
    """The same under jax.jit with jax_debug_nans (no value checks inside jit: coincident
    atoms with env_protection = 0 give the documented zero rows)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    coord, atype, nlist, params = fuzz_inputs(config, seed, n, size, duplicate, virtual)
    jparams = tree_map(lambda _, x: jax.numpy.asarray(x), params)
    atype_j, nlist_j = jax.numpy.asarray(atype), jax.numpy.asarray(nlist)

    def loss(c):
        out = dc.descriptor(jparams, config, c, atype_j, nlist_j)
        return sum((x ** 2).sum() for x in out), out

    with jax.debug_nans(True):
        (_, out), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(
            jax.numpy.asarray(coord))
    assert_finite(out)
    assert np.isfinite(np.asarray(grad)).all()


def test_fuzz_configs_are_valid_and_float32_runs():
    """Sanity for the fuzz strategy (its example configs construct) and the float32 path."""
    config, params = make(protection=0.1)
    c32 = dataclasses.replace(config, precision="float32")
    p32 = tree_map(lambda _, x: x.astype(np.float32), params)
    out = call(np.asarray, c32, p32, DEGENERATE.astype(np.float32), DEGENERATE_TYPES)
    assert out.descriptor.dtype == np.float32
    assert_finite(out)
