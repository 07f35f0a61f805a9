"""The MD examples run to the end (one or two steps each) and print their summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "ase_nve.py": (["--steps", "2"], "total-energy drift"),
    "ase_langevin_nvt.py": (["--steps", "2", "-o", "{tmp}/nvt.traj"], "K"),
    "ase_optimize_cell.py": (["--steps", "1"], "eV"),
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script, tmp_path):
    args, expected = CASES[script]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script),
                           *(a.format(tmp=tmp_path) for a in args)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expected in proc.stdout, proc.stdout
