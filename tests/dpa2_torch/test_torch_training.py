"""Training: deepmd-kit input reading, learning-rate rule, lcurve, learning, restart, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from oracle import MODEL_DP, SHARED, WATER
from torch_helpers import (
    one_thread,  # noqa: F401  (autouse fixture)
    tiny_input,
)

from dpa2_core.cli import main
from dpa2_torch import lcurve
from dpa2_torch.evaluate import evaluate_systems
from dpa2_torch.train_input import LearningRate, TrainInput
from dpa2_torch.training import Trainer

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
        Trainer(TrainInput.from_file(tmp_path / "bad.json"), tmp_path / "out")


def test_lcurve_header_is_deepmds():
    ref = (SHARED / "models" / "water_dpa2_small.lcurve.out").read_text().splitlines()[:2]
    assert lcurve.header(lcurve.KEYS, True).splitlines() == ref
    row = lcurve.row(5, 1e-3, {"rmse": 27.5, "rmse_e": 0.158, "rmse_f": 0.87},
                     {"rmse": 26.1, "rmse_e": 0.306, "rmse_f": 0.827})
    assert len(row) == len("      5      2.75e+01    2.61e+01      1.58e-01    3.06e-01"
                           "      8.70e-01    8.27e-01    1.0e-03\n")


def test_short_run_lowers_energy_and_force_errors(tmp_path):
    inp = TrainInput.from_file(tiny_input(tmp_path, steps=30, disp_freq=10, save_freq=30))
    trainer = Trainer(inp, tmp_path / "out", log=lambda *a: None)
    before = evaluate_systems(trainer.model, [WATER / "data_0"], 4)[0]
    rows = trainer.run()
    after = evaluate_systems(trainer.model, [WATER / "data_0"], 4)[0]
    assert after.rmse_e < 0.5 * before.rmse_e
    assert after.rmse_f < before.rmse_f
    assert [r["step"] for r in rows] == [1, 10, 20, 30]
    names, data = lcurve.read(tmp_path / "out" / "lcurve.out")
    assert data.shape == (4, 8) and names[0] == "step"
    assert (tmp_path / "out" / "lcurve.png").stat().st_size > 0


def test_restart_continues_exactly(tmp_path):
    """Resuming from the step-2 checkpoint reproduces the uninterrupted run bit for bit
    (model, Adam state, step, data-sampler state are all restored)."""
    inp = TrainInput.from_file(tiny_input(tmp_path, steps=4))
    straight = Trainer(inp, tmp_path / "a", log=lambda *a: None)
    straight.run()
    resumed = Trainer(inp, tmp_path / "b", restart=str(tmp_path / "a" / "model.ckpt-2.pt"),
                      log=lambda *a: None)
    assert resumed.step == 2
    resumed.run()
    for (k, x), (q, y) in zip(straight.model.state_dict().items(),
                              resumed.model.state_dict().items(), strict=True):
        assert k == q and torch.equal(x, y), k
    assert lcurve.read(tmp_path / "b" / "lcurve.out")[1][:, 0].tolist() == [4]


def test_cli_train_then_test(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", str(tiny_input(tmp_path, steps=8)), "--output", str(out),
                 "--steps", "2"]) == 0
    for name in ("lcurve.out", "lcurve.png", "model.ckpt.pt", "model.ckpt-2.pt", "checkpoint"):
        assert (out / name).is_file(), name
    assert (out / "checkpoint").read_text().strip() == "model.ckpt-2.pt"
    capsys.readouterr()
    assert main(["test", "--model", str(out / "model.ckpt.pt"), "--system",
                 str(WATER / "data_3"), str(WATER / "data_0"), "--numb-test", "2"]) == 0
    text = capsys.readouterr().out
    assert text.count("Force  RMSE") == 3 and "weighted average" in text


def test_cli_test_reads_deepmd_models(capsys):
    """The trained deepmd-kit model: its error on held-out water is that of its lcurve."""
    assert main(["test", "--model", str(MODEL_DP), "--system", str(WATER / "data_3"),
                 "--numb-test", "1"]) == 0
    text = capsys.readouterr().out
    force = float(text.split("Force  RMSE        :")[1].split()[0])
    assert 0.5 < force < 1.2  # deepmd's lcurve: rmse_f_val 0.82 after its 20 steps
    assert np.isfinite(float(text.split("Energy RMSE/Natoms :")[1].split()[0]))
