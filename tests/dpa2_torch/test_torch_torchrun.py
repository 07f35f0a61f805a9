"""``torchrun`` with 2 processes (gloo on CPU): a restart restores every rank's sampler
state, so the resumed run repeats the uninterrupted one bit for bit (lcurve rows after
the restart point, validation columns included, and the final parameters), also after a
``SIGKILL`` of the workers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import tiny_input

from dpa2_core.training import checkpoints, faults, lcurve

SRC = Path(__file__).resolve().parents[2] / "src"


def _torchrun(input_path: Path, out: Path, *extra: str, fault: str | None = None
              ) -> subprocess.CompletedProcess:
    """``torchrun`` of ``dpa2 train`` on 2 processes; ``fault``: ``DPA2_FAULT`` of every
    rank (each rank injects it at the same point of its own loop)."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    env.pop(faults.ENV, None)
    if fault:
        env[faults.ENV] = fault
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "dpa2_cli", "train", str(input_path), "--output", str(out), *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert (proc.returncode == 0) == (fault is None), proc.stderr[-3000:]
    return proc


def _params(path: Path) -> dict:
    return torch.load(path, weights_only=True)["model"]


def test_torchrun_restart_restores_every_ranks_sampler_also_after_a_kill(tmp_path):
    path = tiny_input(tmp_path, steps=4, disp_freq=1, save_freq=2)
    _torchrun(path, tmp_path / "a")
    ckpt = torch.load(tmp_path / "a" / "model.ckpt-2.pt", weights_only=True)
    states = ckpt["data"]["train"]
    assert len(states) == 2 and states[0] != states[1]  # one sampler state per rank
    assert ckpt["data"]["valid"] is not None
    _torchrun(path, tmp_path / "b", "--restart", str(tmp_path / "a" / "model.ckpt-2.pt"))
    rows_a = (tmp_path / "a" / "lcurve.out").read_text().splitlines()
    rows_b = (tmp_path / "b" / "lcurve.out").read_text().splitlines()
    assert rows_b[2:] == [r for r in rows_a[2:] if int(r.split()[0]) > 2]
    assert lcurve.read(tmp_path / "b" / "lcurve.out")[1][:, 0].tolist() == [3, 4]
    a = _params(tmp_path / "a" / "model.ckpt-4.pt")
    b = _params(tmp_path / "b" / "model.ckpt-4.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k

    # SIGKILL of the workers after step 3 (torchrun fails), then --restart from the newest
    # checkpoint in the same folder: the whole lcurve.out and the parameters are a's
    c = tmp_path / "c"
    proc = _torchrun(path, c, fault="kill@step=3")
    assert proc.returncode != 0
    assert proc.stderr.count("Signal 9 (SIGKILL) received by PID") == 2  # both ranks
    newest = checkpoints.latest(c, "model.ckpt", ".pt")
    assert newest == c / "model.ckpt-2.pt"
    _torchrun(path, c, "--restart", str(newest))
    assert (c / "lcurve.out").read_text() == (tmp_path / "a" / "lcurve.out").read_text()
    final = _params(c / "model.ckpt-4.pt")
    assert final.keys() == a.keys()
    for k in a:
        assert torch.equal(final[k], a[k]), k
