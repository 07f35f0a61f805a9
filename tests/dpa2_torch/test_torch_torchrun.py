"""``torchrun`` with 2 processes (gloo on CPU): a restart restores every rank's sampler
state, so the resumed run repeats the uninterrupted one bit for bit (lcurve rows after
the restart point, validation columns included, and the final parameters)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import tiny_input

from dpa2_core.training import lcurve

SRC = Path(__file__).resolve().parents[2] / "src"


def _torchrun(input_path: Path, out: Path, *extra: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "dpa2_cli", "train", str(input_path), "--output", str(out), *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_torchrun_restart_restores_every_ranks_sampler(tmp_path):
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
    a = torch.load(tmp_path / "a" / "model.ckpt-4.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "model.ckpt-4.pt", weights_only=True)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
