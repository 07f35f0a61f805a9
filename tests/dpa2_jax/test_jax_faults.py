"""Training that survives faults (JAX backend): SIGKILL inside a checkpoint write, SIGTERM,
non-finite losses; restarts repeat the uninterrupted run bit for bit (every lcurve row,
validation columns included, and the final parameters)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_dict
from oracle import WATER

from dpa2_cli.main import main
from dpa2_core.training import checkpoints, faults, lcurve
from dpa2_core.training.guards import NonFiniteError
from dpa2_core.training.settings import TrainInput
from dpa2_jax.training import cli_train, train
from dpa2_jax.training.checkpoint import load_model
from dpa2_jax.training.data import Sampler

SRC = Path(__file__).resolve().parents[2] / "src"
STEPS = 6


@pytest.fixture(autouse=True)
def training_settings():
    """optax mixes its int32 step count with floats (standard promotion); the NaN tests
    feed NaN on purpose (no debug_nans)."""
    with jax.numpy_dtype_promotion("standard"), jax.debug_nans(False):
        yield


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    """In-process runs skip lcurve.png (seconds per checkpoint, not under test here)."""
    monkeypatch.setattr(lcurve, "plot", lambda *a, **k: False)


class Quiet:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def _train(path: Path, out: Path, restart: Path | None = None) -> dict:
    return train(TrainInput.from_file(path), out, restart, out=Quiet(), progress=False)


def _leaves(path: Path) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(load_model(path)[1])]


SMALL = tiny_dict({"neuron": [4, 8], "axis_neuron": 2, "nsel": 60},
                  repformer={"nlayers": 1, "g1_dim": 8, "g2_dim": 4})


def _system(root: Path, src: Path, frames: list[int]) -> Path:
    root.mkdir(parents=True)
    for name in ("type.raw", "type_map.raw"):
        (root / name).write_bytes((src / name).read_bytes())
    (root / "set.000").mkdir()
    for name in ("coord", "box", "energy", "force"):
        np.save(root / "set.000" / f"{name}.npy", np.load(src / "set.000" / f"{name}.npy")[frames])
    return root


def small_input(tmp: Path, steps: int = STEPS, **training) -> Path:
    """A small JAX-friendly input (one repformer layer): 5 training frames, 4 validation
    frames drawn one at a time (the validation sampler's state matters)."""
    data = tmp / "data"
    if not data.is_dir():
        _system(data / "train", WATER / "data_0", [0, 1, 2, 3, 4])
        _system(data / "valid", WATER / "data_3", [0, 1, 2, 3])
    desc = {k: v for k, v in SMALL.items() if k not in ("ntypes", "type_map")}
    d = {"model": {"type_map": ["O", "H"], "descriptor": {"type": "dpa2", **desc, "seed": 1},
                   "fitting_net": {"neuron": [8, 8], "seed": 1}},
         "learning_rate": {"type": "exp", "start_lr": 3e-3, "stop_lr": 1e-3, "decay_steps": 2},
         "loss": {"type": "ener", "start_pref_e": 0.2, "limit_pref_e": 1, "start_pref_f": 100,
                  "limit_pref_f": 1},
         "training": {"training_data": {"systems": [str(data / "train")], "batch_size": 1},
                      "validation_data": {"systems": [str(data / "valid")], "batch_size": 1},
                      "numb_steps": steps, "disp_freq": 1, "save_freq": 2, "seed": 3,
                      **training}}
    path = tmp / "input.json"
    path.write_text(json.dumps(d))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: (input path, lcurve text, final parameter leaves)."""
    tmp = tmp_path_factory.mktemp("reference")
    path = small_input(tmp)
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"), \
            pytest.MonkeyPatch.context() as mp:
        mp.setattr(lcurve, "plot", lambda *a, **k: False)
        _train(path, tmp / "out")
        leaves = _leaves(tmp / "out" / f"model.ckpt-{STEPS}.npz")
    return path, (tmp / "out" / "lcurve.out").read_text(), leaves


def _assert_same(out: Path, reference) -> None:
    _, curve, leaves = reference
    assert (out / "lcurve.out").read_text() == curve
    for a, b in zip(_leaves(out / f"model.ckpt-{STEPS}.npz"), leaves, strict=True):
        np.testing.assert_array_equal(a, b)


def _cli(input_path: Path, out: Path, fault: str, *extra: str):
    """``dpa2 train --backend jax`` in a child process under ``fault``; the children share
    a compilation cache (the second one skips the compilation of the first)."""
    cache = out.parent / "jax-cache"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", faults.ENV: fault,
           "JAX_COMPILATION_CACHE_DIR": str(cache),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    return subprocess.run([sys.executable, "-m", "dpa2_cli", "train", str(input_path),
                           "--backend", "jax", "--output", str(out), *extra], env=env,
                          capture_output=True, text=True, timeout=300)


def test_sigkill_at_seeded_moments_then_restart_repeats_the_run(tmp_path, reference):
    """Killed in the middle of writing checkpoint 4 (torn temporary file), restarted from
    the newest complete one, killed again at a seeded step, restarted: lcurve.out and the
    parameters are those of the uninterrupted run."""
    out = tmp_path / "out"
    kill_step = int(np.random.default_rng(14).integers(4, STEPS))  # after a lcurve row
    proc = _cli(reference[0], out, "kill@written=model.ckpt-4.npz")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert (out / "checkpoint").read_text() == "model.ckpt-2.npz\n"
    assert [p.name for p in checkpoints.checkpoints(out, "model.ckpt", ".npz")] == \
        ["model.ckpt-2.npz"]
    assert (out / ".model.ckpt-4.npz.tmp").is_file()  # torn, never renamed
    proc = _cli(reference[0], out, f"kill@step={kill_step}", "--restart",
                str(out / "model.ckpt-2.npz"))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (out / ".model.ckpt-4.npz.tmp").exists()  # cleared by the restart
    newest = checkpoints.latest(out, "model.ckpt", ".npz")
    assert checkpoints.step_of(newest, "model.ckpt", ".npz") == (kill_step - 1) // 2 * 2
    # (the fault fires before the killed step's own checkpoint is written)
    rows = lcurve.read(out / "lcurve.out")[1][:, 0].tolist()
    assert rows == list(range(1, kill_step))  # the row of the killed step never written
    _train(reference[0], out, newest)
    _assert_same(out, reference)


def test_sigterm_saves_then_restart_repeats_the_run(tmp_path, reference, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setenv(faults.ENV, "term@step=3")
    args = argparse.Namespace(input=str(reference[0]), output=str(out), steps=None,
                              restart=None, force=False)
    assert cli_train(args) == 128 + signal.SIGTERM
    assert f"--restart {out / 'model.ckpt-3.npz'}" in capsys.readouterr().out
    monkeypatch.delenv(faults.ENV)
    with pytest.raises(ValueError, match="holds checkpoints of another run"):
        cli_train(args)
    assert cli_train(argparse.Namespace(**{**vars(args), "restart":
                                           str(out / "model.ckpt-3.npz")})) == 0
    _assert_same(out, reference)


def test_ctrl_c_through_dpa2_train_saves_returns_130_and_restart_repeats_the_run(
        tmp_path, reference, monkeypatch, capsys):
    out, ckpt = tmp_path / "out", tmp_path / "out" / "model.ckpt-3.npz"
    cmd = ["train", str(reference[0]), "--backend", "jax", "--output", str(out)]
    monkeypatch.setenv(faults.ENV, "int@step=3")
    assert main(cmd) == 130
    assert f"SIGINT received: stopped after step 3, saved '{ckpt}'; continue with: dpa2 " \
           f"train INPUT --restart {ckpt}" in capsys.readouterr().out
    assert (out / "checkpoint").read_text() == "model.ckpt-3.npz\n"
    monkeypatch.delenv(faults.ENV)
    assert main([*cmd, "--restart", str(ckpt)]) == 0
    _assert_same(out, reference)


def _poison(monkeypatch, call: int) -> None:
    """The ``call``-th training batch gets a NaN energy label (past the data checks)."""
    draw, count = Sampler.next, [0]

    def next_(self):
        b = draw(self)
        if self.systems[0].path.name != "train":  # the validation sampler
            return b
        count[0] += 1
        return b._replace(energy=b.energy * np.nan) if count[0] == call else b

    monkeypatch.setattr(Sampler, "next", next_)


def test_nonfinite_loss_stops_or_is_skipped(tmp_path, monkeypatch):
    path = small_input(tmp_path, steps=4)
    d = json.loads(path.read_text())
    _poison(monkeypatch, 3)
    with pytest.raises(NonFiniteError, match=r"step 3: non-finite loss on the batch of "
                                             r"system 0 \(.*train\) frames \[\d+\].*"
                                             r"model.ckpt-2.npz"):
        _train(path, tmp_path / "stop")
    assert [p.name for p in checkpoints.checkpoints(tmp_path / "stop", "model.ckpt",
                                                    ".npz")] == ["model.ckpt-2.npz"]
    d["training"]["nan_policy"] = "skip"
    path.write_text(json.dumps(d))
    _poison(monkeypatch, 3)
    result = _train(path, tmp_path / "skip")
    assert result["skipped"] == 1 and result["step"] == 4
    for name in ("model.ckpt-2.npz", "model.ckpt-4.npz"):
        assert all(np.isfinite(x).all() for x in _leaves(tmp_path / "skip" / name))


class Lines:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def _nan_gradient(monkeypatch, call: int) -> list:
    """The ``call``-th training batch gets a NaN gradient and a finite loss: its energy
    label is set to 0 (a finite, if large, loss), and the loss gains ``0 * sqrt(u)`` with
    ``u = 0 * sum(params) + sum(label**2)``, which adds 0 to the loss but whose derivative
    at ``u = 0`` (that batch only) is ``0 * inf = NaN``. Returns a list that then holds
    the (system, frames) of the poisoned batch."""
    module = importlib.import_module("dpa2_jax.training.trainer")
    real, draw, count, drawn = module.loss_and_metrics, Sampler.next, [0], []

    def loss_and_metrics(params, config, batch, pref_e, pref_f):
        loss, metrics = real(params, config, batch, pref_e, pref_f)
        u = 0 * sum(jnp.sum(x) for x in jax.tree.leaves(params)) + jnp.sum(batch.energy ** 2)
        return loss + 0 * jnp.sqrt(u), metrics

    def next_(self):
        b = draw(self)
        if self.systems[0].path.name != "train":  # the validation sampler
            return b
        count[0] += 1
        if count[0] != call:
            return b
        drawn.append(self.drawn)
        return b._replace(energy=np.zeros_like(b.energy))

    monkeypatch.setattr(module, "loss_and_metrics", loss_and_metrics)
    monkeypatch.setattr(Sampler, "next", next_)
    return drawn


def test_nonfinite_gradient_with_a_finite_loss_stops_or_is_skipped(tmp_path, monkeypatch):
    # an unusual clipping norm (never reached): a static argument of the jit step no other
    # test uses, so the step is traced again, with the poisoned loss
    path = small_input(tmp_path, steps=4, gradient_max_norm=1e9)
    d = json.loads(path.read_text())
    drawn = _nan_gradient(monkeypatch, 3)
    with pytest.raises(NonFiniteError) as err:
        _train(path, tmp_path / "stop")
    (k, idx), = drawn
    assert str(err.value).startswith(f"step 3: non-finite gradient on the batch of system {k} "
                                     f"({tmp_path / 'data' / 'train'}) frames "
                                     f"{[int(i) for i in idx]}; ")
    assert "model.ckpt-2.npz" in str(err.value)
    assert [p.name for p in checkpoints.checkpoints(tmp_path / "stop", "model.ckpt",
                                                    ".npz")] == ["model.ckpt-2.npz"]
    assert all(np.isfinite(x).all() for x in _leaves(tmp_path / "stop" / "model.ckpt-2.npz"))
    d["training"]["nan_policy"] = "skip"
    path.write_text(json.dumps(d))
    drawn = _nan_gradient(monkeypatch, 2)
    log = Lines()
    result = train(TrainInput.from_file(path), tmp_path / "skip", out=log, progress=False)
    assert result["skipped"] == 1 and result["step"] == 4
    (k, idx), = drawn
    lines = [line for line in log.text.splitlines() if "non-finite" in line]
    assert lines == [f"step 2: non-finite gradient on the batch of system {k} "
                     f"({tmp_path / 'data' / 'train'}) frames {[int(i) for i in idx]}: batch "
                     "skipped (1 skipped so far)",
                     "skipped 1 batch(es) with a non-finite loss or gradient"]
    rows = lcurve.read(tmp_path / "skip" / "lcurve.out")[1]
    assert np.isfinite(rows).all()  # the loss of the skipped batch was finite
    first, last = (_leaves(tmp_path / "skip" / f"model.ckpt-{n}.npz") for n in (2, 4))
    assert all(np.isfinite(x).all() for x in last)
    assert any(not np.array_equal(a, b) for a, b in zip(first, last, strict=True))
