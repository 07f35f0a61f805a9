"""deepmd-kit training inputs, the learning-rate rule, the loss, lcurve, batch sampling and
training statistics: the backend-neutral parts of ``dpa2 train``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tiny_input
from oracle import SHARED, WATER

import dpa2_core as dc
from dpa2_core.io.npy_data import DeepmdSystem
from dpa2_core.training import lcurve
from dpa2_core.training.loss import ener_loss
from dpa2_core.training.sampling import BatchSampler, batch_sizes
from dpa2_core.training.settings import LearningRate, TrainInput
from dpa2_core.training.statistics import energy_bias, training_statistics

INPUT = SHARED / "models" / "water_dpa2_small.input.json"


def test_reads_the_reference_input_unchanged():
    inp = TrainInput.from_file(INPUT)
    assert inp.numb_steps == 20 and inp.disp_freq == 5 and inp.gradient_max_norm == 5.0
    assert [p.name for p in inp.training_data.systems] == ["data_0", "data_1", "data_2"]
    assert all(p.is_dir() for p in inp.training_data.systems)
    assert inp.loss.at(1e-3, 1e-3) == pytest.approx((0.02, 1000.0), rel=1e-12)


def test_a_folder_of_systems_expands(tmp_path):
    d = json.loads(tiny_input(tmp_path).read_text())
    d["training"]["training_data"]["systems"] = str(WATER)
    inp = TrainInput.from_dict(d)
    assert [p.name for p in inp.training_data.systems] == [f"data_{i}" for i in range(4)]


@pytest.mark.parametrize("kw", [
    {"start_lr": 1e-3, "stop_lr": 3.51e-8, "decay_steps": 5, "num_steps": 20},
    {"start_lr": 1e-3, "stop_lr": 1e-5, "decay_steps": 5000, "num_steps": 300},
    {"start_lr": 2e-3, "stop_lr": 1e-6, "decay_steps": 7, "num_steps": 100,
     "warmup_steps": 10, "warmup_start_factor": 0.1},
    {"start_lr": 1e-3, "stop_lr": 1e-4, "decay_steps": 3, "num_steps": 50, "smooth": True},
    {"start_lr": 1e-3, "stop_lr": 5e-4, "decay_steps": 4, "num_steps": 60, "decay_rate": 0.9},
])
def test_learning_rate_follows_deepmd(kw):
    from deepmd.dpmodel.utils.learning_rate import LearningRateExp

    ref = LearningRateExp(**kw)
    ours = LearningRate(kw["start_lr"], kw["stop_lr"], kw["num_steps"], kw["decay_steps"],
                        kw.get("decay_rate"), kw.get("warmup_steps", 0),
                        kw.get("warmup_start_factor", 0.0), kw.get("smooth", False))
    for step in range(kw["num_steps"] + 5):
        assert ours.value(step) == pytest.approx(float(ref.value(step)), rel=1e-12), step


@pytest.mark.parametrize(("section", "key", "value", "match"), [
    ("training", "opt_type", "LKF", r"training: unsupported key\(s\) \['opt_type'\]"),
    ("loss", "start_pref_v", 1.0, r"loss: \['start_pref_v'\] must be 0"),
    ("learning_rate", "type", "cosine", "only 'exp'"),
    ("model", "spin", {}, r"model: unsupported key\(s\) \['spin'\]"),
    ("fitting_net", "numb_fparam", 2, "fitting_net.numb_fparam=2"),
    ("descriptor", "repinit_typo", 1, "repinit_typo"),
])
def test_unsupported_keys_are_named(tmp_path, section, key, value, match):
    d = json.loads(tiny_input(tmp_path).read_text())
    target = {"fitting_net": d["model"]["fitting_net"], "descriptor": d["model"]["descriptor"],
              "model": d["model"]}.get(section, d.get(section))
    target[key] = value
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match=match):
        TrainInput.from_file(tmp_path / "bad.json")


def test_lcurve_header_is_deepmds():
    ref = (SHARED / "models" / "water_dpa2_small.lcurve.out").read_text().splitlines()[:2]
    assert lcurve.header(lcurve.KEYS, True).splitlines() == ref
    row = lcurve.row(5, 1e-3, {"rmse": 27.5, "rmse_e": 0.158, "rmse_f": 0.87},
                     {"rmse": 26.1, "rmse_e": 0.306, "rmse_f": 0.827})
    assert len(row) == len("      5      2.75e+01    2.61e+01      1.58e-01    3.06e-01"
                           "      8.70e-01    8.27e-01    1.0e-03\n")


def test_model_settings(tmp_path):
    inp = TrainInput.from_file(INPUT)
    s = inp.settings
    assert s.type_map == ("O", "H") and s.descriptor.repformer.nlayers == 3
    assert s.fitting.neuron == (240, 240, 240) and s.fitting.trainable
    assert s.fitting.dim_descrpt == s.descriptor.dim_out
    assert s.data_stat_nbatch == inp.model.get("data_stat_nbatch", 10)
    d = json.loads(tiny_input(tmp_path).read_text())
    d["model"]["fitting_net"].update(trainable=[False] * 3, rcond=1e-3, seed=11)
    d["model"]["descriptor"]["seed"] = 5
    s = TrainInput.from_dict(d).settings
    assert not s.fitting.trainable and s.rcond == 1e-3
    assert (s.descriptor_seed, s.fitting_seed) == (5, 11)
    del d["model"]["fitting_net"]["seed"], d["model"]["descriptor"]["seed"]
    s = TrainInput.from_dict(d).settings  # training.seed 7: descriptor 7, fitting 8
    assert (s.descriptor_seed, s.fitting_seed) == (7, 8)


@pytest.mark.parametrize(("section", "key", "value", "match"), [
    ("model", "data_stat_protect", 0.1, r"model.data_stat_protect=0.1: only deepmd-kit's"),
    ("model", "data_bias_nsample", 3, r"model.data_bias_nsample=3: only"),
    ("training", "change_bias_after_training", True, r"change_bias_after_training=True"),
    ("training", "disp_avg", True, r"training.disp_avg=True"),
    ("training", "disp_freq", 0, r"training.disp_freq=0: must be a positive int"),
    ("fitting_net", "trainable", [True, False, True], r"fitting_net.trainable=.*per-layer"),
    ("fitting_net", "precision", "float32", r"fitting_net.precision='float32': must match"),
])
def test_values_that_would_change_results_are_refused(tmp_path, section, key, value, match):
    d = json.loads(tiny_input(tmp_path).read_text())
    target = {"fitting_net": d["model"]["fitting_net"], "model": d["model"]}.get(
        section, d.get(section))
    target[key] = value
    with pytest.raises(ValueError, match=match):
        TrainInput.from_dict(d)


def test_defaults_are_accepted_where_only_defaults_are(tmp_path):
    d = json.loads(tiny_input(tmp_path).read_text())
    d["model"].update(data_stat_protect=1e-2, data_bias_nsample=10)
    d["training"].update(change_bias_after_training=False, disp_avg=False)
    TrainInput.from_dict(d)


def test_batch_sizes_follow_deepmd():
    assert batch_sizes("auto", [192, 3, 40]) == [1, 11, 1]
    assert batch_sizes("auto:100", [192, 30]) == [1, 4]
    assert batch_sizes(2, [5, 6]) == [2, 2] and batch_sizes([1, 3], [5, 6]) == [1, 3]
    for bad in ("big", "auto:x", [1], 0):
        with pytest.raises(ValueError, match="batch_size"):
            batch_sizes(bad, [5, 6])


def test_sampler_visits_every_frame_per_epoch_and_restarts_exactly():
    sampler = BatchSampler([5, 12], [2, 3], seed=3)
    seen = {0: [], 1: []}
    draws = [sampler.next() for _ in range(40)]
    for k, idx in draws:
        assert len(idx) == (2, 3)[k] and len(set(idx)) == len(idx)
        seen[k].extend(idx)
    assert seen[1][:12] and sorted(seen[1][:12]) == list(range(12))  # one epoch: each once
    counts = np.bincount([k for k, _ in draws], minlength=2)
    assert counts[1] > counts[0]  # prob_sys_size: 4 batches against 2
    resumed = BatchSampler([5, 12], [2, 3], seed=0)
    state = json.loads(json.dumps(sampler.state()))  # survives JSON (checkpoints)
    resumed.set_state(state)
    assert [resumed.next() for _ in range(10)] == [sampler.next() for _ in range(10)]
    with pytest.raises(ValueError, match="auto_prob"):
        BatchSampler([5], [1], auto_prob="prob_sys_weight")


def test_ener_loss_is_deepmds_formula():
    rng = np.random.default_rng(0)
    e, e_ref = rng.normal(size=3), rng.normal(size=3)
    f, f_ref = rng.normal(size=(3, 4, 3)), rng.normal(size=(3, 4, 3))
    loss, m = ener_loss(e, e_ref, f, f_ref, 4, 0.5, 20.0)
    l2_e, l2_f = np.mean((e - e_ref) ** 2), np.mean((f - f_ref) ** 2)
    assert loss == pytest.approx(0.5 / 4 * l2_e + 20.0 * l2_f, rel=1e-14)
    assert m["rmse_e"] == pytest.approx(np.sqrt(l2_e) / 4, rel=1e-14)
    assert m["rmse_f"] == pytest.approx(np.sqrt(l2_f), rel=1e-14)
    assert m["rmse"] == pytest.approx(np.sqrt(loss), rel=1e-14)
    loss_e, m_e = ener_loss(e, e_ref, None, None, 4, 0.5, 20.0)
    assert "rmse_f" not in m_e and loss_e == pytest.approx(0.5 / 4 * l2_e, rel=1e-14)


def test_energy_bias_least_squares():
    """Exact per-type energies are recovered; a fixed composition gets the minimum norm."""
    rng = np.random.default_rng(1)
    atype = rng.integers(-1, 3, (20, 9))
    truth = np.array([-3.0, 1.5, 7.0])
    energies = sum(((atype == t).sum(-1) * truth[t]) for t in range(3))
    np.testing.assert_allclose(energy_bias(energies, atype, 3), truth, rtol=1e-12)
    parts = [atype[:7], atype[7:, :5]]  # two systems of different sizes
    both = np.concatenate([energies[:7], sum(((parts[1] == t).sum(-1) * truth[t])
                                             for t in range(3))])
    np.testing.assert_allclose(energy_bias(both, parts, 3), truth, rtol=1e-12)
    fixed = energy_bias(np.array([3.0, 3.0]), np.array([[0, 1, 1], [0, 1, 1]]), 2)
    np.testing.assert_allclose(fixed, [0.6, 1.2], rtol=1e-12)  # min-norm: b ∝ (1, 2)


def test_training_statistics_use_the_first_batches_of_each_system():
    config, params = dc.load_deepmd(SHARED / "models" / "water_dpa2_small.dp")
    systems = [DeepmdSystem(WATER / f"data_{k}", list(config.type_map)).frames()
               for k in (0, 1)]
    new, bias = training_statistics(params, config, systems, [1, 2], nbatch=2)
    frames = [{"coord": systems[0].coord[:2], "atype": systems[0].atype[:2],
               "box": systems[0].box[:2]},
              {"coord": systems[1].coord[:4], "atype": systems[1].atype[:4],
               "box": systems[1].box[:4]}]
    ref = dc.compute_input_stats(params, config, frames)
    np.testing.assert_array_equal(new["repinit"]["dstd"], ref["repinit"]["dstd"])
    energies = np.concatenate([systems[0].energy[:2], systems[1].energy[:4]])
    np.testing.assert_array_equal(
        bias, energy_bias(energies, [f["atype"] for f in frames], 2))
