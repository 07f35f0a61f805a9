"""Training with the torch backend: learning, lcurve and plot, exact restart, the CLI.

Input reading, the learning-rate rule, the loss and the sampler are the core's
(tests/dpa2_core/test_train_input.py)."""

from __future__ import annotations

import json

import numpy as np
import torch
from conftest import tiny_input
from oracle import MODEL_DP, SHARED, WATER
from torch_helpers import one_thread  # noqa: F401  (autouse fixture)

from dpa2_cli.main import main
from dpa2_core.training import lcurve
from dpa2_core.training.settings import TrainInput
from dpa2_torch.training.evaluate import evaluate_systems
from dpa2_torch.training.trainer import Trainer

INPUT = SHARED / "models" / "water_dpa2_small.input.json"


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


def test_fitting_trainable_false_freezes_the_fitting_net(tmp_path):
    from dpa2_torch.training.checkpoint import build_model

    d = json.loads(tiny_input(tmp_path).read_text())
    d["model"]["fitting_net"]["trainable"] = False
    model = build_model(TrainInput.from_dict(d).settings)
    assert not any(p.requires_grad for p in model.fitting.parameters())
    assert all(p.requires_grad for p in model.descriptor.parameters())
