"""Training that survives faults (torch backend): SIGKILL at seeded moments (one inside a
checkpoint write), SIGTERM, a full disk, non-finite losses, and restarts that repeat the
uninterrupted run bit for bit (every lcurve row, validation columns included, and the
final parameters)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_input
from torch_helpers import one_thread  # noqa: F401  (autouse fixture)

from dpa2_cli.main import main
from dpa2_core.training import checkpoints, faults, lcurve
from dpa2_core.training.guards import NonFiniteError
from dpa2_core.training.settings import TrainInput
from dpa2_torch.training import Trainer

SRC = Path(__file__).resolve().parents[2] / "src"
STEPS = 8


def quiet(*args) -> None:
    pass


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    """In-process runs skip lcurve.png (seconds per checkpoint, not under test here)."""
    monkeypatch.setattr(lcurve, "plot", lambda *a, **k: False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: (input path, lcurve text, final state dict)."""
    tmp = tmp_path_factory.mktemp("reference")
    path = tiny_input(tmp, steps=STEPS, disp_freq=1, save_freq=2)
    trainer = Trainer(TrainInput.from_file(path), tmp / "out", log=quiet)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lcurve, "plot", lambda *a, **k: False)
        trainer.run()
    return path, (tmp / "out" / "lcurve.out").read_text(), trainer.model.state_dict()


def _cli(input_path: Path, out: Path, *extra: str, fault: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    env.pop(faults.ENV, None)
    if fault:
        env[faults.ENV] = fault
    return subprocess.run([sys.executable, "-m", "dpa2_cli", "train", str(input_path),
                           "--output", str(out), *extra], env=env, capture_output=True,
                          text=True, timeout=300)


def _params(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _assert_same(final: dict, ref: dict) -> None:
    assert final.keys() == ref.keys()
    for k in ref:
        assert torch.equal(final[k], ref[k]), k


def _finish(inp_path: Path, out: Path, restart: Path) -> Trainer:
    trainer = Trainer(TrainInput.from_file(inp_path), out, restart=str(restart), log=quiet)
    trainer.run()
    return trainer


def test_sigkill_at_seeded_moments_then_restart_repeats_the_run(tmp_path, reference):
    """Killed in the middle of writing checkpoint 4 (torn temporary file), restarted from
    the newest complete one, killed again at a seeded step, restarted: lcurve.out and the
    parameters are those of the uninterrupted run."""
    inp_path, ref_curve, ref_params = reference
    out = tmp_path / "out"
    rng = np.random.default_rng(14)
    kill_step = int(rng.integers(5, STEPS))  # a step after checkpoint 4, before the end
    first = _cli(inp_path, out, fault="kill@written=model.ckpt-4.pt")
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    # the newest complete checkpoint is step 2 (the torn step-4 file never got its name)
    assert (out / "checkpoint").read_text() == "model.ckpt-2.pt\n"
    assert [p.name for p in checkpoints.checkpoints(out, "model.ckpt", ".pt")] == \
        ["model.ckpt-2.pt"]
    assert (out / ".model.ckpt-4.pt.tmp").is_file()  # the torn write, left by the kill
    _assert_same(_params(out / "model.ckpt.pt"), _params(out / "model.ckpt-2.pt"))
    torn = tmp_path / "torn.pt"  # what a non-atomic writer would have left under the name
    torn.write_bytes((out / ".model.ckpt-4.pt.tmp").read_bytes())
    with pytest.raises(ValueError, match=r"restart='.*torn.pt': not a readable dpa2_torch "
                                         r"checkpoint"):
        Trainer(TrainInput.from_file(inp_path), tmp_path / "other", restart=str(torn),
                log=quiet)
    second = _cli(inp_path, out, "--restart", str(out / "model.ckpt-2.pt"),
                  fault=f"kill@step={kill_step}")
    assert second.returncode == -signal.SIGKILL, second.stderr[-2000:]
    newest = checkpoints.latest(out, "model.ckpt", ".pt")
    assert checkpoints.step_of(newest, "model.ckpt", ".pt") == (kill_step - 1) // 2 * 2
    # (the fault fires before the killed step's own checkpoint is written)
    trainer = _finish(inp_path, out, newest)
    assert (out / "lcurve.out").read_text() == ref_curve
    _assert_same(trainer.model.state_dict(), ref_params)
    _assert_same(_params(out / f"model.ckpt-{STEPS}.pt"), ref_params)


def test_sigterm_saves_at_the_end_of_the_step_and_restart_repeats_the_run(
        tmp_path, reference, monkeypatch, capsys):
    inp_path, ref_curve, ref_params = reference
    out = tmp_path / "out"
    monkeypatch.setenv(faults.ENV, "term@step=3")
    assert main(["train", str(inp_path), "--output", str(out)]) == 128 + signal.SIGTERM
    text = capsys.readouterr().out
    hint = f"SIGTERM received: stopped after step 3, saved '{out / 'model.ckpt-3.pt'}'"
    assert hint in text and f"--restart {out / 'model.ckpt-3.pt'}" in text
    assert (out / "checkpoint").read_text() == "model.ckpt-3.pt\n"
    monkeypatch.delenv(faults.ENV)
    # a new run into the folder is refused; --restart continues it exactly
    assert main(["train", str(inp_path), "--output", str(out)]) == 2
    assert "holds checkpoints of another run" in capsys.readouterr().err
    trainer = _finish(inp_path, out, out / "model.ckpt-3.pt")
    assert (out / "lcurve.out").read_text() == ref_curve
    _assert_same(trainer.model.state_dict(), ref_params)


def test_a_full_disk_is_one_clear_error_and_keeps_earlier_checkpoints(
        tmp_path, reference, monkeypatch, capsys):
    inp_path = reference[0]
    out = tmp_path / "out"
    monkeypatch.setenv(faults.ENV, "enospc@write=model.ckpt-4.pt")
    assert main(["train", str(inp_path), "--output", str(out), "--steps", "4"]) == 2
    err = capsys.readouterr().err  # the progress bar, then one line
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "dpa2 train: "
        f"error: cannot write '{out / 'model.ckpt-4.pt'}': No space left on device; the newest "
        f"complete checkpoint is '{out / 'model.ckpt-2.pt'}'")
    assert [p.name for p in checkpoints.checkpoints(out, "model.ckpt", ".pt")] == \
        ["model.ckpt-2.pt"]
    assert torch.load(out / "model.ckpt.pt", weights_only=True)["step"] == 2


def _poison(trainer: Trainer, call: int) -> None:
    """The ``call``-th training batch gets a NaN energy label (past the data checks)."""
    draw, count = trainer.train_data.batch, [0]

    def batch(k, idx):
        b = draw(k, idx)
        count[0] += 1
        return b._replace(energy=b.energy * float("nan")) if count[0] == call else b

    trainer.train_data.batch = batch


def test_nonfinite_loss_stops_naming_the_batch_and_no_checkpoint_holds_nan(tmp_path):
    path = tiny_input(tmp_path, steps=6, save_freq=2)
    out = tmp_path / "out"
    trainer = Trainer(TrainInput.from_file(path), out, log=quiet)
    _poison(trainer, 3)
    with pytest.raises(NonFiniteError) as err:
        trainer.run()
    k, idx = trainer.train_data.drawn
    assert str(err.value).startswith(f"step 3: non-finite loss on the batch of system {k} (")
    assert f"frames {idx}" in str(err.value) and "model.ckpt-2.pt" in str(err.value)
    assert trainer.step == 2  # stopped before the update of step 3
    for p in out.glob("model.ckpt*.pt"):
        for name, x in _params(p).items():
            assert torch.isfinite(x).all(), (p.name, name)
    assert all(torch.isfinite(x).all() for x in trainer.model.state_dict().values())


def test_nan_policy_skip_drops_the_batch_and_counts_it(tmp_path):
    d = json.loads(tiny_input(tmp_path, steps=4, save_freq=4).read_text())
    d["training"]["nan_policy"] = "skip"
    inp = TrainInput.from_dict(d)
    lines: list[str] = []
    trainer = Trainer(inp, tmp_path / "out", log=lines.append)
    _poison(trainer, 2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    assert trainer.skipped == 1 and trainer.step == 4
    assert any(line.startswith("step 2: non-finite loss") and "(1 skipped so far)" in line
               for line in lines)
    after = trainer.model.state_dict()
    assert all(torch.isfinite(x).all() for x in after.values())
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the others trained


def _nan_gradient(trainer: Trainer, call: int) -> list:
    """The ``call``-th backward pass gives one parameter a NaN gradient; the loss of that
    batch stays finite (the labels and the forward pass are untouched). Returns a list
    that then holds the (system, frames) of the poisoned batch."""
    param, count = next(p for p in trainer.model.parameters() if p.requires_grad), [0]
    drawn: list = []

    def hook(grad: torch.Tensor) -> torch.Tensor:
        count[0] += 1
        if count[0] != call:
            return grad
        drawn.append(trainer.train_data.drawn)
        return grad * float("nan")

    param.register_hook(hook)
    return drawn


def test_nonfinite_gradient_with_a_finite_loss_stops_naming_the_gradient(tmp_path):
    path = tiny_input(tmp_path, steps=4, save_freq=2)
    out = tmp_path / "out"
    trainer = Trainer(TrainInput.from_file(path), out, log=quiet)
    _nan_gradient(trainer, 3)
    with pytest.raises(NonFiniteError) as err:
        trainer.run()
    k, idx = trainer.train_data.drawn
    assert str(err.value).startswith(
        f"step 3: non-finite gradient on the batch of system {k} (")
    assert f"frames {idx}" in str(err.value) and "model.ckpt-2.pt" in str(err.value)
    assert trainer.step == 2
    assert [p.name for p in checkpoints.checkpoints(out, "model.ckpt", ".pt")] == \
        ["model.ckpt-2.pt"]
    for name, x in _params(out / "model.ckpt-2.pt").items():
        assert torch.isfinite(x).all(), name
    assert all(torch.isfinite(x).all() for x in trainer.model.state_dict().values())


def test_nan_policy_skip_drops_a_nonfinite_gradient_and_counts_it(tmp_path):
    d = json.loads(tiny_input(tmp_path, steps=3, save_freq=3).read_text())
    d["training"]["nan_policy"] = "skip"
    lines: list[str] = []
    trainer = Trainer(TrainInput.from_dict(d), tmp_path / "out", log=lines.append)
    drawn = _nan_gradient(trainer, 2)
    trainer.run()
    assert trainer.skipped == 1 and trainer.step == 3
    (k, idx), = drawn
    assert [line for line in lines if "non-finite" in line] == [
        f"step 2: non-finite gradient on the batch of system {k} "
        f"({trainer.train_data.paths[k]}) frames {[int(i) for i in idx]}: batch skipped "
        "(1 skipped so far)",
        "skipped 1 batch(es) with a non-finite loss or gradient"]
    assert all(torch.isfinite(x).all() for x in trainer.model.state_dict().values())


def test_ctrl_c_saves_returns_130_and_restart_repeats_the_run(
        tmp_path, reference, monkeypatch, capsys):
    inp_path, ref_curve, ref_params = reference
    out = tmp_path / "out"
    monkeypatch.setenv(faults.ENV, "int@step=3")
    assert main(["train", str(inp_path), "--output", str(out)]) == 130
    text = capsys.readouterr().out
    ckpt = out / "model.ckpt-3.pt"
    assert f"SIGINT received: stopped after step 3, saved '{ckpt}'; continue with: dpa2 " \
           f"train INPUT --restart {ckpt}" in text
    assert (out / "checkpoint").read_text() == "model.ckpt-3.pt\n"
    monkeypatch.delenv(faults.ENV)
    assert main(["train", str(inp_path), "--output", str(out), "--restart", str(ckpt)]) == 0
    assert (out / "lcurve.out").read_text() == ref_curve
    _assert_same(_params(out / f"model.ckpt-{STEPS}.pt"), ref_params)


def test_force_overwrites_another_run_end_to_end(tmp_path, reference, capsys):
    inp_path, out = reference[0], tmp_path / "out"
    assert main(["train", str(inp_path), "--output", str(out), "--steps", "4"]) == 0
    assert [p.name for p in checkpoints.checkpoints(out, "model.ckpt", ".pt")] == \
        ["model.ckpt-2.pt", "model.ckpt-4.pt"]
    capsys.readouterr()
    assert main(["train", str(inp_path), "--output", str(out), "--steps", "2"]) == 2
    assert "holds checkpoints of another run" in capsys.readouterr().err
    assert main(["train", str(inp_path), "--output", str(out), "--steps", "2",
                 "--force"]) == 0
    assert [p.name for p in checkpoints.checkpoints(out, "model.ckpt", ".pt")] == \
        ["model.ckpt-2.pt"]  # the old run's step-4 file is gone
    assert (out / "checkpoint").read_text() == "model.ckpt-2.pt\n"
    assert torch.load(out / "model.ckpt.pt", weights_only=True)["step"] == 2
    assert lcurve.read(out / "lcurve.out")[1][:, 0].tolist() == [1, 2]  # no old rows
