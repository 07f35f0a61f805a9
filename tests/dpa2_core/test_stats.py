"""Input statistics (§12): deepmd-kit parity, streaming, backends and bad frames."""

from __future__ import annotations

import functools
import shutil

import numpy as np
import pytest
from conftest import neighbor_inputs, random_stats
from oracle import WATER, water_frames

import dpa2_core as dc
from dpa2_core._compat import to_numpy
from dpa2_core.model.statistics import env_stat_sums

BASE = {
    "repinit": {"rcut": 4.0, "rcut_smth": 0.5, "nsel": 40, "neuron": [4, 8], "axis_neuron": 2,
                "tebd_dim": 4, "use_three_body": True, "three_body_sel": 20,
                "three_body_rcut": 3.0, "three_body_rcut_smth": 0.5},
    "repformer": {"rcut": 3.0, "rcut_smth": 1.0, "nsel": 20, "nlayers": 2, "g1_dim": 8,
                  "g2_dim": 4, "axis_neuron": 2, "attn1_hidden": 4, "attn2_hidden": 4},
    "ntypes": 2,
    "type_map": ["O", "H"],
}
BLOCKS = ("repinit", "three_body", "repformer")


def make_config(davg_zero: bool = True, **top) -> dc.DPA2Config:
    return dc.DPA2Config.from_dict({
        **BASE, **top,
        "repinit": {**BASE["repinit"], "set_davg_zero": davg_zero},
        "repformer": {**BASE["repformer"], "set_davg_zero": davg_zero},
    })


def default_builder():
    """None (= dpa2_core.build_neighbor_list) when it exists, else deepmd's builder."""
    try:
        import dpa2_core.neighbors.builder  # noqa: F401
    except ImportError:
        return neighbor_inputs
    return None


def water_systems(frames=(0, 1)) -> list[dict]:
    """Two deepmd-style systems (float64, flat coord and box as deepmd stores them)."""
    out = []
    for system in (0, 1):
        coord, atype, box = water_frames(system, frames)
        nf = coord.shape[0]
        out.append({"coord": coord.reshape(nf, -1), "atype": atype, "box": box.reshape(nf, 9)})
    return out


def stats_of(params) -> dict:
    return {(b, k): np.asarray(to_numpy(params[b][k])) for b in BLOCKS if b in params
            for k in ("davg", "dstd")}


@pytest.mark.parametrize("davg_zero", [True, False])
@pytest.mark.parametrize("exclude", [[], [[0, 1]]])
def test_parity_with_deepmd(davg_zero, exclude):
    pytest.importorskip("deepmd", reason="deepmd-kit (the parity oracle) is not installed")
    from oracle import deepmd_descriptor

    config = make_config(davg_zero, exclude_types=exclude)
    params = random_stats(dc.init_params(config, seed=0), seed=1)  # non-trivial start
    systems = water_systems()
    ours = dc.compute_input_stats(params, config, systems, neighbor_list=default_builder(),
                                  batch_size=1)
    reference = deepmd_descriptor(dc.dump_deepmd(config, params))
    reference.compute_input_stats(systems)
    _, ref = dc.load_deepmd(reference.serialize())
    for key, value in stats_of(ours).items():
        np.testing.assert_allclose(value, stats_of(ref)[key], rtol=0, atol=1e-12,
                                   err_msg=str(key))
    if davg_zero:  # davg untouched, dstd replaced
        for block in BLOCKS:
            assert ours[block]["davg"] is params[block]["davg"]
    assert not np.array_equal(ours["repinit"]["dstd"], params["repinit"]["dstd"])


@pytest.fixture(scope="module")
def batch():
    """Extended inputs of two water frames (wide list) and the matching config."""
    config = make_config(False, exclude_types=[[1, 1]])
    coord, atype, box = water_frames(0, (0, 1))
    coord_ext, atype_ext, mapping, nlist = neighbor_inputs(coord, atype, config, box)
    atype_ext = np.asarray(atype_ext).copy()
    atype_ext[:, 5] = -1  # a virtual centre (and neighbor), never counted
    return config, (np.asarray(coord_ext), atype_ext, np.asarray(nlist), np.asarray(mapping))


def test_sums_agree_across_backends(batch, to_backend):
    """The accumulation is array-API code: numpy, strict, torch and jax give the same sums."""
    config, inputs = batch
    ref = env_stat_sums(config, *inputs)
    converted = [to_backend(x) for x in inputs]
    fn = functools.partial(env_stat_sums, config)
    if type(converted[0]).__module__.startswith("jax"):
        import jax

        fn = jax.jit(fn)  # eager jax compiles every primitive: slower than one trace
    out = fn(*converted)
    assert set(out) == set(BLOCKS)
    for block in BLOCKS:
        got = to_numpy(out[block])
        assert got.shape == (2, 2, 3) and got.dtype == np.float64
        np.testing.assert_allclose(got, ref[block], rtol=1e-13, atol=1e-13, err_msg=block)


def test_sums_count_every_slot_of_real_centres(batch):
    config, inputs = batch
    sums = env_stat_sums(config, *inputs)
    atype = inputs[1][:, : inputs[2].shape[1]]
    per_type = np.asarray([(atype == t).sum() for t in range(2)])
    for block, nsel in (("repinit", 40), ("three_body", 20), ("repformer", 20)):
        np.testing.assert_array_equal(sums[block][:, 0, 0], per_type * nsel)
        np.testing.assert_array_equal(sums[block][:, 1, 0], per_type * 3 * nsel)


def test_streaming_matches_one_batch_and_reads_frames_once():
    config = make_config(False)
    params = dc.init_params(config)
    systems = water_systems((0, 1, 2))
    whole = dc.compute_input_stats(params, config, systems, neighbor_list=neighbor_inputs,
                                   batch_size=100)
    seen = []

    def stream():  # a one-shot generator: nothing may be read twice
        for s in systems:
            seen.append(1)
            yield s

    streamed = dc.compute_input_stats(params, config, stream(), neighbor_list=neighbor_inputs,
                                      batch_size=2)
    assert len(seen) == 2
    for key, value in stats_of(streamed).items():
        np.testing.assert_allclose(value, stats_of(whole)[key], rtol=1e-13, err_msg=str(key))


def test_system_path_equals_dict(tmp_path):
    """A deepmd-format directory gives the same statistics as its frames as a dict."""
    config = make_config(False)
    params = dc.init_params(config)
    src = WATER / "data_0"
    dst = tmp_path / "sys"
    (dst / "set.000").mkdir(parents=True)
    for name in ("type.raw", "type_map.raw"):
        shutil.copy(src / name, dst / name)
    for name in ("coord.npy", "box.npy"):
        np.save(dst / "set.000" / name, np.load(src / "set.000" / name)[:2])
    coord, atype, box = water_frames(0, (0, 1))
    from_path = dc.compute_input_stats(params, config, str(dst), neighbor_list=neighbor_inputs)
    from_dict = dc.compute_input_stats(params, config, {"coord": coord, "atype": atype,
                                                        "box": box},
                                       neighbor_list=neighbor_inputs)
    for key, value in stats_of(from_path).items():
        np.testing.assert_allclose(value, stats_of(from_dict)[key], rtol=1e-14, err_msg=str(key))


def test_missing_type_and_virtual_atoms_and_no_mutation(capsys):
    """A type that never occurs gets davg 0, dstd 0.1; params are not modified; progress bar."""
    config = make_config(False)
    params = random_stats(dc.init_params(config), seed=3)
    before = {k: v.copy() for k, v in stats_of(params).items()}
    coord, atype, box = water_frames(0, (0,))
    atype = np.where(atype == 1, -1, atype)  # hydrogens become virtual: type 1 never occurs
    out = dc.compute_input_stats(params, config, [{"coord": coord, "atype": atype, "box": box}],
                                 progress=True, neighbor_list=neighbor_inputs)
    for block in BLOCKS:
        np.testing.assert_array_equal(out[block]["davg"][1], 0.0)
        np.testing.assert_array_equal(out[block]["dstd"][1], 0.1)
        assert out[block]["davg"][0, 0, 0] > 0 and out[block]["dstd"].dtype == np.float64
        assert np.all(out[block]["dstd"][0] >= 1e-2)
    for key, value in stats_of(params).items():
        np.testing.assert_array_equal(value, before[key])
    assert "frame" in capsys.readouterr().err


def test_float32_model_gets_float32_stats():
    config = make_config(False, precision="float32")
    params = dc.init_params(config)
    out = dc.compute_input_stats(params, config, water_systems((0,))[:1],
                                 neighbor_list=neighbor_inputs)
    assert all(v.dtype == np.float32 for v in stats_of(out).values())


def test_torch_params_and_frames():
    torch = pytest.importorskip("torch")
    config = make_config(False)
    params = dc.init_params(config)
    system = water_systems((0,))[0]
    ref = dc.compute_input_stats(params, config, system, neighbor_list=neighbor_inputs)
    tparams = dc.model.params.tree_map(lambda _, x: torch.from_numpy(x), params)
    tsystem = {k: torch.from_numpy(v) for k, v in system.items()}
    out = dc.compute_input_stats(tparams, config, [tsystem], neighbor_list=neighbor_inputs)
    assert isinstance(out["repformer"]["davg"], torch.Tensor)
    assert out["repformer"]["davg"].dtype == torch.float64
    for key, value in stats_of(out).items():
        np.testing.assert_array_equal(value, stats_of(ref)[key], err_msg=str(key))


def test_jax_params_and_frames():
    """The whole compute_input_stats on jax arrays (eager: two frames keep it short)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    config = make_config(False)
    params = dc.init_params(config)
    system = {k: v[:2] for k, v in water_systems((0,))[0].items()}
    ref = dc.compute_input_stats(params, config, system, neighbor_list=neighbor_inputs)
    jparams = dc.model.params.tree_map(lambda _, x: jax.numpy.asarray(x), params)
    jsystem = {k: jax.numpy.asarray(v) for k, v in system.items()}
    out = dc.compute_input_stats(jparams, config, [jsystem], neighbor_list=neighbor_inputs)
    assert isinstance(out["repformer"]["davg"], jax.Array)
    for key, value in stats_of(out).items():
        np.testing.assert_allclose(value, stats_of(ref)[key], rtol=1e-13, atol=1e-15,
                                   err_msg=str(key))


BAD_FRAMES = {
    "not a dict": (3.0, "frames: expected an iterable"),
    "item type": ([3.0], r"frames\[0\]: expected a dict"),
    "no atype": ({"coord": np.zeros((1, 2, 3))}, r"frames\[0\]: needs both"),
    "coord shape": ({"coord": np.zeros((1, 3, 3)), "atype": np.zeros((1, 2), dtype=int)},
                    r"frames\[0\].coord: expected shape"),
    "int coord": ({"coord": np.zeros((1, 2, 3), dtype=int), "atype": np.zeros((1, 2), int)},
                  r"frames\[0\].coord: must be a floating"),
    "nan coord": ({"coord": np.full((1, 2, 3), np.nan), "atype": np.zeros((1, 2), int)},
                  r"frames\[0\].coord: contains NaN"),
    "atype rank": ({"coord": np.zeros((1, 2, 3)), "atype": np.zeros(2, int)},
                   r"frames\[0\].atype: expected an integer array"),
    "type range": ({"coord": np.zeros((1, 2, 3)), "atype": np.full((1, 2), 2)},
                   r"frames\[0\].atype: types must be < ntypes=2"),
    "box shape": ({"coord": np.zeros((1, 2, 3)), "atype": np.zeros((1, 2), int),
                   "box": np.eye(3)}, r"frames\[0\].box: expected shape"),
    "flat cell": ({"coord": np.zeros((1, 2, 3)), "atype": np.zeros((1, 2), int),
                   "box": np.diag([5.0, 5.0, 0.0])[None]},
                  r"frames\[0\].box: frame 0 is degenerate"),
    "dependent rows": ({"coord": np.zeros((1, 2, 3)), "atype": np.zeros((1, 2), int),
                        "box": np.array([[[4.0, 0, 0], [0, 4, 0], [4, 4, 0]]])},
                       r"frames\[0\].box: frame 0 is degenerate"),
    "nan box": ({"coord": np.zeros((1, 2, 3)), "atype": np.zeros((1, 2), int),
                 "box": np.full((1, 9), np.nan)}, r"frames\[0\].box: contains NaN"),
    "missing dir": ("/nonexistent/system", "no type.raw"),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_bad_frames(case):
    frames, message = BAD_FRAMES[case]
    config = make_config()
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        dc.compute_input_stats(dc.init_params(config), config, frames,
                               neighbor_list=neighbor_inputs)


def test_bad_batch_size():
    config = make_config()
    with pytest.raises(ValueError, match="batch_size"):
        dc.compute_input_stats(dc.init_params(config), config, [], batch_size=0,
                               neighbor_list=neighbor_inputs)
