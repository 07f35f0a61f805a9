"""Training: input parsing, deepmd-kit's schedule, lcurve format, loss goes down, restart."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import tiny_dict
from oracle import MODEL_DP, WATER

import dpa2_core as dc
from dpa2_cli.main import main
from dpa2_core.training.settings import TrainInput
from dpa2_jax.training.checkpoint import load_model
from dpa2_jax.training.trainer import cli_train, model_config


@pytest.fixture(autouse=True)
def standard_promotion():
    """optax's Adam mixes its int32 step count with floats: strict promotion rejects it."""
    import jax

    with jax.numpy_dtype_promotion("standard"):
        yield


SMALL = tiny_dict({"neuron": [4, 8], "axis_neuron": 2, "nsel": 60},
                  repformer={"nlayers": 1, "g1_dim": 8, "g2_dim": 4})


def _system(root: Path, src: Path, frames: list[int]) -> Path:
    """A deepmd system holding ``frames`` of ``src``."""
    root.mkdir(parents=True)
    for name in ("type.raw", "type_map.raw"):
        shutil.copy(src / name, root / name)
    (root / "set.000").mkdir()
    for name in ("coord", "box", "energy", "force"):
        np.save(root / "set.000" / f"{name}.npy", np.load(src / "set.000" / f"{name}.npy")[frames])
    return root


def _input(tmp: Path, steps: int = 24, **training) -> Path:
    _system(tmp / "data" / "train", WATER / "data_0", [0, 1, 2, 3, 4])
    _system(tmp / "data" / "valid", WATER / "data_3", [0])
    desc = {k: v for k, v in SMALL.items() if k not in ("ntypes", "type_map")}
    d = {
        "model": {"type_map": ["O", "H"], "descriptor": {"type": "dpa2", **desc, "seed": 1},
                  "fitting_net": {"neuron": [8, 8], "seed": 1, "_comment": "x"}},
        "learning_rate": {"type": "exp", "start_lr": 3e-3, "stop_lr": 1e-3, "decay_steps": 8},
        "loss": {"type": "ener", "start_pref_e": 1, "limit_pref_e": 1, "start_pref_f": 1,
                 "limit_pref_f": 1, "start_pref_v": 0, "limit_pref_v": 0},
        "training": {"training_data": {"systems": ["data/train"], "batch_size": 2},
                     "validation_data": {"systems": "data/valid", "batch_size": 1},
                     "numb_steps": steps, "disp_freq": 8, "save_freq": 8, "seed": 3,
                     **training},
    }
    path = tmp / "input.json"
    path.write_text(json.dumps(d))
    return path


def _lcurve(path: Path) -> np.ndarray:
    return np.loadtxt(path, ndmin=2)


def test_shared_input_runs_and_unknown_keys_are_named(tmp_path, capsys):
    """The jax trainer reads inputs with the core's TrainInput: same errors as torch."""
    path = MODEL_DP.parent / "water_dpa2_small.input.json"
    d = json.loads(path.read_text())
    inp = TrainInput.from_dict(d, path.parent, steps=7)
    assert inp.numb_steps == 7 and model_config(inp).fitting.neuron == (240, 240, 240)
    bad = {**d, "training": {**d["training"], "mixed_precision": True, "opt_type": "LKF"}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["train", str(tmp_path / "bad.json"), "--backend", "jax"]) == 2
    assert "training: unsupported key(s) ['mixed_precision', 'opt_type']" in \
        capsys.readouterr().err


def test_short_training_lowers_the_loss_and_restarts(tmp_path, capsys):
    path = _input(tmp_path)
    out = tmp_path / "run"
    assert cli_train(argparse.Namespace(input=str(path), output=str(out), steps=None,
                                        restart=None)) == 0
    text = (out / "lcurve.out").read_text().splitlines()
    assert text[0].split() == ["#", "step", "rmse_val", "rmse_trn", "rmse_e_val", "rmse_e_trn",
                               "rmse_f_val", "rmse_f_trn", "lr"]
    curve = _lcurve(out / "lcurve.out")
    assert curve[:, 0].tolist() == [1, 8, 16, 24]
    # constant prefactors: rmse_val = sqrt(loss) on the same validation frame every time
    assert curve[-1, 1] < 0.7 * curve[0, 1]
    assert np.isfinite(curve).all()
    lines = capsys.readouterr().out.splitlines()  # no log lines between the bar's updates
    assert lines[0].startswith("statistics:") and lines[1].startswith("energy bias per type")
    assert lines[-1].startswith("trained 24 steps in") and len(lines) == 3
    assert (out / "model.ckpt-24.npz").is_file() and (out / "model.ckpt.npz").is_file()
    # the checkpoint holds the model; its statistics are deepmd-kit's of the first
    # data_stat_nbatch (10) batches of 2 frames: all 5 training frames here
    config, params = load_model(out / "model.ckpt.npz")
    stats = dc.compute_input_stats(dc.init_params(config.descriptor), config.descriptor,
                                   [tmp_path / "data" / "train"])
    for block in ("repinit", "repformer"):
        np.testing.assert_array_equal(np.asarray(params["descriptor"][block]["dstd"]),
                                      stats[block]["dstd"])
    # restart from step 16: steps 17..24 again, same state and the same batches (the
    # sampler state is in the checkpoint): the step-24 row and parameters are reproduced
    _, final = load_model(out / "model.ckpt-24.npz")
    cli_train(argparse.Namespace(input=str(path), output=str(out), steps=None,
                                 restart=str(out / "model.ckpt-16.npz")))
    again = _lcurve(out / "lcurve.out")
    assert again[:, 0].tolist() == [1, 8, 16, 24, 24]
    np.testing.assert_array_equal(again[4, 1:], again[3, 1:])
    _, resumed = load_model(out / "model.ckpt-24.npz")
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (out / "lcurve.png").stat().st_size > 0
